"""A scenario: one scheme file and the load, faults and carer behaviour to run against it.

Scenarios are YAML files in ``simulator/scenarios/<name>.yaml``; every field is described in
``docs/scenarios.md``. Times of day are scheme-local wall-clock times ("HH:MM", quoted);
durations are scheme seconds.
"""

from __future__ import annotations

import math
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.events import Priority
from responders.protocol import OutcomeCode

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
REPO = Path(__file__).resolve().parents[1]

_STRICT = ConfigDict(frozen=True, extra="forbid")


def _hhmm(value: Any) -> Any:
    if isinstance(value, int):  # YAML 1.1 reads an unquoted 23:00 as 1380
        raise ValueError("write times of day as quoted 'HH:MM'")
    if isinstance(value, str):
        h, m = value.strip().split(":")
        return time(int(h), int(m))
    return value


class Dist(BaseModel):
    """A positive random duration: log-normal with the given median and 90th percentile,
    clipped to [min, max]. ``p90 == median`` makes it fixed."""

    model_config = _STRICT

    median: float = Field(gt=0)
    p90: float = Field(gt=0)
    min: float = Field(default=0.0, ge=0)
    max: float = Field(default=math.inf, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Dist:
        if self.p90 < self.median:
            raise ValueError("p90 must be at least the median")
        return self

    @property
    def sigma(self) -> float:
        return math.log(self.p90 / self.median) / 1.2816


class Window(BaseModel):
    model_config = _STRICT

    start: time = time(23, 0)
    end: time = time(7, 0)

    _t = field_validator("start", "end", mode="before")(_hhmm)

    def contains(self, t: time) -> bool:
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


class Rates(BaseModel):
    """Events per resident per hour, by event kind, for residents who have such a device."""

    model_config = _STRICT

    night: dict[str, float] = Field(default_factory=dict)
    day: dict[str, float] = Field(default_factory=dict)
    night_window: Window = Window()
    need_factor: dict[str, float] = Field(
        default_factory=lambda: {"high": 1.5, "medium": 1.0, "low": 0.5}
    )


class Careline(BaseModel):
    model_config = _STRICT

    callouts: int = Field(default=0, ge=0, description="Call-outs in the run (exact count).")
    priorities: dict[Priority, float] = Field(default_factory=lambda: {Priority.P1: 1.0})
    double_handed_share: float = Field(default=0.0, ge=0, le=1)
    operator: str = "edt-01"


class SilentHandset(BaseModel):
    model_config = _STRICT

    carer: str
    at: time
    for_s: float = Field(gt=0)

    _t = field_validator("at", mode="before")(_hhmm)


class PlannedVisits(BaseModel):
    """Commissioned visits. With ``schedule`` the runs play the scheme's visit schedule through
    the gateway (check-in and check-out on the handset, cancellations through the API:
    ``simulator.visits``); without it, ``count`` visits only keep the run's carers busy
    locally (the gateway never hears of them)."""

    model_config = _STRICT

    count: int = Field(default=0, ge=0)
    duration_s: Dist = Dist(median=900, p90=1500, min=300)
    schedule: Path | None = Field(
        default=None, description="The visit schedule file (the one the gateway loads)."
    )
    late_probability: float = Field(default=0.1, ge=0, le=1)
    late_s: Dist = Dist(median=1500, p90=2400, min=960, max=3600)
    early_s: float = Field(default=300, ge=0, description="On-time arrivals: up to this early.")
    on_time_s: float = Field(default=240, ge=0, description="...or up to this late.")
    frustrated_probability: float = Field(default=0.05, ge=0, le=1)
    cancel: int = Field(default=0, ge=0, description="Visits cancelled through the API.")
    no_show_runs: list[str] = Field(
        default_factory=list, description="Runs whose carers never check in to a visit."
    )


class Carers(BaseModel):
    model_config = _STRICT

    absent: list[str] = Field(default_factory=list, description="Never log in (off sick).")
    never_answer: list[str] = Field(default_factory=list)
    no_answer_probability: float = Field(default=0.0, ge=0, le=1)
    decline_probability: float = Field(default=0.02, ge=0, le=1)
    response_delay_s: Dist = Dist(median=15, p90=45, min=2, max=300)
    on_site_s: Dist = Dist(median=600, p90=1500, min=60)
    travel_noise: float = Field(default=0.2, ge=0, le=2, description="Log-normal sigma.")
    heartbeat_s: float = Field(default=30, gt=0)
    silent_handsets: list[SilentHandset] = Field(default_factory=list)
    outcomes: dict[OutcomeCode, float] = Field(
        default_factory=lambda: {
            OutcomeCode.ASSISTED: 0.55,
            OutcomeCode.FALSE_ALARM: 0.2,
            OutcomeCode.FALL_NO_INJURY_LIFTED: 0.15,
            OutcomeCode.FALL_INJURY_AMBULANCE: 0.05,
            OutcomeCode.HOSPITAL_ADMISSION: 0.02,
            OutcomeCode.UNABLE_TO_GAIN_ACCESS: 0.03,
        }
    )
    planned_visits: PlannedVisits = PlannedVisits()

    @field_validator("outcomes")
    @classmethod
    def _no_other(cls, value: dict[OutcomeCode, float]) -> dict[OutcomeCode, float]:
        if OutcomeCode.OTHER in value:
            raise ValueError("'other' needs a note; the simulator does not send it")
        if not value or sum(value.values()) <= 0:
            raise ValueError("give at least one outcome with a positive weight")
        return value


class HubSilence(BaseModel):
    model_config = _STRICT

    device: str | None = Field(default=None, description="A hub id; else one chosen at random.")
    at: time
    for_s: float = Field(gt=0)

    _t = field_validator("at", mode="before")(_hhmm)


class PowerCut(BaseModel):
    """Mains fails for ``hubs`` hubs at ``at``; each reports power_fail, goes quiet, and calls
    back in (power_restored, then heartbeats) within ``recall_within_s`` of the power returning."""

    model_config = _STRICT

    at: time
    hubs: int = Field(gt=0)
    outage_s: float = Field(default=600, gt=0)
    recall_within_s: float = Field(default=20, gt=0)


class Faults(BaseModel):
    model_config = _STRICT

    hub_heartbeat_s: float = Field(default=60, gt=0, description="Hub heartbeat period.")
    hub_expected_s: int | None = Field(
        default=None,
        gt=0,
        description="Hub heartbeat interval the spawned gateway expects: it is given a copy of"
        " the scheme file with this heartbeat_interval_s on every hub. None: the scheme's own.",
    )
    low_battery: int = Field(default=0, ge=0, description="Low-battery reports (smoke/pendant).")
    tamper: int = Field(default=0, ge=0)
    hub_silence: list[HubSilence] = Field(default_factory=list)
    power_cut: PowerCut | None = None


class BadDevices(BaseModel):
    """Counts of each kind of bad message mixed into the run."""

    model_config = _STRICT

    malformed_json: int = 0
    oversized: int = 0
    unknown_device: int = 0
    invalid_payload: int = 0
    wrong_topic: int = 0
    topic_mismatch: int = 0
    duplicates: int = Field(default=0, description="Re-sends of alarm events already sent.")


class AcceptWithin(BaseModel):
    model_config = _STRICT

    seconds: float = Field(gt=0)
    min_pct: float = Field(ge=0, le=100)


class ExpectVisits(BaseModel):
    """Planned visits' checks (docs/scenarios.md, "Planned visits")."""

    model_config = _STRICT

    max_not_made: int | None = Field(
        default=None,
        ge=0,
        description="At most this many visits due in the run never made (checked in,"
        " frustrated or cancelled); None: reported, not judged (a busy night's tail of visits"
        " not reached by 07:00 is the night's load, not the product's).",
    )
    alert_within_s: float = Field(
        default=120, gt=0, description="Late alert / non-arrival at most this long after due."
    )
    callouts_on_site_within_target_pct: float | None = Field(default=100, ge=0, le=100)


class Expect(BaseModel):
    """Thresholds the verdict must meet; unset ones are not checked."""

    model_config = _STRICT

    lost: int | None = 0
    duplicate_pages: int | None = 0
    min_resolved_pct: float | None = None
    accepted_within: AcceptWithin | None = None
    min_on_site_within_target_pct: float | None = None
    dead_letters_match: bool = False
    max_no_contact_alerts: int | None = None
    visits: ExpectVisits | None = None


class Scenario(BaseModel):
    model_config = _STRICT

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,60}$")
    description: str = ""
    scheme: Path
    start: datetime = Field(description="Scheme-local start (no offset).")
    duration_s: float = Field(gt=0, description="Window in which events are scheduled.")
    drain_s: float = Field(default=3600, ge=0, description="Max extra time to finish alarms.")
    warmup_s: float = Field(default=120, ge=0, description="No alarms before this.")
    speed: float = Field(default=240, gt=0, le=10_000)
    seed: int = 1
    rates: Rates = Rates()
    careline: Careline = Careline()
    carers: Carers = Carers()
    faults: Faults = Faults()
    bad_devices: BadDevices = BadDevices()
    expect: Expect = Expect()

    @field_validator("start")
    @classmethod
    def _naive(cls, value: datetime) -> datetime:
        if value.tzinfo is not None:
            raise ValueError("start is a scheme-local time; drop the offset")
        return value

    def scheme_path(self) -> Path:
        return self.scheme if self.scheme.is_absolute() else REPO / self.scheme

    def offset_of(self, t: time) -> float:
        """Seconds from ``start`` to the next ``t`` (local wall clock) at or after it."""
        at = datetime.combine(self.start.date(), t)
        if at < self.start:
            at += timedelta(days=1)
        return (at - self.start).total_seconds()


def scenario_path(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    return SCENARIO_DIR / f"{name_or_path}.yaml"


def load_scenario(name_or_path: str) -> Scenario:
    """A scenario by name (``simulator/scenarios/<name>.yaml``) or by file path."""
    path = scenario_path(name_or_path)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
        raise FileNotFoundError(f"no scenario {name_or_path!r} (known: {known})")
    data = yaml.safe_load(path.read_text())
    return Scenario.model_validate(data)
