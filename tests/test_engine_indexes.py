"""The engine state's indexes, deadline heaps, undo log and incremental persistence, over
random sequences of every kind of input (hypothesis rule-based state machine).

After ANY sequence of inputs: every index equals what the primary state says (written out
independently here) and equals a rebuild from scratch; every heap holds exactly the pending
deadlines; the rows written for what changed restore the state exactly; and a step that raises
part-way leaves the state exactly as it was.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from devices.events import EventKind
from devices.scheme import load_scheme
from devices.visits import load_schedule, schedule_beside
from gateway.engine import routing
from gateway.engine.core import Core, EngineState, _Tx
from gateway.engine.model import (
    ActionIn,
    ActionKind,
    AlarmState,
    CarerStatus,
    DeviceModeIn,
    EventIn,
    FaultClearIn,
    Input,
    OperatorIn,
    OperatorOp,
    Outcome,
    Position,
    PresenceIn,
    PromoteIn,
    TickIn,
    TimerIn,
    VisitActionIn,
)
from gateway.engine.persist import changed_rows, state_from_rows, state_to_json
from tests.engine_helpers import HZC, NIGHT, Driver

START = NIGHT.replace(hour=21, minute=50) - timedelta(days=1)
DEVICES = sorted(d.device_id for d in HZC.devices)
HUBS = sorted(d.device_id for d in HZC.devices if d.type.value == "hub")
ALARM_DEVICES = sorted(
    d.device_id for d in HZC.devices if d.type.value in ("pendant", "fall_detector", "smoke")
)
CARERS = sorted(c.id for c in HZC.carers)
FLATS = sorted(f.id for f in HZC.iter_flats())
KINDS = [k.value for k in EventKind]


class Boom(Exception):
    """A fault injected part-way through a step."""


class FaultyCore(Core):
    """The real core, made to raise at the n-th command a step emits (or coverage check),
    after it has already changed some of the state: any rule, visits' included."""

    fail_at: int | None = None

    def _countdown(self) -> None:
        if self.fail_at is not None:
            self.fail_at -= 1
            if self.fail_at <= 0:
                self.fail_at = None
                raise Boom

    def _step(self, tx: _Tx, inp: Input) -> None:
        tx.cmds = _Countdown(self)
        super()._step(tx, inp)

    def _check_coverage(self, tx: _Tx, scheme: Any) -> None:
        self._countdown()
        super()._check_coverage(tx, scheme)


class _Countdown(list[Any]):
    def __init__(self, core: FaultyCore) -> None:
        super().__init__()
        self.core = core

    def append(self, item: Any) -> None:
        self.core._countdown()
        super().append(item)


def expected_indexes(state: EngineState, core: Core) -> dict[str, Any]:
    """Each index as the primary state defines it, written out without the state's code."""
    by_resident: dict[str, set[str]] = defaultdict(set)
    by_device: dict[str, set[str]] = defaultdict(set)
    offers: dict[str, set[str]] = defaultdict(set)
    refs: dict[str, str] = {}
    for a in state.alarms.values():
        for r in a.event_ids:
            refs[r] = a.alarm_id
        if a.is_open and a.resident_ref is not None:
            by_resident[f"{a.scheme}/{a.resident_ref}"].add(a.alarm_id)
        if (a.is_open or a.state is AlarmState.TEST_CALL) and a.device_id is not None:
            by_device[f"{a.scheme}/{a.device_id}"].add(a.alarm_id)
        if a.is_open:
            for o in a.offers:
                offers[routing.carer_key(a.scheme, o.carer_id)].add(a.alarm_id)
    logged_in: dict[str, set[str]] = defaultdict(set)
    for c in state.carers.values():
        if c.logged_in:
            logged_in[c.scheme].add(c.carer_id)
    return {
        "open": sum(a.is_open for a in state.alarms.values()),
        "order": list(state.alarms),
        "dict_order": list(state.alarms),
        "refs": refs,
        "by_resident": dict(by_resident),
        "by_device": dict(by_device),
        "offers": dict(offers),
        "logged_in": dict(logged_in),
        "deadlines": {
            a.alarm_id: a.deadline.due
            for a in state.alarms.values()
            if a.is_open and a.deadline is not None
        },
        "closed": {a.alarm_id: a.last_at for a in state.alarms.values() if not a.is_open},
        "handsets": {
            k: c.handset_seen
            for k, c in state.carers.items()
            if c.logged_in and k not in state.silent_handsets
        },
        "supervision": {
            k: seen + core.limits[k]
            for k, seen in state.device_seen.items()
            if k in core.limits and k not in state.no_contact
        },
    }


