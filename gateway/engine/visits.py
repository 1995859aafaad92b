"""Planned visits through one night: the pure rules (no I/O, no clock of its own).

``night_plan`` turns a schedule (``devices.visits``) into the night's visits with their agreed
times in UTC; ``step`` applies one input and says what must be told. The rules, from the seeds:
- **Late.** Not checked in by the agreed time plus ``late_alert_min`` (15): one late-visit alert
  to the control room (BCP 12.3 wants arrival within 15 minutes of the agreed time).
- **Contact the person.** Still not checked in at ``contact_min`` (30): one "contact the person"
  task (Thurrock 6.6.1), closed when somebody records the contact. Time-specific visits are
  outside 6.6.1: for them the critical rule below applies instead.
- **Critical.** A time-critical visit not checked in by the end of its window opens a carer
  non-arrival alarm, routed like any other alarm.
- **Missed.** A visit still planned when the night ends is missed; a frustrated or cancelled
  one is not.
- **Cancelled.** The Council may cancel by 12 noon on the working day before the day of the
  visit (Thurrock 6.4.3); later notice still cancels the visit but is marked as late notice.
  A person who cancels before the agreed time cancels it; after the agreed time, the visit is
  frustrated (the provider was not responsible).
- **Pulled away.** A P0/P1 alarm may take a run's carer off a planned visit, or off the visit
  they are checked in to (which is then no longer checked in); the visit keeps its rules and
  its alerts carry the reason.

Each alert is raised at most once per visit; an input that no longer applies (checking in to a
cancelled visit) is refused with the reason and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from devices.visits import NOON, ServiceUnit, VisitSchedule
from gateway.reports.scope import is_working_day


class VisitStatus(StrEnum):
    PLANNED = "planned"
    CHECKED_IN = "checked_in"
    CHECKED_OUT = "checked_out"
    FRUSTRATED = "frustrated"
    CANCELLED = "cancelled"
    MISSED = "missed"


TERMINAL = frozenset(
    {VisitStatus.CHECKED_OUT, VisitStatus.FRUSTRATED, VisitStatus.CANCELLED, VisitStatus.MISSED}
)


class CancelledBy(StrEnum):
    PERSON = "person"
    COUNCIL = "council"


@dataclass(frozen=True, slots=True)
class Visit:
    visit_id: str
    run: str
    client: str
    agreed_at: datetime  # UTC
    window_min: int
    minutes: int
    double: bool
    critical: bool
    service: str
    level: str
    extra: bool = False
    status: VisitStatus = VisitStatus.PLANNED
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    late_alerted: bool = False
    contact_raised: bool = False
    contacted_at: datetime | None = None
    non_arrival_opened: bool = False
    late_notice: bool = False  # cancelled by the Council after the 6.4.3 deadline
    reason: str | None = None  # why it was frustrated or cancelled
    pulled_away: str | None = None  # the alarm that took the run's carer away
    carer: str | None = None  # who checked in (the run is busy while it is checked in)

    @property
    def window_end(self) -> datetime:
        return self.agreed_at + timedelta(minutes=self.window_min)


@dataclass(frozen=True, slots=True)
class Rules:
    late_alert_min: int = 15
    contact_min: int = 30
    tz: ZoneInfo = field(default_factory=lambda: ZoneInfo("Europe/London"))


# ---- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckIn:
    visit_id: str
    carer: str
    at: datetime


@dataclass(frozen=True, slots=True)
class CheckOut:
    visit_id: str
    carer: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Frustrate:
    visit_id: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Cancel:
    visit_id: str
    by: CancelledBy
    at: datetime
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Move:
    visit_id: str
    agreed_at: datetime


@dataclass(frozen=True, slots=True)
class AddExtra:
    visit: Visit


@dataclass(frozen=True, slots=True)
class PulledAway:
    visit_id: str
    alarm_id: str


@dataclass(frozen=True, slots=True)
class Contacted:
    visit_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Tick:
    now: datetime


@dataclass(frozen=True, slots=True)
class EndOfNight:
    at: datetime


Input = (
    CheckIn | CheckOut | Frustrate | Cancel | Move | AddExtra | PulledAway | Contacted | Tick
) | EndOfNight


# ---- what must be told -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LateVisit:
    visit_id: str
    run: str
    client: str
    minutes_late: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class ContactTask:
    visit_id: str
    run: str
    client: str


@dataclass(frozen=True, slots=True)
class NonArrival:
    """Open a carer non-arrival alarm for this client (routed like any other alarm)."""

    visit_id: str
    run: str
    client: str


@dataclass(frozen=True, slots=True)
class Missed:
    visit_id: str
    client: str


@dataclass(frozen=True, slots=True)
class Refused:
    visit_id: str
    reason: str


Effect = LateVisit | ContactTask | NonArrival | Missed | Refused


# ---- the plan --------------------------------------------------------------------------------

# A night's visits end at 07:00 local (Thurrock's out-of-hours service runs 23:00-07:00): a
# visit still planned then is missed.
END_OF_NIGHT = time(7, 0)


@dataclass(frozen=True, slots=True)
class NightPlan:
    """One scheme's visits for one night (noon to noon), as the engine holds them."""

    scheme: str
    night: date  # the local date the night starts
    visits: Mapping[str, Visit]
    ended: bool = False  # the end of night has been applied (missed visits told)

    @property
    def key(self) -> str:
        return plan_key(self.scheme, self.night)


