"""The alarm engine's pure core: (state, input, now) -> (new state, commands).

No asyncio, MQTT, SQL or HTTP here. The shell (``gateway.engine.shell``) persists the new state
and runs the commands. Because the core is a function of its inputs, a night can be replayed
and "why did this carer get this alarm at 02:14?" is answered by the decision records it emits.

Invariants (checked by property tests): every open alarm has exactly one live deadline; no
off-shift, logged-out or silent carer is offered anything; no offer is sent once an alarm is
fully accepted; an alarm's transition times never go backwards; a repeated event id never
opens a second alarm.

``Core`` is the one entry point (``step``, ``initial_state``, ``next_due``); it holds what is
worked out once from the schemes and routes each input to the module whose responsibility it
is. The rules are functions of ``(core, tx, ...)`` in:

- ``lifecycle``: the primitives every rule changes an alarm through (transition, deadline,
  close, Careline status);
- ``alarms``: raising from an event or callout, merging, clearing, cancelling, resolving;
- ``dispatch``: offers, escalation, withdrawing an offer;
- ``carer_actions``: accept, decline, arrived, resolved (a table action -> handler),
  pre-emption, sleep-in disturbances, presence;
- ``deadline_rules``: what each deadline kind does when it falls due (a table kind -> handler);
- ``supervision``: the tick (silent handsets and devices, coverage, lag, clean-up);
- ``control_room``: the operator's actions, promoting a test call, a fault seen to;
- ``device_mode``: test windows and test calls;
- ``visit_flow``: planned visits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from devices.registry import Device, DeviceType
from devices.scheme import Resident, Scheme
from devices.visits import VisitSchedule
from gateway.engine import (
    alarms,
    carer_actions,
    control_room,
    deadline_rules,
    device_mode,
    routing,
    supervision,
    travel,
    visit_flow,
)
from gateway.engine.carer_actions import SLEEP_IN_DISTURBANCE_LIMIT as SLEEP_IN_DISTURBANCE_LIMIT
from gateway.engine.carer_actions import night_of as night_of
from gateway.engine.lifecycle import ALARM_NAMESPACE as ALARM_NAMESPACE
from gateway.engine.model import (
    ActionIn,
    Alarm,
    CalloutIn,
    CarerState,
    Command,
    DeviceModeIn,
    EscalationChain,
    EventIn,
    FaultClearIn,
    Input,
    Offer,
    OperatorIn,
    PresenceIn,
    PromoteIn,
    TickIn,
    TimerIn,
    VisitActionIn,
    VisitControlIn,
)
from gateway.engine.state import EngineState as EngineState  # the state lives beside its indexes
from gateway.engine.triage import (
    TriagePolicy,
    load_policy,
)
from gateway.engine.visits import NightPlan

_ALARM_DEVICE_TYPES = {DeviceType.PENDANT, DeviceType.FALL_DETECTOR}


@dataclass(frozen=True, slots=True)
class EngineConfig:
    policy: TriagePolicy = field(default_factory=TriagePolicy)
    chain: EscalationChain = field(default_factory=EscalationChain)
    travel: travel.TravelParams = field(default_factory=travel.TravelParams)
    handset_timeout_s: int = 120
    supervision_misses: int = 3
    # The control room is told the gateway is behind once the ingest horizon lags engine time
    # by more than this (and told it caught up below half of it): one alert, not one a device.
    lag_alert_s: int = 60
    closed_keep_s: int = 3600


class _Tx:
    """One step: the state (changed in place; ``Core.step`` undoes it all if the step raises),
    the time, and the commands so far."""

    __slots__ = ("cmds", "now", "state")

    def __init__(self, state: EngineState, now: datetime) -> None:
        self.state = state
        self.now = now
        self.cmds: list[Command] = []

    def alarm_map(self) -> Mapping[str, Alarm]:
        return self.state.alarms

    def carer_map(self) -> Mapping[str, CarerState]:
        return self.state.carers

    def put_alarm(self, a: Alarm) -> None:
        self.state.put_alarm(a)

    def drop_alarm(self, alarm_id: str) -> None:
        self.state.drop_alarm(alarm_id)

    def put_carer(self, c: CarerState) -> None:
        self.state.put_carer(routing.carer_key(c.scheme, c.carer_id), c)

    def seen(self, key: str, at: datetime) -> None:
        self.state.see(key, at)

    def set_mode(self, key: str, until: datetime | None) -> None:
        self.state.set_mode(key, until)

    def plan_map(self) -> Mapping[str, NightPlan]:
        return self.state.visit_plans

    def put_plan(self, plan: NightPlan) -> None:
        self.state.put_plan(plan.key, plan)

    def drop_plan(self, key: str) -> None:
        self.state.put_plan(key, None)

    def fault(self, key: str, since: datetime | None) -> bool:
        """Open (``since``) or clear (None) a device fault; True if that changed anything."""
        return self.state.set_fault(key, since)

    def disturb(self, key: str) -> int:
        return self.state.disturb(key)


@dataclass(frozen=True, slots=True)
class _DeviceInfo:
    """What the rules need about a device, worked out once from the (static) scheme."""

    device: Device
    resident: Resident | None  # its resident, else the first resident of its flat
    flat_id: str | None
    sole: bool  # the resident's only pendant or fall detector (or a hub)
    flat_resident: Resident | None  # for a silent hub: its resident or its flat's first
    limit: timedelta  # silence allowed before "no contact"


class Core:
    """The engine's rules over the schemes it serves. Stateless itself: state is passed in."""

    def __init__(
        self,
        schemes: Mapping[str, Scheme],
        config: EngineConfig | None = None,
        schedules: Mapping[str, VisitSchedule] | None = None,
    ):
        self.schemes = dict(schemes)
        self.config = config or EngineConfig()
        # Planned visits (devices.visits), per scheme that has a schedule.
        self.schedules = {k: v for k, v in (schedules or {}).items() if k in self.schemes}
        self.policies = {sid: load_policy(s.triage) for sid, s in self.schemes.items() if s.triage}
        # Per device, worked out once, so an event never scans a scheme's devices or residents.
        self.devices: dict[str, _DeviceInfo] = {}
        for s in self.schemes.values():
            self.devices.update(self._device_infos(s))
        # Each device's allowed silence, for the state's supervision heap.
        self.limits: dict[str, timedelta] = {k: d.limit for k, d in self.devices.items()}
        # Schemes, and within each its carers then its devices, in the order of the scheme
        # files: what falls due in one tick is handled in this order, as a walk of them was.
        self.order: dict[str, int] = {}
        for s in self.schemes.values():
            for carer in s.carers:
                self.order[routing.carer_key(s.id, carer.id)] = len(self.order)
            for d in s.devices:
                self.order[f"{s.id}/{d.device_id}"] = len(self.order)

    def _device_infos(self, scheme: Scheme) -> dict[str, _DeviceInfo]:
        first_in_flat: dict[str, Resident] = {}
        for r in scheme.residents:
            first_in_flat.setdefault(r.flat, r)
        alarm_devices: dict[str, int] = {}
        for d in scheme.devices:
            if d.resident is not None and d.type in _ALARM_DEVICE_TYPES:
                alarm_devices[d.resident] = alarm_devices.get(d.resident, 0) + 1
        out = {}
        misses = self.config.supervision_misses
        for d in scheme.devices:
            resident = scheme.resident(d.resident) if d.resident else None
            flat = scheme.flat_of(d)
            if resident is None and flat is not None:
                resident = first_in_flat.get(flat.id)
            sole = False
            if resident is not None:
                mine = d.resident == resident.client_ref and d.type in _ALARM_DEVICE_TYPES
                sole = d.type is DeviceType.HUB or (
                    mine and alarm_devices.get(resident.client_ref, 0) <= 1
                )
            own = scheme.resident(d.resident) if d.resident else None
            if own is None and d.flat:
                own = first_in_flat.get(d.flat)
            out[f"{scheme.id}/{d.device_id}"] = _DeviceInfo(
                device=d,
                resident=resident,
                flat_id=flat.id if flat else None,
                sole=sole,
                flat_resident=own,
                limit=timedelta(seconds=d.expected_heartbeat_s * misses),
            )
        return out

    def _policy(self, scheme_id: str) -> TriagePolicy:
        """The scheme's own triage policy (its file's ``triage:`` section), else the default."""
        return self.policies.get(scheme_id, self.config.policy)

    # ---- state ------------------------------------------------------------------------------

    def initial_state(self, now: datetime) -> EngineState:
        """Everyone logged out; every device counted as heard from now (a start-up grace)."""
        carers = {}
        seen = {}
        for s in self.schemes.values():
            for c in s.carers:
                carers[routing.carer_key(s.id, c.id)] = CarerState(c.id, s.id)
            for d in s.devices:
                seen[f"{s.id}/{d.device_id}"] = now
        state = EngineState(carers=carers, device_seen=seen)
        state.bind_supervision(self.limits)
        return state

    def step(
        self, state: EngineState, inp: Input, now: datetime
    ) -> tuple[EngineState, list[Command]]:
        """Apply one input to ``state`` in place and return it with the commands. If the step
        raises, every change it made is undone first: the state is as it was."""
        state.bind_supervision(self.limits)
        mark = state.begin()
        try:
            tx = _Tx(state, now)
            self._step(tx, inp)
        except BaseException:
            state.rollback(mark)
            raise
        state.commit(mark)
        return state, tx.cmds

    def _step(self, tx: _Tx, inp: Input) -> None:
        match inp:
            case EventIn():
                alarms.on_event(self, tx, inp)
            case CalloutIn():
                alarms.on_callout(self, tx, inp)
            case ActionIn():
                carer_actions.on_action(self, tx, inp)
            case PresenceIn():
                carer_actions.on_presence(self, tx, inp)
            case DeviceModeIn():
                device_mode.on_mode(self, tx, inp)
            case PromoteIn():
                control_room.on_promote(self, tx, inp)
            case OperatorIn():
                control_room.on_operator(self, tx, inp)
            case FaultClearIn():
                control_room.on_fault_clear(tx, inp)
            case TimerIn():
                deadline_rules.on_timer(self, tx, inp)
            case TickIn():
                supervision.on_tick(self, tx, inp)
            case VisitActionIn():
                visit_flow.on_action(self, tx, inp)
            case VisitControlIn():
                visit_flow.on_control(self, tx, inp)

    def _check_coverage(self, tx: _Tx, scheme: Scheme) -> None:
        """``supervision.check_coverage``, reached through the core so that a test can make a
        step fail part-way at it (``FaultyCore`` in tests/test_engine_indexes.py)."""
        supervision.check_coverage(self, tx, scheme)

    @staticmethod
    def next_due(state: EngineState) -> datetime | None:
        return state.next_due()

    # ---- what a carer's handset is sent -----------------------------------------------------

    def offer_payload(self, scheme: Scheme, a: Alarm, offer: Offer) -> dict[str, Any]:
        """Only what the carer needs for this alarm (no other residents, no client ref)."""
        resident = scheme.resident(a.resident_ref) if a.resident_ref else None
        flat = scheme.flat(a.flat_id) if a.flat_id else None
        block = scheme.block(flat.block) if flat else None
        return {
            "offer_id": offer.offer_id,
            "alarm_id": a.alarm_id,
            "priority": a.priority.value,
            "kind": a.kind,
            "role": offer.role,
            "resident_name": resident.display_name if resident else None,
            "flat": flat.number if flat else None,
            "flat_id": flat.id if flat else None,
            "block": block.name if block else None,
            "floor": flat.floor if flat else None,
            "care_note": resident.care_notes if resident else "",
            "raised_at": a.opened_at.isoformat(),
            "double_handed": a.double_handed,
            "welfare_check": a.welfare_check,
            "count": a.count,
        }
