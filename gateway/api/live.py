"""The live view the API reads: the engine's in-memory state, rendered as API models."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, time
from typing import Any

from api_models import (
    Alarm,
    Carer,
    CarerPageState,
    ClockReading,
    DeviceHealth,
    DeviceHealthBoard,
    DeviceProblem,
    DispatchOffer,
    HeldAlarm,
    ProblemKind,
)
from api_models.visits import CarerRun, NightVisits
from devices.scheme import Scheme
from gateway.api import visit_live
from gateway.clock import Clock
from gateway.engine import operator, routing
from gateway.engine.core import SLEEP_IN_DISTURBANCE_LIMIT, night_of
from gateway.engine.model import Alarm as EngineAlarm
from gateway.engine.model import Offer, OperatorIn, VisitControlIn, to_json
from gateway.engine.shell import EngineService
from gateway.registry import SchemeRegistry


def alarm_view(a: EngineAlarm) -> dict[str, Any]:
    """An engine alarm as JSON, without its internal escalation chain and event ids."""
    out: dict[str, Any] = to_json(a)
    out.pop("chain", None)
    out.pop("event_ids", None)
    return out


class EngineLiveView:
    """Implements ``ports.LiveView`` over the running engine."""

    def __init__(
        self,
        engine: EngineService,
        registry: SchemeRegistry,
        clock: Clock,
        handset_timeout_s: int,
    ) -> None:
        self._engine = engine
        self._registry = registry
        self._clock = clock
        self._handset_timeout_s = handset_timeout_s

    def scheme(self, scheme_id: str) -> Scheme | None:
        return self._registry.schemes.get(scheme_id)

    def scheme_ids(self) -> list[str]:
        return sorted(self._registry.schemes)

    def clock(self) -> ClockReading:
        c = self._clock
        return ClockReading(
            now=c.now(), speed=c.speed, anchor_real=c.anchor_real, anchor_scheme=c.anchor_scheme
        )

    def alarms(self, open_only: bool) -> list[Alarm]:
        # Test calls are on the board too (not open: nobody is paged, an operator may promote).
        rows = [a for a in self._engine.state.alarms.values() if a.on_board or not open_only]
        rows.sort(key=lambda a: (a.priority.value, a.opened_at))
        return [Alarm.model_validate(alarm_view(a)) for a in rows]

    def alarm(self, alarm_id: str) -> Alarm | None:
        a = self._engine.state.alarms.get(alarm_id)
        return Alarm.model_validate(alarm_view(a)) if a is not None else None

    def carers(self) -> list[Carer]:
        now = self._clock.now()
        out = []
        for _key, c in sorted(self._engine.state.carers.items()):
            scheme = self._registry.schemes.get(c.scheme)
            if scheme is None:
                continue
            ok, why = routing.routable(scheme, c, now, self._handset_timeout_s)
            roles = routing.on_shift_roles(scheme, c.carer_id, now)
            known = scheme.carer(c.carer_id)
            night = night_of(now.astimezone(scheme.tz))
            disturbed = self._engine.state.disturbances.get(f"{c.scheme}/{c.carer_id}/{night}", 0)
            out.append(
                Carer(
                    scheme=c.scheme,
                    carer_id=c.carer_id,
                    display_name=known.display_name if known else c.carer_id,
                    on_shift=tuple(sorted(r.value for r in roles)),
                    logged_in=c.logged_in,
                    status=c.status.value,
                    handset_seen=c.handset_seen,
                    position=to_json(c.position),
                    busy_with=c.busy_with,
                    routable=ok,
                    reason=why,
                    disturbances_tonight=disturbed,
                )
            )
        return out

    def carer_page(self, scheme_id: str, carer_id: str) -> CarerPageState:
        scheme = self._registry.schemes[scheme_id]
        st = self._engine.state
        core = self._engine.core
        now = self._clock.now()
        offers = []
        alarms = []
        for a in st.alarms.values():
            if a.scheme != scheme_id or not a.is_open:
                continue
            for o in a.offers:
                if o.carer_id == carer_id:
                    offers.append(DispatchOffer.model_validate(core.offer_payload(scheme, a, o)))
            if carer_id in a.accepted_by:
                held = Offer(f"{a.alarm_id}.held", carer_id, a.last_at, "held")
                alarms.append(
                    HeldAlarm.model_validate(
                        {
                            **core.offer_payload(scheme, a, held),
                            "state": a.state.value,
                            "arrived": carer_id in a.arrived_by,
                        }
                    )
                )
        c = st.carers.get(routing.carer_key(scheme_id, carer_id))
        night = night_of(now.astimezone(scheme.tz))
        disturbed = st.disturbances.get(f"{scheme_id}/{carer_id}/{night}", 0)
        carer = scheme.carer(carer_id)
        return CarerPageState(
            carer_id=carer_id,
            display_name=carer.display_name if carer else carer_id,
            scheme=scheme_id,
            now=now,
            logged_in=bool(c and c.logged_in),
            on_shift=sorted(r.value for r in routing.on_shift_roles(scheme, carer_id, now)),
            offers=offers,
            alarms=alarms,
            disturbances_tonight=disturbed,
            waking_night=disturbed > SLEEP_IN_DISTURBANCE_LIMIT,
        )

    def maintenance_default_minutes(self, scheme_id: str) -> int:
        return self._engine.core._policy(scheme_id).maintenance_default_s // 60

    def device_health(self, scheme_id: str | None) -> DeviceHealthBoard:
        """Devices with a problem, from the engine's memory: offline (no contact), open
        technical faults, test windows. Most urgent problem first, then the oldest."""
        st = self._engine.state
        now = self._clock.now()
        order = list(ProblemKind)
        rows: list[DeviceHealth] = []
        total = 0
        for sid in sorted(self._registry.schemes):
            if scheme_id is not None and sid != scheme_id:
                continue
            scheme = self._registry.schemes[sid]
            total += len(scheme.devices)
            for d in scheme.devices:
                key = f"{sid}/{d.device_id}"
                seen = st.device_seen.get(key)
                problems: list[DeviceProblem] = []
                if key in st.no_contact:
                    problems.append(
                        DeviceProblem(
                            kind=ProblemKind.OFFLINE, since=seen, detail="missed heartbeats"
                        )
                    )
                for kind in order:
                    since = st.device_faults.get(f"{key}/{kind.value}")
                    if since is not None:
                        problems.append(DeviceProblem(kind=kind, since=since))
                until = st.device_mode.get(key)
                if until is not None and until > now:
                    problems.append(
                        DeviceProblem(
                            kind=ProblemKind.TEST_WINDOW,
                            since=None,
                            detail=f"until {until.isoformat()}",
                        )
                    )
                if not problems:
                    continue
                problems.sort(key=lambda p: order.index(p.kind))
                flat = scheme.flat_of(d)
                beat = d.expected_heartbeat_s
                missed = int((now - seen).total_seconds() // beat) if seen is not None else 0
                rows.append(
                    DeviceHealth(
                        scheme=sid,
                        device_id=d.device_id,
                        type=d.type.value,
                        flat_id=flat.id if flat else None,
                        location=d.location,
                        last_heard=seen,
                        heartbeat_s=beat,
                        missed_heartbeats=max(missed, 0),
                        test_window_until=until if until is not None and until > now else None,
                        problems=tuple(problems),
                    )
                )
        rows.sort(
            key=lambda r: (
                order.index(r.problems[0].kind),
                r.problems[0].since or now,
                r.key,
            )
        )
        counts: dict[str, int] = {}
        for r in rows:
            for p in r.problems:
                counts[p.kind.value] = counts.get(p.kind.value, 0) + 1
        return DeviceHealthBoard(now=now, devices=tuple(rows), counts=counts, total_devices=total)

    def night_hours(self, scheme_id: str) -> tuple[time, time]:
        policy = self._engine.core._policy(scheme_id)
        return policy.night_start, policy.night_end

    def operator_check(self, inp: OperatorIn) -> operator.Verdict:
        scheme = self._registry.schemes.get(inp.scheme)
        if scheme is None:
            return operator.Verdict(operator.Answer.REFUSED, f"scheme {inp.scheme!r} unknown")
        a = self._engine.state.alarms.get(inp.alarm_id)
        return operator.check(scheme, a, inp, self._clock.now())

    def night_visits(self, scheme_id: str, night: date | None) -> NightVisits | None:
        e = self._engine
        plan = visit_live.plan_for(e.core, e.state, scheme_id, night, self._clock.now())
        return visit_live.night_visits(plan) if plan is not None else None

    def visit_check(self, inp: VisitControlIn) -> str | None:
        e = self._engine
        return visit_live.check_change(e.core, e.state, inp, self._clock.now())

    def carer_run(self, scheme_id: str, carer_id: str) -> CarerRun:
        e = self._engine
        scheme = self._registry.schemes[scheme_id]
        return visit_live.carer_run(e.core, e.state, scheme, carer_id, self._clock.now())

    def stream(self, key: str, event: str) -> AsyncIterator[str]:
        return self._engine.hub.sse(key, event)