def plan_key(scheme: str, night: date) -> str:
    return f"{scheme}/{night.isoformat()}"


def night_of(now: datetime, tz: ZoneInfo) -> date:
    """The night a moment belongs to: the local date it started (noon to noon)."""
    local = now.astimezone(tz)
    return local.date() if local.time() >= NOON else local.date() - timedelta(days=1)


def end_of_night(night: date, tz: ZoneInfo) -> datetime:
    """07:00 local on the morning after ``night`` began, in UTC."""
    return agreed_at(night, END_OF_NIGHT, tz)


def plan_night(now: datetime, tz: ZoneInfo) -> date:
    """The night whose plan is live at ``now``: the night in progress until its visits end
    (07:00 local), then the coming one (so changes for tonight can be made from the morning)."""
    night = night_of(now, tz)
    return night if now < end_of_night(night, tz) else night + timedelta(days=1)


def agreed_at(night: date, at: time, tz: ZoneInfo) -> datetime:
    """A local agreed time on the night that began on ``night``: before noon is the morning
    after. Returned in UTC (a time that the clocks skip is read with the offset before it)."""
    day = night + timedelta(days=1) if at < NOON else night
    return datetime.combine(day, at, tzinfo=tz).astimezone(ZoneInfo("UTC"))


def night_plan(schedule: VisitSchedule, night: date, tz: ZoneInfo) -> dict[str, Visit]:
    out: dict[str, Visit] = {}
    for run in schedule.runs:
        for v in run.visits:
            out[v.id] = Visit(
                visit_id=v.id,
                run=run.run,
                client=v.client,
                agreed_at=agreed_at(night, v.at, tz),
                window_min=v.window_min,
                minutes=v.minutes,
                double=v.double,
                critical=v.critical,
                service=v.service,
                level=v.level,
            )
    return out


def council_deadline(visit_day: date, tz: ZoneInfo) -> datetime:
    """12 noon on the working day before ``visit_day`` (Thurrock 6.4.3), in UTC."""
    d = visit_day - timedelta(days=1)
    while not is_working_day(d):
        d -= timedelta(days=1)
    return datetime.combine(d, NOON, tzinfo=tz).astimezone(ZoneInfo("UTC"))


# ---- the rules -------------------------------------------------------------------------------


def step(
    visits: Mapping[str, Visit], inp: Input, rules: Rules
) -> tuple[dict[str, Visit], list[Effect]]:
    """Apply one input; the new visits and what must be told. Never raises for a bad input."""
    out = dict(visits)
    if isinstance(inp, Tick):
        return out, _tick(out, inp.now, rules)
    if isinstance(inp, EndOfNight):
        return out, _end(out, inp.at, rules)
    if isinstance(inp, AddExtra):
        if inp.visit.visit_id in out:
            return out, [Refused(inp.visit.visit_id, "a visit with this id exists")]
        out[inp.visit.visit_id] = replace(inp.visit, extra=True, status=VisitStatus.PLANNED)
        return out, []
    v = out.get(inp.visit_id)
    if v is None:
        return out, [Refused(inp.visit_id, "no such visit tonight")]
    new, why = _apply(v, inp, rules)
    if why is not None:
        return out, [Refused(v.visit_id, why)]
    out[v.visit_id] = new
    return out, []


