"""Invariants of the engine core over random nights (hypothesis rule-based state machine)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from gateway.engine import routing
from gateway.engine.model import (
    OPEN_STATES,
    ActionKind,
    ActionResult,
    AlarmState,
    CancelOffer,
    Command,
    Outcome,
    PresenceIn,
    RecordTransition,
    ScheduleDeadline,
    SendOffer,
    TickIn,
    TimerIn,
)
from gateway.engine.persist import state_from_json, state_to_json
from tests.engine_helpers import HZC, NIGHT, Driver

FLATS = sorted(f.id for f in HZC.iter_flats())
ALARM_DEVICES = sorted(
    d.device_id for d in HZC.devices if d.type.value in ("pendant", "fall_detector", "smoke")
)
CARERS = sorted(c.id for c in HZC.carers)
START = NIGHT.replace(hour=22, minute=30) - timedelta(days=1)
# Carers rostered around the start: drawn more often, so pairs are routable and get offers.
ROSTERED = sorted(
    c
    for c in CARERS
    if any(routing.on_shift_roles(HZC, c, START + timedelta(minutes=m)) for m in (0, 45, 120))
)
# Devices of double-handed residents: pairs, and the close paths that strand a pair's offer.
PAIR_DEVICES = sorted(
    d.device_id
    for d in HZC.devices
    if d.device_id in ALARM_DEVICES
    and any(
        "double_handed" in r.risk_flags and (d.resident == r.client_ref or d.flat == r.flat)
        for r in HZC.residents
    )
)


class Night(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        # Start at 22:30 so shifts begin and end during the run as well.
        self.d = Driver(START)
        self.events: list[str] = []
        self.sent_by: dict[str, str] = {}  # event id -> the device that sent it
        self.last_at: dict[str, object] = {}
        # What the handsets show, built only from the messages they were sent:
        # (carer, offer_id) -> alarm_id for offers, (carer, alarm_id) for alarms they hold.
        self.shown: dict[tuple[str, str], str] = {}
        self.holding: set[tuple[str, str]] = set()

    def _handsets(self, cmds: list[Command]) -> None:
        for c in cmds:
            if isinstance(c, SendOffer):
                self.shown[(c.carer_id, c.offer_id)] = c.alarm_id
            elif isinstance(c, CancelOffer):
                self.shown.pop((c.carer_id, c.offer_id), None)
                self.holding.discard((c.carer_id, c.alarm_id))
            elif isinstance(c, ActionResult) and c.ok and c.action in ("accept", "decline"):
                # The handset answered its own offer: it is no longer an offer on screen.
                for key, alarm_id in list(self.shown.items()):
                    if key[0] == c.carer_id and alarm_id == c.alarm_id:
                        del self.shown[key]
                if c.action == "accept":
                    self.holding.add((c.carer_id, c.alarm_id))
            elif isinstance(c, ActionResult) and c.ok and c.action == "resolved":
                self.holding.discard((c.carer_id, c.alarm_id))

    def _check(self, before: dict[str, AlarmState], cmds: list[Command]) -> None:
        state = self.d.state
        preempted = {
            c.alarm_id for c in cmds if isinstance(c, RecordTransition) and c.state == "preempted"
        }
        for c in cmds:
            if isinstance(c, SendOffer):
                scheme = HZC
                carer = state.carers[routing.carer_key(scheme.id, c.carer_id)]
                ok, why = routing.routable(
                    scheme, carer, self.d.now, self.d.core.config.handset_timeout_s
                )
                assert ok, f"offer to {c.carer_id} who is {why}"
                prior = before.get(c.alarm_id)
                if prior in (AlarmState.ACCEPTED, AlarmState.ARRIVED):
                    assert c.alarm_id in preempted, "offer sent after the alarm was accepted"
                after = state.alarms[c.alarm_id].state
                assert after not in (AlarmState.ACCEPTED, AlarmState.ARRIVED), (
                    "offer in accepting step"
                )
                assert after is not AlarmState.TEST_CALL, "a test call was offered to a carer"
            if isinstance(c, RecordTransition):
                last = self.last_at.get(c.alarm_id)
                assert last is None or c.at >= last, "transition time went backwards"  # type: ignore[operator]
                self.last_at[c.alarm_id] = c.at
        scheduled = {c.alarm_id: c for c in cmds if isinstance(c, ScheduleDeadline)}
        for a in state.alarms.values():
            if a.alarm_id in scheduled:
                assert a.deadline is not None and scheduled[a.alarm_id].epoch == a.deadline.epoch

    def _feed(self, inp: object) -> list[Command]:
        before = {k: a.state for k, a in self.d.state.alarms.items()}
        cmds = self.d.feed(inp)  # type: ignore[arg-type]
        self._handsets(cmds)
        self._check(before, cmds)
        return cmds

    @initialize(flats=st.lists(st.sampled_from(FLATS), min_size=2, max_size=2))
    def shift_starts(self, flats: list[str]) -> None:
        """The late pair is on and signed in, so most nights have someone to offer to."""
        from gateway.engine.model import Position

        on = [c for c in ROSTERED if routing.on_shift_roles(HZC, c, START)][:2]
        for carer, flat in zip(on, flats, strict=False):
            self._feed(PresenceIn(HZC.id, carer, "login", Position(flat=flat)))

    @rule(carer=st.sampled_from(CARERS) | st.sampled_from(ROSTERED), flat=st.sampled_from(FLATS))
    def login(self, carer: str, flat: str) -> None:
        from gateway.engine.model import Position

        self._feed(PresenceIn(HZC.id, carer, "login", Position(flat=flat)))

    @rule(carer=st.sampled_from(CARERS))
    def logout(self, carer: str) -> None:
        self._feed(PresenceIn(HZC.id, carer, "logout"))

    @rule()
    def heartbeats(self) -> None:
        for c in list(self.d.state.carers.values()):
            if c.logged_in:
                self._feed(PresenceIn(HZC.id, c.carer_id, "heartbeat"))

    @rule(
        device=st.sampled_from(ALARM_DEVICES) | st.sampled_from(PAIR_DEVICES),
        kind=st.sampled_from(["pendant_press", "fall_detected", "cancel", "smoke"]),
    )
    def event(self, device: str, kind: str) -> None:
        from gateway.engine.model import EventIn

        eid = str(uuid.UUID(int=len(self.events) + 1))
        self.events.append(eid)
        self.sent_by[eid] = device
        until = self.d.state.device_mode.get(f"{HZC.id}/{device}")
        cmds = self._feed(EventIn(HZC.id, eid, device, kind, self.d.now, self.d.now))
        if until is not None and until > self.d.now:
            if kind == "smoke":  # a fire in a test window is always real
                ref = f"{HZC.id}/{device}/{eid}"  # events are known per (device, event id)
                [a] = [a for a in self.d.state.alarms.values() if ref in a.event_ids]
                assert a.is_open, "a fire in a test window did not open an alarm"
            else:
                assert not [c for c in cmds if isinstance(c, SendOffer)], "test window paged"

    @rule(
        device=st.sampled_from(ALARM_DEVICES) | st.sampled_from(PAIR_DEVICES),
        minutes=st.integers(min_value=0, max_value=30),
    )
    def test_window(self, device: str, minutes: int) -> None:
        from gateway.engine.model import DeviceModeIn

        until = self.d.now + timedelta(minutes=minutes) if minutes else None
        self._feed(DeviceModeIn(HZC.id, device, until))

    @precondition(
        lambda self: any(a.state is AlarmState.TEST_CALL for a in self.d.state.alarms.values())
    )
    @rule(data=st.data())
    def promote(self, data: st.DataObject) -> None:
        from gateway.engine.model import PromoteIn

        calls = sorted(
            a.alarm_id for a in self.d.state.alarms.values() if a.state is AlarmState.TEST_CALL
        )
        alarm_id = data.draw(st.sampled_from(calls))
        self._feed(PromoteIn(HZC.id, alarm_id, "operator"))
        assert self.d.state.alarms[alarm_id].is_open, "a promoted test call is not open"

    @precondition(lambda self: bool(self.events))
    @rule(data=st.data())
    def duplicate_event(self, data: st.DataObject) -> None:
        from gateway.engine.model import EventIn

        eid = data.draw(st.sampled_from(self.events))
        # The same device resending (a true duplicate), or another device reusing the id.
        device = data.draw(st.just(self.sent_by[eid]) | st.sampled_from(ALARM_DEVICES))
        before = set(self.d.state.alarms)
        cmds = self._feed(EventIn(HZC.id, eid, device, "pendant_press", self.d.now, self.d.now))
        opened = set(self.d.state.alarms) - before
        # A repeated event id never opens a second alarm (it may merge if it is new to all).
        ref = f"{HZC.id}/{device}/{eid}"  # de-duplication is per (device, event id)
        if any(ref in a.event_ids for a in self.d.state.alarms.values() if a.alarm_id in before):
            assert not opened
            assert not [c for c in cmds if isinstance(c, SendOffer)]

    @precondition(lambda self: any(a.is_open for a in self.d.state.alarms.values()))
    @rule(data=st.data(), action=st.sampled_from(list(ActionKind)))
    def carer_action(self, data: st.DataObject, action: ActionKind) -> None:
        open_alarms = sorted(a.alarm_id for a in self.d.state.alarms.values() if a.is_open)
        alarm_id = data.draw(st.sampled_from(open_alarms))
        a = self.d.state.alarms[alarm_id]
        holders = [o.carer_id for o in a.offers] + list(a.accepted_by)
        carer = data.draw(st.sampled_from(holders or CARERS))
        offer = next((o.offer_id for o in a.offers if o.carer_id == carer), None)
        outcome = data.draw(st.sampled_from(list(Outcome)))
        self._feed(
            __import__("gateway.engine.model", fromlist=["ActionIn"]).ActionIn(
                HZC.id, carer, action, alarm_id, offer, outcome, "note"
            )
        )

    def _next_steps(self) -> list[tuple[str, str, ActionKind, str | None]]:
        steps: list[tuple[str, str, ActionKind, str | None]] = []
        for a in sorted(self.d.state.alarms.values(), key=lambda a: a.alarm_id):
            if not a.is_open:
                continue
            steps += [(a.alarm_id, o.carer_id, ActionKind.ACCEPT, o.offer_id) for o in a.offers]
            for cid in a.accepted_by:
                step = ActionKind.RESOLVED if cid in a.arrived_by else ActionKind.ARRIVED
                steps.append((a.alarm_id, cid, step, None))
        return steps

    @precondition(lambda self: bool(self._next_steps()))
    @rule(data=st.data())
    def carer_moves_on(self, data: st.DataObject) -> None:
        """A holder takes their next step (accept, arrive, resolve): whole lifecycles happen."""
        from gateway.engine.model import ActionIn

        # A few steps in a row, as a carer works an alarm before much else happens.
        for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
            steps = self._next_steps()
            if not steps:
                return
            alarm_id, carer, action, offer = data.draw(st.sampled_from(steps))
            outcome = data.draw(st.sampled_from([o for o in Outcome if o is not Outcome.OTHER]))
            self._feed(ActionIn(HZC.id, carer, action, alarm_id, offer, outcome, "note"))

    @rule(seconds=st.integers(min_value=1, max_value=50) | st.integers(min_value=1, max_value=400))
    def time_passes(self, seconds: int) -> None:
        self.d.advance(seconds)
        # The shell fires due deadlines with their epoch; a stale epoch is also sent.
        for a in sorted(self.d.state.alarms.values(), key=lambda a: a.alarm_id):
            cur = self.d.state.alarms.get(a.alarm_id)
            if cur and cur.is_open and cur.deadline and cur.deadline.due <= self.d.now:
                self._feed(TimerIn(cur.alarm_id, cur.epoch - 1))  # stale: ignored
                self._feed(TimerIn(cur.alarm_id, cur.deadline.epoch))

    @rule()
    def tick(self) -> None:
        self._feed(TickIn())

    @rule()
    def restart(self) -> None:
        blob = json.dumps(state_to_json(self.d.state))
        restored = state_from_json(json.loads(blob))
        assert restored == self.d.state
        self.d.state = restored

    @invariant()
    def every_open_alarm_has_exactly_one_live_deadline(self) -> None:
        for a in self.d.state.alarms.values():
            if a.state in OPEN_STATES:
                assert a.deadline is not None, f"{a.alarm_id} {a.state} has no deadline"
                assert a.deadline.epoch == a.epoch
            else:
                assert a.deadline is None and not a.offers

    @invariant()
    def no_carer_holds_a_live_offer_for_an_alarm_that_is_not_open(self) -> None:
        # Judged from what the handsets were told, not from the engine's own bookkeeping: an
        # offer the engine forgets without a cancel is still on a carer's screen.
        for (carer, offer_id), alarm_id in self.shown.items():
            a = self.d.state.alarms.get(alarm_id)
            assert a is not None and a.is_open, (
                f"{carer} still shows offer {offer_id} of a closed alarm"
            )
        for carer, alarm_id in self.holding:
            a = self.d.state.alarms.get(alarm_id)
            assert a is not None and a.is_open, f"{carer} still holds closed alarm {alarm_id}"

    @invariant()
    def carers_busy_only_with_open_alarms_they_hold(self) -> None:
        for c in self.d.state.carers.values():
            if c.busy_with is not None:
                a = self.d.state.alarms.get(c.busy_with)
                assert a is not None and a.is_open and c.carer_id in a.accepted_by


Night.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestNight = Night.TestCase