def whole(state: EngineState) -> str:
    return json.dumps(state_to_json(state), sort_keys=True)


class Estate(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = FaultyCore({HZC.id: HZC})
        self.d = Driver(START, self.core)
        self.initial = self.core.initial_state(START)
        self.rows: dict[str, Any] = {}  # the engine_state table, as the shell would write it
        self.events: list[tuple[str, str]] = []  # (device, event id) sent
        self._persist()

    def _persist(self) -> None:
        upserts, deletes = changed_rows(self.d.state, self.d.state.take_dirty())
        for k in deletes:
            self.rows.pop(k, None)
        for k, v in upserts.items():
            self.rows[k] = json.loads(v)

    def _feed(self, inp: Input) -> None:
        self.d.feed(inp)
        self._persist()

    # ---- inputs -----------------------------------------------------------------------------

    @rule(carer=st.sampled_from(CARERS), flat=st.sampled_from(FLATS))
    def login(self, carer: str, flat: str) -> None:
        self._feed(PresenceIn(HZC.id, carer, "login", Position(flat=flat)))

    @rule(
        carer=st.sampled_from(CARERS),
        what=st.sampled_from(["logout", "heartbeat", "status"]),
        status=st.sampled_from(list(CarerStatus)),
    )
    def presence(self, carer: str, what: str, status: CarerStatus) -> None:
        self._feed(PresenceIn(HZC.id, carer, what, None, status if what == "status" else None))

    @rule(
        device=st.sampled_from(ALARM_DEVICES) | st.sampled_from(DEVICES),
        kind=st.sampled_from(["pendant_press", "fall_detected", "smoke", "cancel"])
        | st.sampled_from(KINDS),
    )
    def event(self, device: str, kind: str) -> None:
        eid = str(uuid.UUID(int=len(self.events) + 1))
        self.events.append((device, eid))
        self._feed(EventIn(HZC.id, eid, device, kind, self.d.now, self.d.now))

    @precondition(lambda self: bool(self.events))
    @rule(data=st.data())
    def duplicate(self, data: st.DataObject) -> None:
        device, eid = data.draw(st.sampled_from(self.events))
        self._feed(EventIn(HZC.id, eid, device, "pendant_press", self.d.now, self.d.now))

    @rule(hubs=st.lists(st.sampled_from(HUBS), max_size=8))
    def hubs_heard(self, hubs: list[str]) -> None:
        for hub in hubs:
            self.event(hub, "heartbeat")

    @rule(device=st.sampled_from(ALARM_DEVICES), minutes=st.integers(min_value=0, max_value=20))
    def test_window(self, device: str, minutes: int) -> None:
        until = self.d.now + timedelta(minutes=minutes) if minutes else None
        self._feed(DeviceModeIn(HZC.id, device, until))

    @precondition(
        lambda self: any(a.state is AlarmState.TEST_CALL for a in self.d.state.alarms.values())
    )
    @rule(data=st.data())
    def promote(self, data: st.DataObject) -> None:
        calls = sorted(
            a.alarm_id for a in self.d.state.alarms.values() if a.state is AlarmState.TEST_CALL
        )
        self._feed(PromoteIn(HZC.id, data.draw(st.sampled_from(calls))))

    @precondition(lambda self: bool(self.d.state.alarms))
    @rule(
        data=st.data(),
        op=st.sampled_from(list(OperatorOp)),
        carers=st.lists(st.sampled_from(CARERS), min_size=1, max_size=2, unique=True),
        minutes=st.integers(min_value=0, max_value=10),
    )
    def operator(
        self, data: st.DataObject, op: OperatorOp, carers: list[str], minutes: int
    ) -> None:
        alarm_id = data.draw(st.sampled_from(sorted(self.d.state.alarms)))
        self._feed(
            OperatorIn(
                HZC.id,
                alarm_id,
                op,
                "op-1",
                tuple(carers[:1])
                if op in (OperatorOp.ACCEPT, OperatorOp.ARRIVED)
                else tuple(carers),
                Outcome.ASSISTED if op is OperatorOp.RESOLVE else None,
                "note",
                self.d.now + timedelta(minutes=minutes) if minutes else None,
            )
        )

    @precondition(lambda self: bool(self.d.state.device_faults))
    @rule(data=st.data())
    def fault_seen_to(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.d.state.device_faults)))
        scheme, device, code = key.split("/")
        self._feed(FaultClearIn(scheme, device, code, "tech"))

    def _next_steps(self) -> list[tuple[str, str, ActionKind, str | None]]:
        steps: list[tuple[str, str, ActionKind, str | None]] = []
        for a in sorted(self.d.state.alarms.values(), key=lambda a: a.alarm_id):
            if not a.is_open:
                continue
            for o in a.offers:
                steps.append((a.alarm_id, o.carer_id, ActionKind.ACCEPT, o.offer_id))
                steps.append((a.alarm_id, o.carer_id, ActionKind.DECLINE, o.offer_id))
            for cid in a.accepted_by:
                step = ActionKind.RESOLVED if cid in a.arrived_by else ActionKind.ARRIVED
                steps.append((a.alarm_id, cid, step, None))
        return steps

    @precondition(lambda self: bool(self._next_steps()))
    @rule(data=st.data())
    def carer_acts(self, data: st.DataObject) -> None:
        alarm_id, carer, action, offer = data.draw(st.sampled_from(self._next_steps()))
        self._feed(ActionIn(HZC.id, carer, action, alarm_id, offer, Outcome.ASSISTED, "n"))

    @rule(
        seconds=st.integers(min_value=1, max_value=90)
        | st.integers(min_value=60, max_value=4 * 3600)
    )
    def time_passes(self, seconds: int) -> None:
        self.d.advance(seconds)
        # As the shell does: the due alarms from the heap, each with its epoch.
        for a in self.d.state.due_alarms(self.d.now):
            cur = self.d.state.alarms.get(a.alarm_id)
            if cur is not None and cur.deadline is not None:
                self._feed(TimerIn(cur.alarm_id, cur.deadline.epoch))

    @rule(behind=st.sampled_from([None, 0, 30, 200, 4000]))
    def tick(self, behind: int | None) -> None:
        horizon = None if behind is None else self.d.now - timedelta(seconds=behind)
        self._feed(TickIn(horizon, "test" if behind else None))

    @rule()
    def restart(self) -> None:
        """The shell's restart: the state from the rows written so far (last contact comes
        from the journal, as device_seen here)."""
        back, legacy = state_from_rows(self.rows, self.initial.carers, self.d.state.device_seen)
        assert not legacy
        assert back == self.d.state, "the rows written for what changed lost something"
        back.bind_supervision(self.core.limits)  # as the shell does
        self.d.state = back

    @rule(
        fail_at=st.integers(min_value=1, max_value=8),
        which=st.sampled_from(["press", "logout", "tick", "act", "login"]),
        device=st.sampled_from(ALARM_DEVICES),
        carer=st.sampled_from(CARERS),
        seconds=st.integers(min_value=0, max_value=4 * 3600),
    )
    def a_step_fails_part_way(
        self, fail_at: int, which: str, device: str, carer: str, seconds: int
    ) -> None:
        before = whole(self.d.state)
        indexes = self.d.state.index_snapshot()
        self.d.advance(seconds)
        inp: Input
        if which == "press":
            eid = str(uuid.UUID(int=len(self.events) + 1))
            self.events.append((device, eid))
            inp = EventIn(HZC.id, eid, device, "pendant_press", self.d.now, self.d.now)
        elif which == "logout":
            inp = PresenceIn(HZC.id, carer, "logout")
        elif which == "login":
            inp = PresenceIn(HZC.id, carer, "login", Position(flat=FLATS[0]))
        elif which == "act" and self._next_steps():
            alarm_id, cid, action, offer = self._next_steps()[0]
            inp = ActionIn(HZC.id, cid, action, alarm_id, offer, Outcome.ASSISTED, "n")
        else:
            inp = TickIn()
        self.core.fail_at = fail_at
        try:
            self._feed(inp)
        except Boom:
            assert whole(self.d.state) == before, "a failed step changed the state"
            assert self.d.state.index_snapshot() == indexes, "a failed step changed an index"
            self._persist()  # what the rollback marked: rewriting unchanged rows is harmless
        finally:
            self.core.fail_at = None

    # ---- invariants -------------------------------------------------------------------------

    @invariant()
    def indexes_agree_with_the_primary_state(self) -> None:
        got = self.d.state.index_snapshot()
        want = expected_indexes(self.d.state, self.core)
        for name, value in want.items():
            assert got[name] == value, f"index {name} disagrees with the state"

    @invariant()
    def indexes_agree_with_a_rebuild_from_scratch(self) -> None:
        assert self.d.state.index_snapshot() == self.d.state.rebuilt().index_snapshot()

    @invariant()
    def heaps_hold_exactly_the_pending_deadlines(self) -> None:
        # Exactly: the pending maps are compared above; here every pending key has its live
        # entry in the heap, at or before its due time, so none can be missed.
        self.d.state.check_heaps()
        st_ = self.d.state
        due = [a.deadline.due for a in st_.alarms.values() if a.is_open and a.deadline]
        assert st_.next_due() == (min(due) if due else None)


