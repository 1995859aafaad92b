"""The visit schedule: a scheme's planned ("commissioned") night visits, read from YAML.

A schedule file sits beside its scheme file and names it. Each run (the rota's ``run:``, a
pair of carers on a double-handed round) lists its visits in the order they are made; each
visit has a client, an agreed time, a window, a planned duration, single or double-handed,
the council's service and service level type, and whether it is time-critical (the Tunstall
Vi+ kind: missed, it raises a carer non-arrival alarm). Every error names its line, as a scheme
file's do (``devices.scheme.SchemeError``). Rules for lateness, contact and misses live in
``gateway.engine.visits``; the format and the rules are in ``docs/visits.md``.
"""

from __future__ import annotations

from datetime import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from devices.scheme import (
    ClientRef,
    Loc,
    Problem,
    Scheme,
    SchemeError,
    SchemeId,
    located_error,
    parse_yaml_model,
)

_FROZEN = ConfigDict(frozen=True, extra="forbid")
VisitId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
RunId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Label = Annotated[str, Field(min_length=1, max_length=120)]

# A night runs from noon to noon in this file's clock: an agreed time before midday belongs to
# the morning after the night began (23:30 then 02:15 on the same night).
NOON = time(12, 0)


class ServiceUnit(StrEnum):
    """What one unit of the schedule 3 quantities is: a visit, unless the scheme says minutes."""

    VISIT = "visit"
    MINUTES = "minutes"


class PlannedVisit(BaseModel):
    model_config = _FROZEN

    id: VisitId
    client: ClientRef
    at: time  # the agreed time, local to the scheme ("HH:MM")
    window_min: int = Field(default=30, ge=1, le=240)  # how long after ``at`` is still on time
    minutes: int = Field(ge=1, le=480)  # planned duration
    double: bool = False
    critical: bool = False
    service: Label
    level: Label

    @field_validator("at", mode="before")
    @classmethod
    def _hh_mm(cls, value: object) -> object:
        # YAML reads 23:30 unquoted as a base-60 integer; the builder keeps such text as text.
        if isinstance(value, str) and len(value) == 5 and value[2] == ":":
            hours, minutes = value.split(":")
            if hours.isdigit() and minutes.isdigit():
                return time(int(hours), int(minutes))
        if isinstance(value, time):
            return value
        raise ValueError('an agreed time is written HH:MM, e.g. "23:30"')


class PlannedRun(BaseModel):
    model_config = _FROZEN

    run: RunId
    visits: tuple[PlannedVisit, ...]  # emptiness is checked after validation (one error, not two)


class VisitSchedule(BaseModel):
    model_config = _FROZEN

    scheme: SchemeId
    service_unit: ServiceUnit = ServiceUnit.VISIT
    late_alert_min: int = Field(default=15, ge=1, le=120)  # late-visit alert after agreed time
    contact_min: int = Field(default=30, ge=1, le=180)  # contact the person (Thurrock 6.6.1)
    runs: tuple[PlannedRun, ...]

    def visits(self) -> dict[str, tuple[PlannedRun, PlannedVisit]]:
        return {v.id: (r, v) for r in self.runs for v in r.visits}


def _problems(schedule: VisitSchedule, scheme: Scheme) -> list[Problem]:
    out: list[Problem] = []
    if schedule.scheme != scheme.id:
        out.append((("scheme",), f"names scheme {schedule.scheme!r}, not {scheme.id!r}"))
    runs = {s.run for s in scheme.rota if s.run}
    clients = {r.client_ref for r in scheme.residents}
    seen: dict[str, Loc] = {}
    run_seen: set[str] = set()
    if not schedule.runs:
        out.append((("runs",), "lists no runs"))
    if schedule.contact_min <= schedule.late_alert_min:
        out.append((("contact_min",), "must be later than late_alert_min"))
    for i, r in enumerate(schedule.runs):
        if r.run in run_seen:
            out.append((("runs", i, "run"), f"run {r.run!r} is listed twice"))
        run_seen.add(r.run)
        if r.run not in runs:
            known = ", ".join(sorted(str(x) for x in runs)) or "none"
            out.append((("runs", i, "run"), f"no rota line has run {r.run!r} (known: {known})"))
        if not r.visits:
            out.append((("runs", i, "visits"), f"run {r.run!r} lists no visits"))
        for j, v in enumerate(r.visits):
            loc: Loc = ("runs", i, "visits", j)
            if v.id in seen:
                out.append(((*loc, "id"), f"visit id {v.id!r} is used twice"))
            seen[v.id] = loc
            if v.client not in clients:
                out.append(((*loc, "client"), f"no resident has client_ref {v.client!r}"))
    return out


def parse_schedule(text: str, scheme: Scheme, source: str = "<string>") -> VisitSchedule:
    """Validate schedule YAML against its scheme; every error names its line."""
    schedule, lines = parse_yaml_model(text, VisitSchedule, source, "visit schedule")
    problems = _problems(schedule, scheme)
    if problems:
        raise located_error(source, problems, lines)
    return schedule


def load_schedule(path: Path | str, scheme: Scheme) -> VisitSchedule:
    source = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        why = exc.strerror or exc
        raise SchemeError(source, None, f"cannot read visit schedule: {why}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemeError(source, raw[: exc.start].count(b"\n") + 1, "not valid UTF-8") from None
    return parse_schedule(text, scheme, source)


def schedule_beside(scheme_path: Path | str) -> Path:
    """Where a scheme's own schedule file is looked for: ``<stem>.visits.yaml`` beside it."""
    p = Path(scheme_path)
    return p.with_name(f"{p.stem}.visits.yaml")


def _scheme_named(path: Path, schemes: dict[str, Scheme]) -> Scheme:
    """The loaded scheme an explicitly given schedule file names in its ``scheme:`` line."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None  # load_schedule reports it properly, with the line
    named = data.get("scheme") if isinstance(data, dict) else None
    if isinstance(named, str) and named in schemes:
        return schemes[named]
    if len(schemes) == 1:  # the only scheme: its checks say what is wrong
        return next(iter(schemes.values()))
    served = ", ".join(sorted(schemes)) or "none"
    raise SchemeError(str(path), None, f"names scheme {named!r}, not one served ({served})")


def load_schedules(
    scheme_files: dict[str, Path], explicit: list[Path], schemes: dict[str, Scheme]
) -> dict[str, VisitSchedule]:
    """Each scheme's schedule: the file beside its scheme file if there is one, and every
    explicitly given file (which wins for its scheme). A bad file raises ``SchemeError``."""
    out: dict[str, VisitSchedule] = {}
    for sid, scheme_path in scheme_files.items():
        beside = schedule_beside(scheme_path)
        if beside.is_file():
            out[sid] = load_schedule(beside, schemes[sid])
    seen: set[str] = set()
    for path in explicit:
        scheme = _scheme_named(Path(path), schemes)
        if scheme.id in seen:
            raise SchemeError(str(path), None, f"a second schedule for scheme {scheme.id!r}")
        seen.add(scheme.id)
        out[scheme.id] = load_schedule(path, scheme)
    return out
