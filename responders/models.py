"""Carers and the rota: who is on shift, where, and with which skills.

Kept free of ``devices`` and ``gateway`` imports so routing and the dashboard can use it alone.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

IDENT = r"^[A-Za-z0-9._-]{1,64}$"  # also the API's path parameter pattern
Ident = Annotated[str, Field(pattern=IDENT)]


class Skill(StrEnum):
    """What a carer is trained for; routing matches these to a resident's needs."""

    FIRST_AID = "first_aid"
    MANUAL_HANDLING = "manual_handling"
    HOIST = "hoist"
    MEDICATION = "medication"
    OXYGEN = "oxygen"
    DEMENTIA = "dementia"
    DRIVING = "driving"


class ShiftRole(StrEnum):
    WAKING_NIGHT = "waking_night"
    SLEEP_IN = "sleep_in"
    ON_CALL = "on_call"
    DAY = "day"


class Weekday(StrEnum):
    """Weekday names in ``datetime.weekday()`` order."""

    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"

    @classmethod
    def of(cls, when: datetime) -> Weekday:
        return _WEEK[when.weekday()]


_WEEK: tuple[Weekday, ...] = tuple(Weekday)
ALL_DAYS: frozenset[Weekday] = frozenset(Weekday)
_DAY_GROUPS: dict[str, frozenset[Weekday]] = {
    "all": ALL_DAYS,
    "weekdays": frozenset(_WEEK[:5]),
    "weekends": frozenset(_WEEK[5:]),
}
_DAY_NAMES: dict[str, Weekday] = {d.value: d for d in Weekday} | {d.value[:3]: d for d in Weekday}


class Carer(BaseModel):
    """A care and support worker who can be dispatched to alarms."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Ident
    display_name: str = Field(min_length=1, max_length=100)
    skills: frozenset[Skill] = frozenset()
    handset_id: Ident | None = None
    senior: bool = False


class Shift(BaseModel):
    """One rota line: a carer on duty between two wall-clock times on the given days.

    ``end`` at or before ``start`` means the shift runs past midnight into the next day; a shift
    belongs to the day it starts on. ``start == end`` is a 24-hour shift.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    carer: Ident
    role: ShiftRole
    start: time
    end: time
    days: frozenset[Weekday] = ALL_DAYS
    zone: str | None = None
    run: str | None = None

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hh_mm(cls, value: Any) -> Any:
        # YAML 1.1 reads an unquoted 23:00 as the base-60 integer 1380; refuse rather than guess.
        if isinstance(value, int):
            raise ValueError("time must be a quoted 'HH:MM' string")
        if isinstance(value, str):
            try:
                hours, minutes = value.strip().split(":")
                return time(int(hours), int(minutes))
            except ValueError:
                raise ValueError(f"time must be 'HH:MM', got {value!r}") from None
        return value

    @field_validator("start", "end")
    @classmethod
    def _naive(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("shift times are local wall-clock times; drop the offset")
        return value

    @field_validator("days", mode="before")
    @classmethod
    def _day_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple | set | frozenset):
            return value
        days: set[Weekday] = set()
        for item in value:
            name = str(item).strip().lower()
            if name in _DAY_GROUPS:
                days |= _DAY_GROUPS[name]
            elif name in _DAY_NAMES:
                days.add(_DAY_NAMES[name])
            else:
                raise ValueError(f"unknown day {item!r}: use weekday names, 'weekdays' or 'all'")
        if not days:
            raise ValueError("a shift needs at least one day")
        return frozenset(days)

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start

    @property
    def duration(self) -> timedelta:
        start = timedelta(hours=self.start.hour, minutes=self.start.minute)
        end = timedelta(hours=self.end.hour, minutes=self.end.minute)
        return end - start if end > start else end - start + timedelta(days=1)

    def covers(self, local_dt: datetime) -> bool:
        """Whether the shift is on duty at ``local_dt``, a wall-clock time in the scheme's zone.

        The interval is half-open: a 23:00-07:00 shift covers 23:00 but not 07:00.
        """
        now = local_dt.time()
        today = Weekday.of(local_dt)
        if not self.crosses_midnight:
            return today in self.days and self.start <= now < self.end
        yesterday = Weekday.of(local_dt - timedelta(days=1))
        return (today in self.days and now >= self.start) or (
            yesterday in self.days and now < self.end
        )
