"""The event schedule: a pure, seeded function of (scenario, scheme, seed).

``build_schedule`` returns every planned thing the simulated world does, as (scheme seconds
from the scenario start, action), in order. No clocks, no I/O: the same inputs give the same
list, which a test checks. Periodic background traffic (hub and handset heartbeats) is not in
the schedule; the runner generates it, and the schedule only says when a hub goes quiet.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from devices.events import EventKind, Priority
from devices.registry import Device, DeviceType
from devices.scheme import Resident, RiskFlag, Scheme
from responders.models import ShiftRole
from simulator.movement import base_place, flat_place, travel_seconds
from simulator.scenario import Dist, Scenario

T = TypeVar("T")

# Which device type raises which kind, and whether the gateway should page for it.
KIND_DEVICE: dict[EventKind, DeviceType] = {
    EventKind.PENDANT_PRESS: DeviceType.PENDANT,
    EventKind.FALL_DETECTED: DeviceType.FALL_DETECTOR,
    EventKind.DOOR_OPEN: DeviceType.DOOR_CONTACT,
    EventKind.SMOKE: DeviceType.SMOKE,
    EventKind.FLOOD: DeviceType.FLOOD,
}
BAD_KINDS = (
    "malformed_json",
    "oversized",
    "unknown_device",
    "invalid_payload",
    "wrong_topic",
    "topic_mismatch",
)
CALLOUT_REASONS = (
    "Resident has fallen, not hurt, cannot get up",
    "Resident unwell and anxious, asked for someone to come",
    "No answer to a check call after a pendant press",
    "Carer needed: incontinence, resident distressed",
    "Resident confused and trying to go out",
)


@dataclass(frozen=True, slots=True)
class Login:
    carer: str


@dataclass(frozen=True, slots=True)
class Logout:
    carer: str  # end of shift: after finishing whatever they are doing


@dataclass(frozen=True, slots=True)
class SendEvent:
    device_id: str
    kind: EventKind
    event_id: str
    resident: str | None
    alarm: bool  # the simulator expects the gateway to open (or merge into) an alarm
    zigbee: str | None = None  # friendly name: send as a Zigbee2MQTT state report


@dataclass(frozen=True, slots=True)
class SendCallout:
    callout_id: str
    resident_ref: str
    priority: Priority
    reason: str


@dataclass(frozen=True, slots=True)
class Resend:
    event_id: str  # publish the very same payload again


@dataclass(frozen=True, slots=True)
class SendBad:
    reason: str  # the dead-letter reason the gateway should record
    token: int  # seeds the payload's content


@dataclass(frozen=True, slots=True)
class QuietHub:
    device_id: str
    for_s: float
    why: str  # "silence" or "power_cut"


@dataclass(frozen=True, slots=True)
class HandsetSilent:
    carer: str
    for_s: float


@dataclass(frozen=True, slots=True)
class Visit:
    run: str
    carers: tuple[str, ...]
    flat_id: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class PlayRun:
    """A run's pair start making tonight's visits of the schedule file (``simulator.visits``)."""

    run: str
    carers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CancelVisit:
    """Cancel a planned visit through the API, as the control room would."""

    visit_id: str
    by: str  # "person" or "council"


Action = (
    Login
    | Logout
    | SendEvent
    | SendCallout
    | Resend
    | SendBad
    | QuietHub
    | HandsetSilent
    | Visit
    | PlayRun
    | CancelVisit
)


@dataclass(frozen=True, slots=True)
class Planned:
    at_s: float
    action: Action


def draw(rng: random.Random, d: Dist) -> float:
    """One value from a ``Dist`` (log-normal, clipped)."""
    value = d.median if d.sigma == 0 else rng.lognormvariate(math.log(d.median), d.sigma)
    return min(max(value, d.min), d.max)


def weighted(rng: random.Random, weights: dict[T, float]) -> T:
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


ROUTABLE = frozenset({ShiftRole.WAKING_NIGHT, ShiftRole.SLEEP_IN, ShiftRole.DAY})


def on_shift(scheme: Scheme, when: datetime) -> list[str]:
    """Carers rostered on a routable shift at ``when`` (scheme-local), in scheme order."""
    ids = {s.carer for s in scheme.shifts_at(when) if s.role in ROUTABLE}
    return [c.id for c in scheme.carers if c.id in ids]


def on_shift_at_start(scn: Scenario, scheme: Scheme) -> list[str]:
    """Carers rostered on a routable shift at the start (the sick ones included)."""
    return on_shift(scheme, scn.start + timedelta(seconds=1))


def _handovers(scn: Scenario, scheme: Scheme) -> list[Planned]:
    """Logins at the start and at each shift change; logouts at each shift end."""
    out = [Planned(0.0, Login(c)) for c in on_shift_at_start(scn, scheme)]
    edges = sorted({s.start for s in scheme.rota} | {s.end for s in scheme.rota})
    end = scn.duration_s + scn.drain_s
    for day in range(int(end // 86400) + 2):
        for t in edges:
            at = (
                datetime.combine(scn.start.date() + timedelta(days=day), t) - scn.start
            ).total_seconds()
            if not 0 < at < end:
                continue
            moment = scn.start + timedelta(seconds=at)
            before = set(on_shift(scheme, moment - timedelta(seconds=1)))
            after = on_shift(scheme, moment + timedelta(seconds=1))
            out += [Planned(at, Logout(c)) for c in sorted(before - set(after))]
            out += [Planned(at, Login(c)) for c in after if c not in before]
    return [p for p in out if getattr(p.action, "carer", None) not in scn.carers.absent]


def runs_at_start(scn: Scenario, scheme: Scheme) -> dict[str, tuple[str, ...]]:
    """Double-handed runs (rota ``run:``) on at the start, each with its carers."""
    start = scn.start + timedelta(seconds=1)
    runs: dict[str, list[str]] = {}
    for s in scheme.shifts_at(start):
        if s.run is not None and s.carer not in runs.setdefault(s.run, []):
            runs[s.run].append(s.carer)
    return {r: tuple(cs) for r, cs in sorted(runs.items())}


def devices_of(scheme: Scheme, resident: Resident) -> list[Device]:
    return [
        d
        for d in scheme.devices
        if d.resident == resident.client_ref or (d.resident is None and d.flat == resident.flat)
    ]


def hubs(scheme: Scheme) -> list[Device]:
    return [d for d in scheme.devices if d.type is DeviceType.HUB]


def _is_night(scn: Scenario, at_s: float) -> bool:
    return scn.rates.night_window.contains((scn.start + timedelta(seconds=at_s)).time())


def _expects_alarm(scn: Scenario, kind: EventKind, resident: Resident, at_s: float) -> bool:
    if kind is EventKind.DOOR_OPEN:
        return RiskFlag.WANDERING in resident.risk_flags and _is_night(scn, at_s)
    return True


def _device_events(scn: Scenario, scheme: Scheme, rng: random.Random) -> list[Planned]:
    out: list[Planned] = []
    lo, hi = scn.warmup_s, scn.duration_s
    kinds = sorted(set(scn.rates.night) | set(scn.rates.day))
    for resident in scheme.residents:
        mine = devices_of(scheme, resident)
        factor = scn.rates.need_factor.get(resident.need.value, 1.0)
        for name in kinds:
            kind = EventKind(name)
            dtype = KIND_DEVICE.get(kind)
            device = next((d for d in mine if d.type is dtype), None)
            night = scn.rates.night.get(name, 0.0) * factor / 3600
            day = scn.rates.day.get(name, 0.0) * factor / 3600
            peak = max(night, day)
            if device is None or peak <= 0:
                continue
            t = lo
            while True:  # Poisson process with a night/day rate, by thinning
                t += rng.expovariate(peak)
                if t >= hi:
                    break
                if rng.random() * peak > (night if _is_night(scn, t) else day):
                    continue
                alarm = _expects_alarm(scn, kind, resident, t)
                ev = SendEvent(
                    device.device_id,
                    kind,
                    _uuid(rng),
                    resident.client_ref,
                    alarm,
                    device.zigbee_friendly_name,
                )
                out.append(Planned(t, ev))
                if kind is EventKind.DOOR_OPEN:
                    closed = SendEvent(
                        device.device_id,
                        EventKind.DOOR_CLOSED,
                        _uuid(rng),
                        resident.client_ref,
                        False,
                        device.zigbee_friendly_name,
                    )
                    out.append(Planned(t + rng.uniform(60, 300), closed))
    return out


def _callouts(scn: Scenario, scheme: Scheme, rng: random.Random) -> list[Planned]:
    c = scn.careline
    out: list[Planned] = []
    doubles = [r for r in scheme.residents if RiskFlag.DOUBLE_HANDED in r.risk_flags]
    for i in range(c.callouts):
        at = rng.uniform(scn.warmup_s, scn.duration_s)
        pool = doubles if doubles and rng.random() < c.double_handed_share else scheme.residents
        resident = rng.choice(list(pool))
        cid = f"ARC-{scn.name[:12]}-{scn.seed}-{i + 1:03d}"
        reason = rng.choice(CALLOUT_REASONS)
        out.append(
            Planned(at, SendCallout(cid, resident.client_ref, weighted(rng, c.priorities), reason))
        )
    return out


def _faults(scn: Scenario, scheme: Scheme, rng: random.Random) -> list[Planned]:
    f = scn.faults
    out: list[Planned] = []
    quiet = [d for d in scheme.devices if d.type in (DeviceType.SMOKE, DeviceType.PENDANT)]
    quiet = [d for d in quiet if d.type is DeviceType.SMOKE] or quiet
    for kind, n in ((EventKind.LOW_BATTERY, f.low_battery), (EventKind.TAMPER, f.tamper)):
        for _ in range(n):
            d = rng.choice(quiet)
            at = rng.uniform(scn.warmup_s, scn.duration_s)
            out.append(Planned(at, SendEvent(d.device_id, kind, _uuid(rng), None, False)))
    all_hubs = hubs(scheme)
    for s in f.hub_silence:
        device = s.device or rng.choice(all_hubs).device_id
        out.append(Planned(scn.offset_of(s.at), QuietHub(device, s.for_s, "silence")))
    if f.power_cut is not None:
        pc = f.power_cut
        if pc.hubs > len(all_hubs):
            raise ValueError(f"power cut needs {pc.hubs} hubs; {scheme.id} has {len(all_hubs)}")
        at = scn.offset_of(pc.at)
        for hub in rng.sample(all_hubs, pc.hubs):
            fail_at = at + rng.uniform(0, 3)
            back = at + pc.outage_s + rng.uniform(0, pc.recall_within_s)
            fail = SendEvent(hub.device_id, EventKind.POWER_FAIL, _uuid(rng), None, False)
            out.append(Planned(fail_at, fail))
            out.append(Planned(fail_at + 0.5, QuietHub(hub.device_id, back - fail_at, "power_cut")))
            restored = SendEvent(hub.device_id, EventKind.POWER_RESTORED, _uuid(rng), None, False)
            out.append(Planned(back, restored))
    for h in scn.carers.silent_handsets:
        out.append(Planned(scn.offset_of(h.at), HandsetSilent(h.carer, h.for_s)))
    return out


def _bad(scn: Scenario, alarms: list[Planned], rng: random.Random) -> list[Planned]:
    b = scn.bad_devices
    out: list[Planned] = []
    for reason in BAD_KINDS:
        for _ in range(getattr(b, reason)):
            at = rng.uniform(scn.warmup_s, scn.duration_s)
            out.append(Planned(at, SendBad(reason, rng.getrandbits(32))))
    sent = [p for p in alarms if isinstance(p.action, SendEvent) and p.action.zigbee is None]
    for _ in range(b.duplicates if sent else 0):
        orig = rng.choice(sent)
        assert isinstance(orig.action, SendEvent)
        out.append(Planned(orig.at_s + rng.uniform(0.5, 60), Resend(orig.action.event_id)))
    return out


def _schedule_visits(scn: Scenario, scheme: Scheme, seed: int) -> list[Planned]:
    """The schedule file's runs, and the visits cancelled through the API (own generators,
    keyed by the seed: the rest of the schedule is the same with or without visits)."""
    from simulator import visits  # it uses this module's draws

    loaded = visits.load_tonight(scn, scheme)
    if loaded is None:
        return []
    _schedule, tonight = loaded
    runs = runs_at_start(scn, scheme)
    out = [
        Planned(1.0, PlayRun(r, tuple(c for c in runs.get(r, ()) if c not in scn.carers.absent)))
        for r in sorted({v.run for v in tonight})
    ]
    start = scn.start.replace(tzinfo=scheme.tz)
    cfg = scn.carers.planned_visits
    for at, visit_id, by in visits.cancellations(seed, tonight, cfg, start):
        out.append(Planned(at, CancelVisit(visit_id, by)))
    return out


def _visits(scn: Scenario, scheme: Scheme, rng: random.Random) -> list[Planned]:
    pv = scn.carers.planned_visits
    runs = runs_at_start(scn, scheme)
    if not runs or pv.count == 0 or pv.schedule is not None:
        return []
    out: list[Planned] = []
    names = list(runs)
    per_run = [
        pv.count // len(names) + (1 if i < pv.count % len(names) else 0) for i in range(len(names))
    ]
    span = scn.duration_s - scn.warmup_s
    zones = {s.run: s.zone for s in scheme.rota if s.run is not None}
    for run, n in zip(names, per_run, strict=True):
        carers = tuple(c for c in runs[run] if c not in scn.carers.absent)
        # A run visits the clients nearest its base (the half of the borough it covers).
        base = base_place(scheme, zones.get(run))
        near = sorted(
            scheme.residents,
            key=lambda r: travel_seconds(scheme, base, flat_place(scheme, r.flat)),
        )[: max(4, len(scheme.residents) // 2)]
        for k in range(n):
            at = scn.warmup_s + span * (k + rng.uniform(0.05, 0.6)) / max(n, 1)
            flat = rng.choice(near).flat
            out.append(Planned(at, Visit(run, carers, flat, draw(rng, pv.duration_s))))
    return out


def build_schedule(scn: Scenario, scheme: Scheme, seed: int | None = None) -> list[Planned]:
    """Everything the scenario plans, ordered by time (ties keep generation order)."""
    rng = random.Random(scn.seed if seed is None else seed)
    plan = _handovers(scn, scheme)
    events = _device_events(scn, scheme, rng)
    plan += events
    plan += _callouts(scn, scheme, rng)
    plan += _faults(scn, scheme, rng)
    plan += _bad(scn, events, rng)
    plan += _visits(scn, scheme, rng)
    plan += _schedule_visits(scn, scheme, scn.seed if seed is None else seed)
    order = {id(p): i for i, p in enumerate(plan)}
    return sorted(plan, key=lambda p: (p.at_s, order[id(p)]))