def _apply(v: Visit, inp: Input, rules: Rules) -> tuple[Visit, str | None]:
    s = v.status
    if isinstance(inp, CheckIn):
        if s is not VisitStatus.PLANNED:
            return v, f"the visit is {s.value}"
        # After being pulled away the first arrival still counts for punctuality.
        first = v.checked_in_at or inp.at
        return replace(v, status=VisitStatus.CHECKED_IN, checked_in_at=first, carer=inp.carer), None
    if isinstance(inp, CheckOut):
        if s is not VisitStatus.CHECKED_IN:
            return v, f"the visit is {s.value}, not checked in"
        return replace(v, status=VisitStatus.CHECKED_OUT, checked_out_at=inp.at), None
    if isinstance(inp, Frustrate):
        if s not in (VisitStatus.PLANNED, VisitStatus.CHECKED_IN):
            return v, f"the visit is {s.value}"
        return replace(v, status=VisitStatus.FRUSTRATED, reason=inp.reason or "frustrated"), None
    if isinstance(inp, Cancel):
        if s is not VisitStatus.PLANNED:
            return v, f"the visit is {s.value}"
        if inp.by is CancelledBy.COUNCIL:
            day = v.agreed_at.astimezone(rules.tz).date()
            late = inp.at > council_deadline(day, rules.tz)
            why = inp.reason or "cancelled by the Council"
            return replace(v, status=VisitStatus.CANCELLED, late_notice=late, reason=why), None
        if inp.at < v.agreed_at:
            why = inp.reason or "cancelled by the person"
            return replace(v, status=VisitStatus.CANCELLED, reason=why), None
        why = inp.reason or "cancelled by the person after the agreed time"
        return replace(v, status=VisitStatus.FRUSTRATED, reason=why), None
    if isinstance(inp, Move):
        if s is not VisitStatus.PLANNED:
            return v, f"the visit is {s.value}"
        # A moved visit is judged afresh from its new time.
        return replace(
            v,
            agreed_at=inp.agreed_at,
            late_alerted=False,
            contact_raised=False,
            contacted_at=None,
            non_arrival_opened=False,
        ), None
    if isinstance(inp, PulledAway):
        if s not in (VisitStatus.PLANNED, VisitStatus.CHECKED_IN):
            return v, f"the visit is {s.value}"
        # Taken off a visit in progress, it is open again: late and missed rules apply.
        return replace(v, status=VisitStatus.PLANNED, pulled_away=inp.alarm_id), None
    if isinstance(inp, Contacted):
        if v.contacted_at is not None:
            return v, "the contact is already recorded"
        if not v.contact_raised and s is not VisitStatus.PLANNED:
            return v, "no contact task is open for this visit"
        # A carer running late may ring ahead: then no contact task is raised at +30.
        return replace(v, contacted_at=inp.at), None
    return v, "not a visit input"


