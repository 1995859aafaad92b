"""Routing: who may take an alarm, who is nearest, and why. Pure.

A candidate must be rostered on a routable shift (not the on-call senior), logged in, with a
handset heard from recently, available (not on break), not already tried for this alarm, with
the skills the alarm needs, and not busy, unless busy with an alarm at least two priority
levels less urgent (a P1 pre-empts a P3). Among candidates the shortest estimated travel time
wins; free carers come before pre-empted ones. Every evaluation becomes a decision record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from devices.scheme import Point, Scheme
from gateway.engine import travel
from gateway.engine.model import PRIORITY_RANK, Alarm, CarerState, CarerStatus
from responders.models import ShiftRole, Skill

ROUTABLE_ROLES = frozenset({ShiftRole.WAKING_NIGHT, ShiftRole.SLEEP_IN, ShiftRole.DAY})


@dataclass(frozen=True, slots=True)
class Candidate:
    carer_id: str
    eligible: bool
    reason: str  # why excluded, or "eligible" / "eligible (pre-empts P3 alarm)"
    travel_s: float | None = None
    route: str = ""
    preempts: str | None = None  # alarm id this carer would be taken from
    known: bool = True  # position known; unknown positions rank after every known one

    def as_record(self) -> dict[str, object]:
        out: dict[str, object] = {"carer": self.carer_id, "eligible": self.eligible}
        out["reason"] = self.reason
        if self.travel_s is not None:
            out["travel_s"] = round(self.travel_s, 1)
            out["route"] = self.route
        if self.preempts:
            out["preempts"] = self.preempts
        return out


def carer_key(scheme: str, carer_id: str) -> str:
    return f"{scheme}/{carer_id}"


_NO_ROLES: frozenset[ShiftRole] = frozenset()
# id(scheme) -> (scheme, whole-minute rota?, the minute, roles by carer, on-call seniors)
_ROTA: dict[int, tuple[Scheme, bool, object, dict[str, frozenset[ShiftRole]], list[str]]] = {}


def _rota_at(scheme: Scheme, now: datetime) -> tuple[dict[str, frozenset[ShiftRole]], list[str]]:
    """Who is on duty, in which roles, at ``now``; and the on-call seniors.

    Routing asks this once per carer per offer, and reading the rota is a scan of every line,
    so the answer is kept per scheme for the minute: rota lines start and end on whole minutes
    (checked; otherwise it is kept for the exact time only) and zone offsets are whole minutes,
    so it cannot change within one. A memo of a pure function: the answers are the same."""
    hit = _ROTA.get(id(scheme))
    if hit is not None and hit[0] is scheme:
        whole = hit[1]
    else:
        hit = None
        whole = all(
            t.second == 0 and t.microsecond == 0 for s in scheme.rota for t in (s.start, s.end)
        )
    slot: object = now.timestamp() // 60 if whole and now.tzinfo is not None else now
    if hit is not None and hit[2] == slot:
        return hit[3], hit[4]
    roles: dict[str, set[ShiftRole]] = {}
    for s in scheme.shifts_at(now):
        roles.setdefault(s.carer, set()).add(s.role)
    frozen = {c: frozenset(r) for c, r in roles.items()}
    seniors = sorted(c for c, r in frozen.items() if ShiftRole.ON_CALL in r)
    if len(_ROTA) > 256:  # schemes are few and long-lived; tests make many
        _ROTA.clear()
    _ROTA[id(scheme)] = (scheme, whole, slot, frozen, seniors)
    return frozen, seniors


def on_shift_roles(scheme: Scheme, carer_id: str, now: datetime) -> frozenset[ShiftRole]:
    return _rota_at(scheme, now)[0].get(carer_id, _NO_ROLES)


def on_call_seniors(scheme: Scheme, now: datetime) -> list[str]:
    return list(_rota_at(scheme, now)[1])


def handset_live(c: CarerState, now: datetime, timeout_s: int) -> bool:
    return c.handset_seen is not None and now - c.handset_seen <= timedelta(seconds=timeout_s)


def routable(
    scheme: Scheme, c: CarerState, now: datetime, handset_timeout_s: int
) -> tuple[bool, str]:
    """Could this carer be offered anything at all right now? (reason when not)"""
    return _routable(
        on_shift_roles(scheme, c.carer_id, now), c, now - timedelta(seconds=handset_timeout_s)
    )


def _routable(
    roles: frozenset[ShiftRole], c: CarerState, heard_since: datetime
) -> tuple[bool, str]:
    """``routable`` with the carer's roles now and the oldest live handset time worked out
    (once for every carer of an offer, not once each)."""
    if not roles & ROUTABLE_ROLES:
        return False, "on call (senior, told on escalation)" if roles else "off shift"
    if not c.logged_in:
        return False, "logged out"
    if c.handset_seen is None or c.handset_seen < heard_since:  # as ``handset_live``
        return False, "handset silent"
    if c.status is CarerStatus.ON_BREAK:
        return False, "on break"
    if c.status is CarerStatus.UNAVAILABLE:
        return False, "marked unavailable"
    return True, "eligible"


def required_skills(alarm: Alarm) -> frozenset[Skill]:
    return frozenset({Skill.MANUAL_HANDLING}) if alarm.double_handed else frozenset()


def evaluate(
    scheme: Scheme,
    alarm: Alarm,
    carers: Mapping[str, CarerState],
    alarms: Mapping[str, Alarm],
    now: datetime,
    *,
    handset_timeout_s: int,
    params: travel.TravelParams,
    exclude: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Every carer of the scheme, eligible or not, best first."""
    out: list[Candidate] = []
    live = {o.carer_id for o in alarm.offers}
    needs = required_skills(alarm)
    on_duty = _rota_at(scheme, now)[0]
    heard_since = now - timedelta(seconds=handset_timeout_s)
    for carer in scheme.carers:
        c = carers.get(carer_key(scheme.id, carer.id)) or CarerState(carer.id, scheme.id)
        ok, why = _routable(on_duty.get(carer.id, _NO_ROLES), c, heard_since)
        preempts = None
        if ok and (carer.id in alarm.tried or carer.id in exclude):
            ok, why = False, "already offered this alarm"
        if ok and (carer.id in live or carer.id in alarm.accepted_by):
            ok, why = False, "already holds this alarm"
        if ok and not needs <= carer.skills:
            missing = ", ".join(sorted(needs - carer.skills))
            ok, why = False, f"missing skill: {missing}"
        if ok and c.busy_with is not None and c.busy_with != alarm.alarm_id:
            busy = alarms.get(c.busy_with)
            if busy is not None and busy.is_open:
                if PRIORITY_RANK[busy.priority] - PRIORITY_RANK[alarm.priority] >= 2:
                    preempts = busy.alarm_id
                    why = f"eligible (pre-empts {busy.priority} alarm)"
                else:
                    ok, why = False, f"busy with {busy.priority} alarm"
        if not ok:
            out.append(Candidate(carer.id, False, why))
            continue
        if alarm.flat_id is None:
            est = travel.Estimate(params.unknown_position_s, "no flat for this alarm")
        else:
            p = c.position
            origin = travel.Position(
                flat=p.flat,
                block=p.block,
                point=None if p.x is None or p.y is None else _point(p.x, p.y),
                floor=p.floor,
            )
            est = travel.estimate(scheme, origin, alarm.flat_id, params)
        out.append(Candidate(carer.id, True, why, est.seconds, est.route, preempts, est.known))
    out.sort(
        key=lambda k: (
            not k.eligible,
            k.preempts is not None,
            not k.known,
            k.travel_s if k.travel_s is not None else 0.0,
            k.carer_id,
        )
    )
    return out


def _point(x: float, y: float) -> Point:
    return Point(x=x, y=y)