Estate.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEstate = Estate.TestCase


def test_rolled_back_drop_returns_the_alarm_to_its_place() -> None:
    """Undoing a tick that dropped closed alarms puts them back where they were."""
    d = Driver(START, FaultyCore({HZC.id: HZC}))
    d.login(CARERS[0], FLATS[0])
    for device in ALARM_DEVICES[:3]:
        d.event(device, "pendant_press")
    first = next(iter(d.state.alarms))
    d.feed(OperatorIn(HZC.id, first, OperatorOp.RESOLVE, "op", (), Outcome.ASSISTED, "n"))
    d.advance(2 * 3600)
    before = whole(d.state)
    order = list(d.state.alarms)
    state = d.state
    mark = state.begin()
    d.feed(TickIn())
    assert first not in state.alarms
    state.rollback(mark)
    assert list(state.alarms) == order
    assert whole(state) == before
    assert state.index_snapshot() == state.rebuilt().index_snapshot()


# ---- a night with planned visits (Thurrock out of hours): plans join the same state ----------

THR_FILE = Path(__file__).resolve().parents[1] / "examples" / "thurrock-ooh.yaml"
THR = load_scheme(THR_FILE)
THR_PLAN = load_schedule(schedule_beside(THR_FILE), THR)
THR_CARERS = sorted(c.id for c in THR.carers)
THR_VISITS = sorted(THR_PLAN.visits())
THR_PENDANTS = sorted(d.device_id for d in THR.devices if d.type.value in ("pendant", "hub"))
THR_START = datetime(2026, 11, 24, 22, 30, tzinfo=UTC)