def _tick(out: dict[str, Visit], now: datetime, rules: Rules) -> list[Effect]:
    effects: list[Effect] = []
    for vid in sorted(out, key=lambda k: (out[k].agreed_at, k)):
        v = out[vid]
        if v.status is not VisitStatus.PLANNED:
            continue
        why = f"carer pulled away to alarm {v.pulled_away}" if v.pulled_away else None
        late_by = now - v.agreed_at
        if not v.late_alerted and late_by >= timedelta(minutes=rules.late_alert_min):
            v = replace(v, late_alerted=True)
            effects.append(LateVisit(vid, v.run, v.client, int(late_by.total_seconds() // 60), why))
        if (
            not v.critical
            and not v.contact_raised
            and v.contacted_at is None
            and late_by >= timedelta(minutes=rules.contact_min)
        ):
            v = replace(v, contact_raised=True)
            effects.append(ContactTask(vid, v.run, v.client))
        if v.critical and not v.non_arrival_opened and now >= v.window_end:
            v = replace(v, non_arrival_opened=True)
            effects.append(NonArrival(vid, v.run, v.client))
        out[vid] = v
    return effects


def _end(out: dict[str, Visit], at: datetime, rules: Rules) -> list[Effect]:
    effects: list[Effect] = _tick(out, at, rules)
    for vid in sorted(out):
        v = out[vid]
        if v.status is VisitStatus.PLANNED:
            out[vid] = replace(v, status=VisitStatus.MISSED)
            effects.append(Missed(vid, v.client))
    return effects


# ---- figures ---------------------------------------------------------------------------------


class Punctuality(StrEnum):
    ON_TIME = "on_time"
    LATE_UNDER_15 = "late_under_15"
    LATE_15_TO_30 = "late_15_to_30"
    LATE_OVER_30 = "late_over_30"


def punctuality(v: Visit) -> Punctuality | None:
    """How late the check-in was against the agreed time; None when nobody checked in."""
    if v.checked_in_at is None:
        return None
    late = (v.checked_in_at - v.agreed_at).total_seconds()
    if late <= 0:
        return Punctuality.ON_TIME
    if late < 15 * 60:
        return Punctuality.LATE_UNDER_15
    if late <= 30 * 60:
        return Punctuality.LATE_15_TO_30
    return Punctuality.LATE_OVER_30


@dataclass(frozen=True, slots=True)
class Schedule3Row:
    """Thurrock schedule 3, one client, one service level, one week (Monday start)."""

    service: str
    level: str
    client: str
    week_start: date
    actual: int
    frustrated: int
    cancelled: int
    missed: int
    extra: int
    visits: int
    call_minutes: int
    comments: str


def schedule3(visits: Iterable[Visit], unit: ServiceUnit, tz: ZoneInfo) -> list[Schedule3Row]:
    """Per client per week. A unit is a visit, or a planned minute when the scheme says minutes.
    Actual counts what was performed (checked in and not frustrated), so for a closed week
    actual = planned + extra - frustrated - cancelled - missed. Extra counts every extra visit
    (an extra one that was then frustrated is in both). Visits counts every time a carer was
    there, and call minutes is the checked-in to checked-out time of those. Late-notice Council
    cancellations are named in the comments."""
    groups: dict[tuple[str, str, str, date], list[Visit]] = {}
    for v in visits:
        local = v.agreed_at.astimezone(tz).date()
        week = local - timedelta(days=local.weekday())
        groups.setdefault((v.client, v.service, v.level, week), []).append(v)
    rows: list[Schedule3Row] = []
    for (client, service, level, week), vs in sorted(groups.items()):

        def units(v: Visit) -> int:
            return 1 if unit is ServiceUnit.VISIT else v.minutes

        went = [v for v in vs if v.checked_in_at is not None]  # the carer was there
        # ...and performed it: not frustrated, nor pulled away and never back (then missed).
        done = [v for v in went if v.status in (VisitStatus.CHECKED_IN, VisitStatus.CHECKED_OUT)]
        minutes = sum(
            int((v.checked_out_at - v.checked_in_at).total_seconds() // 60)
            for v in went
            if v.checked_out_at is not None and v.checked_in_at is not None
        )
        actual = len(done) if unit is ServiceUnit.VISIT else sum(v.minutes for v in done)
        late_notice = [v.visit_id for v in vs if v.late_notice]
        rows.append(
            Schedule3Row(
                service=service,
                level=level,
                client=client,
                week_start=week,
                actual=actual,
                frustrated=sum(units(v) for v in vs if v.status is VisitStatus.FRUSTRATED),
                cancelled=sum(units(v) for v in vs if v.status is VisitStatus.CANCELLED),
                missed=sum(units(v) for v in vs if v.status is VisitStatus.MISSED),
                extra=sum(units(v) for v in vs if v.extra),
                visits=len(went),
                call_minutes=minutes,
                comments=(
                    "late-notice Council cancellation: " + ", ".join(sorted(late_notice))
                    if late_notice
                    else ""
                ),
            )
        )
    return rows
