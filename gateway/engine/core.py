"""The alarm engine's pure core: (state, input, now) -> (new state, commands).

No asyncio, MQTT, SQL or HTTP here. The shell (``gateway.engine.shell``) persists the new state
and runs the commands. Because the core is a function of its inputs, a night can be replayed
and "why did this carer get this alarm at 02:14?" is answered by the decision records it emits.

Invariants (checked by property tests): every open alarm has exactly one live deadline; no
off-shift, logged-out or silent carer is offered anything; no offer is sent once an alarm is
fully accepted; an alarm's transition times never go backwards; a repeated event id never
opens a second alarm.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from devices.events import Priority
from devices.registry import Device, DeviceType
from devices.scheme import Resident, Scheme, SchemeKind
from devices.visits import VisitSchedule
from gateway.engine import (
    alarms,
    carer_actions,
    control_room,
    deadline_rules,
    device_mode,
    dispatch,
    lifecycle,
    routing,
    travel,
    visit_flow,
)
from gateway.engine.carer_actions import SLEEP_IN_DISTURBANCE_LIMIT as SLEEP_IN_DISTURBANCE_LIMIT
from gateway.engine.carer_actions import night_of as night_of
from gateway.engine.lifecycle import ALARM_NAMESPACE as ALARM_NAMESPACE
from gateway.engine.model import (
    ActionIn,
    Alarm,
    AlarmState,
    CalloutIn,
    CarerState,
    Command,
    DeviceModeIn,
    EscalationChain,
    EventIn,
    FaultClearIn,
    Input,
    NotifyControlRoom,
    Offer,
    OperatorIn,
    PresenceIn,
    PromoteIn,
    RaiseTechnical,
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
                a = tx.alarm_map().get(inp.alarm_id)
                # A stale timer (the alarm moved on, so its epoch moved on) is ignored.
                if a is not None and a.is_open and a.deadline and a.deadline.epoch == inp.epoch:
                    deadline_rules.on_deadline(self, tx, a)
            case TickIn():
                self._on_tick(tx, inp)
            case VisitActionIn():
                visit_flow.on_action(self, tx, inp)
            case VisitControlIn():
                visit_flow.on_control(self, tx, inp)

    @staticmethod
    def next_due(state: EngineState) -> datetime | None:
        return state.next_due()

    # ---- helpers ----------------------------------------------------------------------------

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

    # ---- dispatch and escalation ------------------------------------------------------------

    # ---- inputs -----------------------------------------------------------------------------

    # ---- test windows -----------------------------------------------------------------------

    # ---- the control room's actions ---------------------------------------------------------

    def _routable_count(self, tx: _Tx, scheme: Scheme, *, stop_at: int | None = None) -> int:
        """How many carers could be offered an alarm now (counting stops at ``stop_at``).

        Only logged-in carers can be, so only they are looked at (an index of the state)."""
        n = 0
        carers = tx.carer_map()
        for cid in tx.state.logged_in(scheme.id):
            c = carers.get(routing.carer_key(scheme.id, cid))
            if c is None or scheme.carer(cid) is None:
                continue
            if routing.routable(scheme, c, tx.now, self.config.handset_timeout_s)[0]:
                n += 1
                if stop_at is not None and n >= stop_at:
                    break
        return n

    def _check_coverage(self, tx: _Tx, scheme: Scheme) -> None:
        """Nobody routable on shift is itself a P1 for the control room, at once."""
        alerted = scheme.id in tx.state.coverage_alerted
        # Whether anyone is routable is all that matters unless the alert is to be lifted.
        n = self._routable_count(tx, scheme, stop_at=None if alerted else 1)
        if n == 0 and not alerted:
            tx.state.set_coverage_alerted(scheme.id, True)
            tx.cmds.append(
                NotifyControlRoom(
                    scheme.id,
                    Priority.P1,
                    "no_carer_available",
                    "no carer on shift is logged in with a working handset",
                )
            )
        elif n > 0 and alerted:
            tx.state.set_coverage_alerted(scheme.id, False)
            tx.cmds.append(
                NotifyControlRoom(
                    scheme.id, Priority.P3, "carer_available", f"{n} carer(s) routable again"
                )
            )

    def _lag(
        self,
        tx: _Tx,
        behind_s: float,
        why: str | None,
        held: Callable[[], Mapping[str, int]],
    ) -> None:
        """Tell each scheme's control room once that the gateway is behind, and when it has
        caught up: devices are not blamed meanwhile, and somebody must know that."""
        cfg = self.config
        if not tx.state.lag_alerted and behind_s > cfg.lag_alert_s:
            tx.state.set_lag_alerted(True)
            counts = held()
            for sid in sorted(self.schemes):
                tx.cmds.append(
                    NotifyControlRoom(
                        sid,
                        Priority.P2,
                        "gateway_behind",
                        f"gateway {round(behind_s)}s behind ({why or 'ingest lagging'}):"
                        f" device silence is judged only up to what has arrived;"
                        f" {counts.get(sid, 0)} device(s) silent on the clock are not blamed yet",
                    )
                )
        elif tx.state.lag_alerted and behind_s <= cfg.lag_alert_s / 2:
            tx.state.set_lag_alerted(False)
            for sid in sorted(self.schemes):
                tx.cmds.append(
                    NotifyControlRoom(
                        sid,
                        Priority.P3,
                        "gateway_caught_up",
                        f"gateway caught up ({round(behind_s)}s behind): supervision is live",
                    )
                )

    def _held_back(self, tx: _Tx, judge: datetime) -> dict[str, int]:
        """Per scheme, devices silent on the clock but not up to the ingest horizon (judged
        only when the control room is told the gateway is behind: rare, so a scan is fine)."""
        held: dict[str, int] = {}
        for key, after in tx.state.supervision_pending().items():
            if judge <= after < tx.now:
                sid = key.partition("/")[0]
                held[sid] = held.get(sid, 0) + 1
        return held

    def _on_tick(self, tx: _Tx, tick: TickIn) -> None:
        """Supervision: what fell due since the last tick, found in the state's deadline heaps,
        so a tick costs what is due, not the estate."""
        cfg = self.config
        now = tx.now
        st = tx.state
        # Silence counts only up to the ingest horizon: what is still queued inside the
        # gateway may be exactly the heartbeat that clears the device.
        judge = now if tick.horizon is None else min(now, tick.horizon)
        # Overdue deadlines fire here too: a missed timer cannot leave an alarm stranded.
        for aid in st.due_alarms_in_order(now):
            cur = tx.alarm_map()[aid]
            if cur.is_open and cur.deadline and cur.deadline.due <= now:
                deadline_rules.on_deadline(self, tx, cur)
        order = self.order
        # Handsets last heard before judge - timeout are silent (``routing.handset_live``).
        silent = st.handsets_silent_before(judge - timedelta(seconds=cfg.handset_timeout_s))
        silent.sort(key=lambda k: order.get(k, -1))
        # Devices whose allowed silence ended before the horizon: no contact.
        quiet = [k for k in st.devices_silent_after(judge) if k in self.devices]
        quiet.sort(key=lambda k: order[k])
        by_scheme: dict[str, tuple[list[str], list[str]]] = {}
        for key in silent:
            by_scheme.setdefault(key.partition("/")[0], ([], []))[0].append(key)
        for key in quiet:
            by_scheme.setdefault(key.partition("/")[0], ([], []))[1].append(key)
        for scheme in self.schemes.values():
            carers, devices = by_scheme.get(scheme.id, ((), ()))
            for key in carers:
                c = tx.carer_map().get(key)
                if c is None or not c.logged_in or scheme.carer(c.carer_id) is None:
                    continue
                if key in st.silent_handsets or routing.handset_live(
                    c, judge, cfg.handset_timeout_s
                ):
                    continue
                st.set_silent(key, True)
                tx.cmds.append(
                    NotifyControlRoom(
                        scheme.id,
                        Priority.P2,
                        "handset_silent",
                        f"handset of carer {c.carer_id} silent; not routable",
                    )
                )
                dispatch.withdraw_all(self, tx, scheme.id, c.carer_id, "handset silent")
            self._check_coverage(tx, scheme)
            for key in devices:
                self._no_contact(tx, scheme, key, judge)
        behind_s = (now - judge).total_seconds()
        self._lag(tx, behind_s, tick.behind, lambda: self._held_back(tx, judge))
        # A test window ends itself when it runs out, and the control room sees it end.
        modes = tx.state.device_mode
        for key in sorted(k for k, until in modes.items() if until <= now):
            device_mode.ended(tx, key, "expired")
        # Closed alarms (and test calls nobody promoted) are kept a while so late actions and
        # the board get a clear answer, then dropped.
        for aid in st.closed_before(now - timedelta(seconds=cfg.closed_keep_s)):
            a = tx.alarm_map().get(aid)
            if a is not None and not a.is_open:
                tx.drop_alarm(aid)
        # Planned visits: late, contact, critical, missed, judged up to the ingest horizon
        # (a check-in still queued inside the gateway must not read as a late visit).
        visit_flow.on_tick(self, tx, judge)

    def _no_contact(self, tx: _Tx, scheme: Scheme, key: str, judge: datetime) -> None:
        """A device silent for its allowed misses (up to the horizon): tell the control room,
        and for a high-risk resident's hub open a welfare check."""
        cfg = self.config
        now = tx.now
        info = self.devices[key]
        d = info.device
        last = tx.state.device_seen.get(key)
        if last is None or key in tx.state.no_contact or judge - last <= info.limit:
            return
        tx.state.set_no_contact(key, True)
        tx.cmds.append(
            RaiseTechnical(
                scheme.id,
                d.device_id,
                "no_contact",
                f"silent for {cfg.supervision_misses} intervals",
                now,
            )
        )
        resident = info.flat_resident
        if d.type is DeviceType.HUB and resident is not None and "high_risk" in resident.risk_flags:
            a = Alarm(
                alarm_id=str(uuid.uuid5(ALARM_NAMESPACE, f"nocontact/{key}/{last.isoformat()}")),
                scheme=scheme.id,
                kind="no_contact",
                priority=Priority.P2,
                state=AlarmState.RAISED,
                opened_at=now,
                received_at=now,
                last_at=now,
                resident_ref=resident.client_ref,
                flat_id=resident.flat,
                device_id=d.device_id,
                chain=replace(cfg.chain, advise_edt=scheme.kind is SchemeKind.COMMUNITY),
                reason="hub silent: resident has no working alarm (welfare check)",
            )
            if lifecycle.open_for(tx, scheme.id, resident.client_ref, None) is None:
                alarms.open_alarm(self, tx, a, None)