class VisitNight(RuleBasedStateMachine):
    """Visits, alarms and carers together: the indexes, the rows written for what changed (the
    night's plan among them) and the undo of a failed step hold here too."""

    def __init__(self) -> None:
        super().__init__()
        self.core = FaultyCore({THR.id: THR}, schedules={THR.id: THR_PLAN})
        self.d = Driver(THR_START, self.core)
        self.initial = self.core.initial_state(THR_START)
        self.rows: dict[str, Any] = {}
        self.n = 0
        for c in THR_CARERS:
            self._feed(PresenceIn(THR.id, c, "login"))

    def _feed(self, inp: Input) -> None:
        self.d.feed(inp)
        upserts, deletes = changed_rows(self.d.state, self.d.state.take_dirty())
        for k in deletes:
            self.rows.pop(k, None)
        for k, v in upserts.items():
            self.rows[k] = json.loads(v)

    @rule(
        carer=st.sampled_from(THR_CARERS),
        action=st.sampled_from(["check_in", "check_out", "frustrated", "contacted"]),
        visit=st.sampled_from(THR_VISITS),
    )
    def visit_action(self, carer: str, action: str, visit: str) -> None:
        self.n += 1
        reason = "no_access" if action == "frustrated" else None
        self._feed(VisitActionIn(THR.id, carer, f"va-{self.n}", action, visit, self.d.now, reason))

    @rule(device=st.sampled_from(THR_PENDANTS))
    def press(self, device: str) -> None:
        self.n += 1
        kind = "pendant_press" if device.endswith("pendant") else "heartbeat"
        self._feed(EventIn(THR.id, f"e-{self.n}", device, kind, self.d.now, self.d.now))

    @rule(carer=st.sampled_from(THR_CARERS), what=st.sampled_from(["login", "logout"]))
    def presence(self, carer: str, what: str) -> None:
        self._feed(PresenceIn(THR.id, carer, what))

    @rule(minutes=st.integers(min_value=1, max_value=90))
    def time_passes(self, minutes: int) -> None:
        self.d.advance(minutes * 60)
        for c in THR_CARERS:
            if self.d.state.carers[f"{THR.id}/{c}"].logged_in:
                self._feed(PresenceIn(THR.id, c, "heartbeat"))
        self._feed(TickIn())

    @precondition(lambda self: any(a.offers for a in self.d.state.alarms.values()))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        held = sorted(
            (a.alarm_id, o.carer_id, o.offer_id)
            for a in self.d.state.alarms.values()
            for o in a.offers
        )
        alarm_id, carer, offer = data.draw(st.sampled_from(held))
        self._feed(ActionIn(THR.id, carer, ActionKind.ACCEPT, alarm_id, offer))

    @rule(
        fail_at=st.integers(min_value=1, max_value=12),
        minutes=st.integers(0, 120),
        carer=st.sampled_from(THR_CARERS),
        action=st.sampled_from(["check_in", "check_out", "tick"]),
        visit=st.sampled_from(THR_VISITS),
    )
    def a_step_fails_part_way(
        self, fail_at: int, minutes: int, carer: str, action: str, visit: str
    ) -> None:
        before = whole(self.d.state)
        indexes = self.d.state.index_snapshot()
        self.d.advance(minutes * 60)
        self.n += 1
        inp: Input = (
            TickIn()
            if action == "tick"
            else VisitActionIn(THR.id, carer, f"va-{self.n}", action, visit, self.d.now)
        )
        self.core.fail_at = fail_at
        try:
            self._feed(inp)
        except Boom:
            assert whole(self.d.state) == before, "a failed step changed the state"
            assert self.d.state.index_snapshot() == indexes
        finally:
            self.core.fail_at = None

    @rule()
    def restart(self) -> None:
        back, _ = state_from_rows(self.rows, self.initial.carers, self.d.state.device_seen)
        assert back == self.d.state, "the rows written for what changed lost something"
        back.bind_supervision(self.core.limits)
        self.d.state = back

    @invariant()
    def indexes_agree(self) -> None:
        got = self.d.state.index_snapshot()
        for name, value in expected_indexes(self.d.state, self.core).items():
            assert got[name] == value, f"index {name} disagrees with the state"
        assert got == self.d.state.rebuilt().index_snapshot()
        self.d.state.check_heaps()


VisitNight.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestVisitNight = VisitNight.TestCase
