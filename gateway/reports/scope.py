"""What a report covers: one scheme, one period in the scheme's own time zone, its night window,
its targets, and which client each device belongs to.

Periods are whole local days (``[start, end)``), turned into UTC instants with the scheme's
zone, so a month that contains a clock change is still exactly that month. The next-working-day
rule for notifiable events lives here too: weekends and bank holidays in England (the
``holidays`` package) are not working days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

from devices.scheme import Scheme
from gateway.engine.triage import load_policy
from gateway.reports.targets import Targets


class PeriodKind(StrEnum):
    DAY = "day"
    WEEK = "week"  # Monday to Sunday
    MONTH = "month"
    QUARTER = "quarter"  # calendar quarters: Jan-Mar, Apr-Jun, Jul-Sep, Oct-Dec
    CUSTOM = "custom"


class PeriodError(ValueError):
    """A period that cannot be reported on (end before start, too long, ...)."""


# A year and a day is the longest custom range: the figures stay quick and a typo such as
# 2062 for 2026 is caught instead of scanning decades.
MAX_DAYS = 367
# Days a report can be about: nothing was recorded before 1970, and far-future days would
# overflow the calendar arithmetic.
FIRST_DAY = date(1970, 1, 1)
LAST_DAY = date(2100, 12, 31)


@dataclass(frozen=True, slots=True)
class Period:
    kind: PeriodKind
    start: date  # first local day
    end: date  # the local day after the last one (exclusive)

    @property
    def last(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def label(self) -> str:
        match self.kind:
            case PeriodKind.DAY:
                return self.start.isoformat()
            case PeriodKind.WEEK:
                return f"week of {self.start.isoformat()}"
            case PeriodKind.MONTH:
                return self.start.strftime("%Y-%m")
            case PeriodKind.QUARTER:
                return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
            case _:
                return f"{self.start.isoformat()} to {self.last.isoformat()}"

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        """The period as UTC instants: local midnight at each end, in the scheme's zone."""
        lo = datetime.combine(self.start, time(0), tz).astimezone(UTC)
        hi = datetime.combine(self.end, time(0), tz).astimezone(UTC)
        return lo, hi


def period(kind: PeriodKind, on: date, until: date | None = None) -> Period:
    """The period of ``kind`` that contains the local day ``on``. A custom period runs from
    ``on`` to ``until``, both days included."""
    for d in (on, until):
        if d is not None and not FIRST_DAY <= d <= LAST_DAY:
            raise PeriodError(
                f"{d} is outside the days a report covers ({FIRST_DAY} to {LAST_DAY})"
            )
    match kind:
        case PeriodKind.DAY:
            return Period(kind, on, on + timedelta(days=1))
        case PeriodKind.WEEK:
            start = on - timedelta(days=on.weekday())
            return Period(kind, start, start + timedelta(days=7))
        case PeriodKind.MONTH:
            start = on.replace(day=1)
            return Period(kind, start, _add_months(start, 1))
        case PeriodKind.QUARTER:
            start = date(on.year, (on.month - 1) // 3 * 3 + 1, 1)
            return Period(kind, start, _add_months(start, 3))
        case PeriodKind.CUSTOM:
            if until is None:
                raise PeriodError("a custom period needs an end day")
            if until < on:
                raise PeriodError(f"the period ends ({until}) before it starts ({on})")
            if (until - on).days + 1 > MAX_DAYS:
                raise PeriodError(f"a custom period is at most {MAX_DAYS} days")
            return Period(kind, on, until + timedelta(days=1))


def _add_months(d: date, n: int) -> date:
    months = d.year * 12 + d.month - 1 + n
    return date(months // 12, months % 12 + 1, 1)


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    # Imported at first use: the gateway's start path imports this module (the reports API)
    # but needs no holidays to be ready (docs/performance.md, "Recovery").
    import holidays

    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year))


def is_working_day(d: date) -> bool:
    """Monday to Friday and not a bank holiday in England."""
    return d.weekday() < 5 and d not in _bank_holidays(d.year)


def next_working_day(d: date) -> date:
    """The first working day after ``d`` (the seeds' 'by the next working day')."""
    n = d + timedelta(days=1)
    while not is_working_day(n):
        n += timedelta(days=1)
    return n


@dataclass(frozen=True, slots=True)
class Scope:
    """One scheme and one period, with everything the SQL needs as parameters."""

    scheme_id: str
    scheme_name: str
    tz: ZoneInfo
    night_start: time
    night_end: time
    period: Period
    targets: Targets
    # device id -> the council's client reference of the resident it belongs to
    clients: dict[str, str] = field(default_factory=dict)

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return self.period.bounds(self.tz)

    def params(self) -> dict[str, object]:
        lo, hi = self.bounds
        devices = sorted(self.clients)
        return {
            "scheme": self.scheme_id,
            "lo": lo,
            "hi": hi,
            "tz": self.tz.key,
            "night_start": self.night_start,
            "night_end": self.night_end,
            "devices": devices,
            "device_clients": [self.clients[d] for d in devices],
            **self.targets.params(),
        }


def device_clients(scheme: Scheme) -> dict[str, str]:
    """Each device's resident (worn devices name theirs; a flat's device belongs to the
    flat's resident), by council client reference."""
    out: dict[str, str] = {}
    by_flat = {r.flat: r.client_ref for r in scheme.residents}
    for d in scheme.devices:
        if d.resident is not None:
            out[d.device_id] = d.resident
        elif d.flat is not None and d.flat in by_flat:
            out[d.device_id] = by_flat[d.flat]
    return out


def scope_for(scheme: Scheme, p: Period, targets: Targets) -> Scope:
    policy = load_policy(scheme.triage or None)
    return Scope(
        scheme_id=scheme.id,
        scheme_name=scheme.name,
        tz=scheme.tz,
        night_start=policy.night_start,
        night_end=policy.night_end,
        period=p,
        targets=targets,
        clients=device_clients(scheme),
    )
