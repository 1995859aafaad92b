"""The shapes of the reports (JSON from the API and the CLI; the CSV returns are flat views of
them). Times are seconds; percentiles are ``percentile_disc`` (an observed duration)."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from gateway.reports.scope import PeriodKind


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class PeriodOut(_Model):
    kind: PeriodKind
    label: str
    first_day: date = Field(description="First local day of the period.")
    last_day: date = Field(description="Last local day of the period (included).")
    start: datetime = Field(description="Local midnight starting the period, as UTC.")
    end: datetime = Field(description="Local midnight ending the period (excluded), as UTC.")
    timezone: str


class ReportHead(_Model):
    scheme: str
    scheme_name: str
    period: PeriodOut
    night_start: str = Field(description="Start of the scheme's night window, local HH:MM.")
    night_end: str = Field(description="End of the night window (excluded), local HH:MM.")
    generated_at: datetime
    suppressed: bool = Field(
        default=False, description="Counts under 5 are withheld (shown as null)."
    )


class TargetOut(_Model):
    priority: str
    measure: str = Field(description="answer (raised to accepted) or attend (deploy to arrived)")
    tier: int
    within_s: int
    goal_pct: float


class Durations(_Model):
    """Seconds, over the counted alarms that have the measure."""

    n: int | None
    p50: float | None
    p90: float | None
    p95: float | None
    max: float | None


class Within(_Model):
    tier: int
    met: int | None
    of: int | None
    pct: float | None = Field(description="100 * met / of, to 2 places; null when of is 0.")


class Group(_Model):
    dimension: str = Field(description="all, priority, kind, night or week")
    value: str
    alarms: int | None
    test_calls: int | None
    cancelled: int | None
    false_alarms: int | None
    counted: int | None
    deployed: int | None
    answered: int | None
    arrived: int | None
    resolved: int | None
    accept: Durations
    arrive: Durations
    attend: Durations
    resolve: Durations
    answer_within: list[Within]
    attend_within: list[Within]


class HistogramBar(_Model):
    minute: int = Field(description="Whole minutes to accept; 10 means 10 or more.")
    alarms: int | None


class VisitPunctuality(_Model):
    """Planned visits whose agreed time is in the period, by how late the carer checked in
    against the agreed time (docs/visits.md; the rules of ``gateway.engine.visits``)."""

    visits: int = Field(description="Planned and extra visits, less cancelled ones.")
    checked_in: int
    on_time: int = Field(description="Checked in at or before the agreed time.")
    late_under_15: int = Field(description="Checked in up to 15 minutes late (15 excluded).")
    late_15_to_30: int = Field(description="15 to 30 minutes late, both included.")
    late_over_30: int
    not_checked_in: int = Field(description="Missed, or frustrated without a check-in.")


class ResponseReport(_Model):
    head: ReportHead
    targets: list[TargetOut]
    groups: list[Group]
    accept_histogram: list[HistogramBar]
    visit_punctuality: VisitPunctuality | None = Field(
        default=None, description="Planned visits' punctuality (schemes with a visit schedule)."
    )


class KindCount(_Model):
    kind: str
    alarms: int | None
    counted: int | None


class WakingNight(_Model):
    night: date = Field(description="Local date the night began.")
    carer_id: str | None = Field(description="Withheld from commissioners.")
    disturbances: int


class FaultRow(_Model):
    code: str
    faults: int | None
    mended: int | None
    mend_p50_s: float | None
    mend_max_s: float | None


class KpiPack(_Model):
    head: ReportHead
    alarms: int | None
    by_kind: list[KindCount]
    falls: int | None
    falls_with_ambulance: int | None
    ambulance: int | None
    hospital_admissions: int | None
    unable_to_gain_access: int | None
    emergency_callouts: int | None
    callouts_within: list[Within]
    callouts_within_24h: Within
    waking_nights: list[WakingNight]
    faults: list[FaultRow]


class NotifiableEvent(_Model):
    alarm_id: UUID
    category: str = Field(
        description="hospital_admission, unable_to_gain_access, not_returning, major_incident"
    )
    client_ref: str | None
    kind: str | None
    priority: str
    outcome: str | None
    raised_at: datetime
    resolved_at: datetime | None
    local_day: date = Field(description="Local day of the event (resolution, else raising).")
    notify_by: date = Field(description="The next working day after local_day.")


class NotifiableList(_Model):
    head: ReportHead
    events: list[NotifiableEvent]


class VisitRow(_Model):
    client_ref: str
    week_start: date
    actual: int
    frustrated: int
    cancelled: int
    missed: int
    extra: int
    visits: int
    duration_s: float
    last_day: date | None


class VisitReturn(_Model):
    head: ReportHead
    rows: list[VisitRow]


class Schedule3Row(_Model):
    """Thurrock schedule 3: one client, one service level type, one week (Monday start)."""

    service: str
    level: str = Field(description="Service level type.")
    client_ref: str
    week_start: date
    week_end: date = Field(description="The Sunday ending the week (the return's End Date).")
    actual: int
    frustrated: int
    cancelled: int
    missed: int
    extra: int
    visits: int = Field(description="Check-ins: times a carer was there.")
    call_minutes: int = Field(description="Whole minutes from check-in to check-out, summed.")
    comments: str


class Schedule3Return(_Model):
    head: ReportHead
    service_unit: str = Field(description="visit, or minutes (planned minutes) per unit.")
    weeks: int
    rows: list[Schedule3Row]
    punctuality: VisitPunctuality
