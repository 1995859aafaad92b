"""The engine's asyncio shell: feeds journaled inputs, timers and ticks to the pure core,
persists what changed (one SQLite transaction, with the input watermark), then publishes.

Order of safety: an input is in the journal before the core sees it; the core's new state, its
outgoing messages (outbox) and its records (engine log) are committed together with the
watermark of the last input applied; only then are messages published. A crash anywhere
replays from the watermark and re-sends only what was never marked sent. (That commit is in the
journal's WAL when the messages leave, but not fsynced on its own: ``gateway.journal._relaxed``.)
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, assert_never

import aiomqtt

from devices.records import (
    ActionRecord,
    CalloutRecord,
    CarerStatusControl,
    DeviceModeControl,
    EventRecord,
    OperatorControl,
    PresenceRecord,
    PromoteControl,
    VisitControl,
    VisitRecord,
)
from devices.topics import TopicLayout
from gateway.aio import raise_if_cancelling
from gateway.broker_conn import connection_options, no_delay
from gateway.clock import Clock
from gateway.config import Settings
from gateway.dispatch_hub import DispatchHub
from gateway.engine import horizon, operator, persist
from gateway.engine.core import Core, EngineConfig, EngineState
from gateway.engine.model import (
    ActionIn,
    ActionKind,
    ActionResult,
    AdviseEdt,
    CalloutIn,
    CancelOffer,
    CarelineStatus,
    Command,
    DeviceModeIn,
    EscalationChain,
    EventIn,
    FollowUpTask,
    Input,
    NotifyControlRoom,
    NotifyOnCall,
    Outcome,
    Position,
    PresenceIn,
    PromoteIn,
    RaiseTechnical,
    RecordDecision,
    RecordTransition,
    RecordVisit,
    Remind,
    ScheduleDeadline,
    SendOffer,
    TickIn,
    TimerIn,
    VisitActionIn,
    VisitControlIn,
    VisitOp,
    VisitResult,
    to_json,
)
from gateway.journal import EngineCommit, EngineStore, Journal, JournalRecord
from gateway.metrics import Metrics
from gateway.outbox import OutboxPublisher
from gateway.puback import AckedPublisher
from gateway.registry import SchemeRegistry

log = logging.getLogger(__name__)

# Timers fired in one pass at most (the rest wait for the next pass, straight after): each is
# a millisecond or two of work on the event loop, and HTTP and ingest wait between passes.
TIMERS_PER_PASS = 50
# How long the engine's first pass waits for ingest to connect (real seconds).
INGEST_CONNECT_WAIT_S = 2.0


def to_input(r: JournalRecord) -> Input | None:
    """The engine's input for a journaled record, read from its typed fields."""
    match r.record:
        case EventRecord() as e:
            return EventIn(
                r.scheme,
                str(e.event_id),
                e.device_id,
                e.kind.value,
                e.occurred_at,
                r.received_at,
            )
        case CalloutRecord() as c:
            return CalloutIn(
                r.scheme,
                c.callout_id,
                c.resident_ref,
                c.priority,
                c.reason,
                c.requested_at,
                r.received_at,
                c.operator,
            )
        case ActionRecord() as a:
            return ActionIn(
                r.scheme,
                a.carer_id,
                ActionKind(a.action.value),
                a.alarm_id,
                a.offer_id,
                Outcome(a.outcome.value) if a.outcome else None,
                a.note,
                str(a.action_id),
            )
        case CarerStatusControl() as cs:
            return PresenceIn(r.scheme, cs.carer_id, "status", None, cs.status)
        case DeviceModeControl() as dm:
            return DeviceModeIn(r.scheme, dm.device_id, dm.until)
        case PromoteControl() as pc:
            return PromoteIn(r.scheme, str(pc.alarm_id), pc.by)
        case OperatorControl() as oc:
            return operator.from_record(r.scheme, oc)
        case VisitRecord() as vr:
            # Judged at the gateway's own stamp of its arrival, never the handset's clock.
            return VisitActionIn(
                r.scheme,
                vr.carer_id,
                str(vr.visit_action_id),
                vr.action.value,
                vr.visit_id,
                r.received_at,
                vr.reason.value if vr.reason else None,
                len(vr.note),
            )
        case VisitControl() as vc:
            return VisitControlIn(
                r.scheme,
                VisitOp(vc.op.value.removeprefix("visit_")),
                vc.visit_id,
                vc.by,
                vc.at,
                vc.night,
                vc.cancelled_by,
                vc.reason,
                len(vc.note),
                vc.agreed_at,
                vc.run,
                vc.client,
                vc.minutes,
                vc.window_min,
                vc.double,
                vc.critical,
                vc.service,
                vc.level,
            )
        case PresenceRecord() as p:
            pos = None
            if p.flat is not None or p.block is not None or p.x is not None:
                pos = Position(p.flat, p.block, p.x, p.y, p.floor)
            return PresenceIn(r.scheme, p.carer_id, p.what.value, pos)
        case None:
            log.error("journal record %d is unreadable (%s); the engine skips it", r.seq, r.error)
            return None
        case _:  # a new record type must become an input (or say why not): mypy checks
            assert_never(r.record)


def input_time(r: JournalRecord) -> str:
    """When the input behind a record happened, for the engine's records."""
    match r.record:
        case EventRecord() as e:
            return e.occurred_at.isoformat()
        case CalloutRecord() as c:
            return c.requested_at.isoformat()
        case None:
            return r.received_at.isoformat()
        case _:
            return r.record.at.isoformat()


class EngineService:
    def __init__(
        self,
        settings: Settings,
        registry: SchemeRegistry,
        journal: Journal,
        writer: Executor,
        metrics: Metrics,
        clock: Clock,
    ) -> None:
        self.settings = settings
        e = settings.engine
        chain = EscalationChain(
            offer_timeout_s=e.offer_timeout_s,
            max_individual_offers=e.max_individual_offers,
            escalation_repeat_s=e.escalation_repeat_s,
            arrival_margin_s=e.arrival_margin_s,
            arrival_repeat_s=e.arrival_repeat_s,
            on_site_check_s=e.on_site_check_s,
        )
        self.core = Core(
            registry.schemes,
            EngineConfig(
                chain=chain,
                handset_timeout_s=e.handset_timeout_s,
                supervision_misses=e.supervision_misses,
            ),
            registry.schedules,
        )
        self.registry = registry
        self.store = EngineStore(journal)
        self.journal = journal
        self.writer = writer
        self.metrics = metrics
        self.clock = clock
        self.layout = TopicLayout(settings.mqtt.topic_root, settings.mqtt.zigbee_root)
        self.state: EngineState = EngineState()
        self.watermark = 0
        self.wake = asyncio.Event()
        self.ready = False
        self.hub = DispatchHub()
        # How far ingest has got (gateway.engine.horizon); set from the journal at start.
        self.horizon: datetime | None = None
        self.behind: str | None = None
        # (connected, queue depth, depth at which the broker is holding messages for us);
        # wired by the service to its ingest. None: no ingest here (always caught up).
        self.ingest_state: Callable[[], tuple[bool, int, int]] | None = None
        # The newest fence (``gateway.fence``) at or below a journal watermark; wired with
        # ``ingest_state``. Only fences move the horizon when there is an ingest.
        self.fence_at: Callable[[int], datetime | None] | None = None
        self._connected_since: float | None = None
        self._late_s = 0.0
        self.outbox = OutboxPublisher(
            self.store, writer, metrics, self.hub, self.layout, clock, settings.delivery
        )

    # ---- start-up ---------------------------------------------------------------------------

    def _load(self) -> None:
        rows = self.store.load()
        now = self.clock.now()
        fresh = self.core.initial_state(now)
        self.watermark = int(rows.get("watermark", 0))
        # Last contact comes back from the journal (it keeps days of events); a device it has
        # never heard from gets a grace period from now.
        heard = self.store.last_contact()
        seen = {k: heard.get(k, start) for k, start in fresh.device_seen.items()}
        self.state, legacy = persist.state_from_rows(rows, fresh.carers, seen)
        self.state.bind_supervision(self.core.limits)
        self._sync_visits()
        if legacy:
            self.state.mark_all_dirty()  # written in the new layout by the first pass
        # Until ingest has drained what the broker held while we were away, we can vouch only
        # for what the journal already has.
        self.horizon = max(heard.values(), default=now)
        log.info(
            "engine restored: %d alarms (%d open), watermark %d",
            len(self.state.alarms),
            self.state.open_count,
            self.watermark,
        )

    def _sync_visits(self) -> None:
        """The decoders know the nights' extra visits too (a check-in to one is not refused)."""
        extra: dict[str, set[str]] = {}
        for plan in self.state.visit_plans.values():
            extra.setdefault(plan.scheme, set()).update(
                k for k, v in plan.visits.items() if v.extra
            )
        self.registry.extra_visits = {k: frozenset(v) for k, v in extra.items()}

    # ---- main loop --------------------------------------------------------------------------

    async def run(self) -> None:
        await asyncio.to_thread(self._load)
        # What start-up built (schemes, the restored state) lives as long as the process: the
        # collector's full passes need not walk it again and again (a pause on every pass).
        gc.freeze()
        self.ready = True
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._loop(), name="engine")
            tg.create_task(self._publisher(), name="engine-outbox")

    async def _let_ingest_connect(self) -> None:
        """Before the first pass, let ingest connect (bounded).

        After a restart, every alarm whose deadline fell due while the gateway was down is
        due at once: a thousand take a second or more of work on this event loop. Ingest's
        connect needs a few round trips on the same loop, and readiness (and the presses the
        broker kept for us) waited behind that catch-up. The overdue alarms wait instead, for
        the connect only (their offers need the broker too); without a broker, not long."""
        if self.ingest_state is None:
            return
        for _ in range(round(INGEST_CONNECT_WAIT_S / 0.01)):
            if self.ingest_state()[0]:
                return
            await asyncio.sleep(0.01)  # ingest has no connect event to wait on; a poll will do

    async def _loop(self) -> None:
        await self._let_ingest_connect()
        tick_every = self.settings.engine.tick_s
        next_tick = self.clock.now()
        while True:
            raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
            self.wake.clear()
            read_at = self.clock.now()
            sample = self._sample(read_at)
            # What ingest just committed is still in memory (``Journal.recent``): no thread
            # hop, no read back and no second validation. The file after a restart or a lag.
            records = self.journal.recent(self.watermark, 500)
            if records is None:
                records = await asyncio.to_thread(self.journal.read_records, self.watermark, 500)
            self._advance_horizon(sample, records)
            now = self.clock.now()
            inputs: list[tuple[Input, JournalRecord | None]] = []
            for r in records:
                inp = to_input(r)
                if inp is not None:
                    inputs.append((inp, r))
            # What is due, from the state's deadline heap (earliest first), a bounded number
            # a pass: after a restart a thousand overdue alarms are worked through in a few
            # passes, each committed, and ingest and the API run between them.
            due = self.state.due_alarms(now)
            for a in due[:TIMERS_PER_PASS]:
                assert a.deadline is not None  # only alarms with a deadline are due
                inputs.append((TimerIn(a.alarm_id, a.deadline.epoch), None))
            # The tick also fires every overdue deadline (a safety net): while a catch-up is
            # being worked through in bounded passes it waits, or it would do them all at once.
            if now >= next_tick and len(due) <= TIMERS_PER_PASS:
                inputs.append((TickIn(self.horizon, self.behind), None))
                next_tick = now + timedelta(seconds=tick_every)
            if inputs:
                new_wm = records[-1].seq if records else self.watermark
                await self._apply(inputs, now, new_wm)
            if len(records) == 500 or len(due) > TIMERS_PER_PASS:
                await asyncio.sleep(0)  # let ingest and the API in between passes
                continue
            first = self.state.next_due()
            wait_until = min(first, next_tick) if first else next_tick
            timeout = max(
                0.005, self.clock.real_seconds((wait_until - self.clock.now()).total_seconds())
            )
            expected = time.monotonic() + timeout
            try:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that
                # lands as the event is set, and the gateway then never stops on SIGTERM.
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
                self._late_s = 0.0
            except TimeoutError:
                # Waking late means the event loop itself was starved: messages may be
                # waiting unread in the socket, so this pass cannot vouch for the present.
                late = time.monotonic() - expected
                # In scheme seconds; timer jitter under 50 ms is not a stall.
                self._late_s = late * self.clock.speed if late > 0.05 else 0.0

    def _sample(self, read_at: datetime) -> horizon.IngestSample:
        """The pipeline as this pass begins (the journal part is filled in after reading)."""
        if self.ingest_state is None:
            connected, depth, saturated = True, 0, 1
            self._connected_since = self._connected_since or (time.monotonic() - horizon.SETTLE_S)
        else:
            connected, depth, saturated = self.ingest_state()
            if not connected:
                self._connected_since = None
            elif self._connected_since is None:
                self._connected_since = time.monotonic()
        since = self._connected_since
        return horizon.IngestSample(
            read_at=read_at,
            fence_at=None,
            at_head=False,
            connected_s=None if since is None else time.monotonic() - since,
            queue_depth=depth,
            queue_max=saturated,
            late_s=self._late_s,
        )

    def _advance_horizon(self, sample: horizon.IngestSample, records: list[JournalRecord]) -> None:
        applied = records[-1].seq if records else self.watermark
        s = replace(
            sample,
            at_head=len(records) < 500,
            # No ingest here (a test or a tool): the journal is all there is, and this pass
            # has read all of it that it will apply.
            fence_at=(
                (sample.read_at if len(records) < 500 else None)
                if self.fence_at is None
                else self.fence_at(applied)
            ),
        )
        self.behind = horizon.behind_reason(s)
        self.horizon = horizon.advance(self.horizon or s.read_at, s)
        lag = (s.read_at - self.horizon).total_seconds()
        self.metrics.engine_ingest_lag.set(max(0.0, lag))

    async def _apply(
        self, inputs: list[tuple[Input, JournalRecord | None]], now: datetime, wm: int
    ) -> None:
        state = self.state
        # The whole pass is one transaction in memory as on disk: if the commit fails, the
        # state is rolled back to what the database holds. The API's reads (same event loop)
        # may see this pass's state while its commit is awaited: a view a few milliseconds
        # early, never a message (carer pages and the outbox are told only after the commit),
        # and a replay from the watermark after a failed commit makes the same state again.
        mark = state.begin()
        try:
            outbox: list[tuple[str, str]] = []
            logrows: list[tuple[str, str, str]] = []
            for inp, rec in inputs:
                _, cmds = self.core.step(state, inp, now)
                occurred = None
                received = None
                if isinstance(inp, EventIn | CalloutIn):
                    occurred = (
                        inp.occurred_at if isinstance(inp, EventIn) else inp.requested_at
                    ).isoformat()
                    received = inp.received_at.isoformat()
                elif rec is not None:
                    received = rec.received_at.isoformat()
                    occurred = input_time(rec)
                else:
                    # A deadline or tick: the gateway itself is the source, at engine time.
                    occurred = received = now.isoformat()
                for c in cmds:
                    self._render(c, outbox, logrows, occurred, received)
            dirty = state.take_dirty()
            upserts, deletes = persist.changed_rows(state, dirty)
            commit = EngineCommit(wm, upserts, deletes, outbox, logrows)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.writer, self.store.commit, commit, now)
        except BaseException:
            state.rollback(mark)
            state.mark_all_dirty()  # what is written is unknown: write it all next time
            raise
        state.commit(mark)
        self.watermark = wm
        if dirty.plans:
            self._sync_visits()
        # Durable now: tell connected carer pages (the MQTT publish follows from the outbox).
        for topic, payload in outbox:
            parts = topic.split("/")
            if len(parts) == 5 and parts[2] == "carers" and parts[4] == "dispatch":
                self.hub.publish(f"{parts[1]}/{parts[3]}", json.loads(payload))
            elif len(parts) == 4 and parts[2] == "control" and parts[3] == "alerts":
                self.hub.publish(f"control/{parts[1]}", json.loads(payload))
                self.hub.publish("control/*", {**json.loads(payload), "scheme": parts[1]})
        self.metrics.engine_open_alarms.set(state.open_count)
        if outbox:
            self.outbox.wake.set()

    # ---- commands -> messages and records ---------------------------------------------------

    def _render(
        self,
        c: Command,
        outbox: list[tuple[str, str]],
        logrows: list[tuple[str, str, str]],
        occurred: str | None,
        received: str | None,
    ) -> None:
        L = self.layout
        at = self.clock.now().isoformat()

        def pub(topic: str, body: dict[str, Any]) -> None:
            outbox.append((topic, json.dumps(body, default=str)))

        def note(
            kind: str,
            code: str,
            message: str,
            *,
            scheme: str,
            priority: str | None = None,
            alarm_id: str | None = None,
            target: str | None = None,
            body: dict[str, Any] | None = None,
        ) -> None:
            row = {
                "scheme": scheme,
                "kind": kind,
                "code": code,
                "priority": priority,
                "alarm_id": alarm_id,
                "target": target,
                "message": message,
                "body": body or {},
            }
            logrows.append(("notifications", at, json.dumps(row, default=str)))

        match c:
            case SendOffer():
                pub(
                    L.carer(c.scheme, c.carer_id, "dispatch"),
                    {"type": "offer", "sent_at": at, **c.payload},
                )
                self.metrics.engine_offers.inc()
            case CancelOffer():
                pub(
                    L.carer(c.scheme, c.carer_id, "dispatch"),
                    {
                        "type": "cancel",
                        "alarm_id": c.alarm_id,
                        "offer_id": c.offer_id,
                        "reason": c.reason,
                        "at": at,
                    },
                )
            case Remind():
                pub(
                    L.carer(c.scheme, c.carer_id, "dispatch"),
                    {"type": "reminder", "alarm_id": c.alarm_id, "message": c.message, "at": at},
                )
            case ActionResult():
                pub(
                    L.carer(c.scheme, c.carer_id, "dispatch"),
                    {
                        "type": "action_result",
                        "action": c.action,
                        "action_id": c.action_id,
                        "alarm_id": c.alarm_id,
                        "offer_id": c.offer_id,
                        "ok": c.ok,
                        "reason": c.reason,
                        "at": at,
                    },
                )
            case NotifyControlRoom():
                body: dict[str, Any] = {
                    "type": "alert",
                    "priority": c.priority.value,
                    "code": c.code,
                    "message": c.message,
                    "alarm_id": c.alarm_id,
                    "at": at,
                    **c.detail,
                }
                pub(L.control_alerts(c.scheme), body)
                note(
                    "control_room",
                    c.code,
                    c.message,
                    scheme=c.scheme,
                    priority=c.priority.value,
                    alarm_id=c.alarm_id,
                    body=c.detail,
                )
            case NotifyOnCall():
                body = {
                    "type": "on_call",
                    "carer_id": c.carer_id,
                    "alarm_id": c.alarm_id,
                    "message": c.message,
                    "at": at,
                }
                pub(L.control_alerts(c.scheme), body)
                if c.carer_id:
                    pub(
                        L.carer(c.scheme, c.carer_id, "dispatch"), {**body, "type": "on_call_alert"}
                    )
                note(
                    "on_call",
                    "on_call",
                    c.message,
                    scheme=c.scheme,
                    alarm_id=c.alarm_id,
                    target=c.carer_id,
                )
            case AdviseEdt():
                pub(
                    L.control_alerts(c.scheme),
                    {"type": "edt", "alarm_id": c.alarm_id, "message": c.message, "at": at},
                )
                note("edt", "advise_edt", c.message, scheme=c.scheme, alarm_id=c.alarm_id)
            case FollowUpTask():
                pub(
                    L.control_alerts(c.scheme),
                    {
                        "type": "follow_up",
                        "kind": c.kind,
                        "alarm_id": c.alarm_id,
                        "message": c.message,
                        "at": at,
                    },
                )
                note("follow_up", c.kind, c.message, scheme=c.scheme, alarm_id=c.alarm_id)
            case CarelineStatus():
                body = {
                    "callout_id": c.callout_id,
                    "alarm_id": c.alarm_id,
                    "status": c.status,
                    "at": c.at.isoformat(),
                    "eta_s": c.eta_s,
                    "outcome": c.outcome,
                }
                pub(L.careline_status(c.scheme, c.callout_id), body)
                note(
                    "careline",
                    c.status,
                    f"call-out {c.callout_id} {c.status}",
                    scheme=c.scheme,
                    alarm_id=c.alarm_id,
                    target=c.callout_id,
                    body=body,
                )
            case RaiseTechnical():
                body = {
                    "type": "technical",
                    "device_id": c.device_id,
                    "code": c.code,
                    "message": c.message,
                    "cleared": c.cleared,
                    "at": c.at.isoformat(),
                }
                pub(L.control_alerts(c.scheme), body)
                note(
                    "technical",
                    c.code + ("_cleared" if c.cleared else ""),
                    c.message,
                    scheme=c.scheme,
                    priority=None if c.cleared else "P3",
                    target=c.device_id,
                )
            case RecordTransition():
                row = {
                    "alarm_id": c.alarm_id,
                    "scheme": c.scheme,
                    "step": str(c.state),
                    "priority": c.priority.value,
                    "carer_id": c.carer_id,
                    "occurred_at": occurred,
                    "received_at": received,
                    "detail": to_json(c.detail),
                }
                logrows.append(("alarm_events", c.at.isoformat(), json.dumps(row, default=str)))
            case RecordDecision():
                row = {"alarm_id": c.alarm_id, "scheme": c.scheme, "record": to_json(c.record)}
                logrows.append(("alarm_decisions", c.at.isoformat(), json.dumps(row, default=str)))
            case VisitResult():
                pub(
                    L.carer(c.scheme, c.carer_id, "dispatch"),
                    {
                        "type": "visit_result",
                        "visit_action_id": c.visit_action_id,
                        "visit_id": c.visit_id,
                        "ok": c.ok,
                        "reason": c.reason,
                        "sent_at": at,
                    },
                )
            case RecordVisit():
                row = {
                    "scheme": c.scheme,
                    "night": c.night.isoformat(),
                    "visit_id": c.visit_id,
                    "run": c.run,
                    "client_ref": c.client_ref,
                    "step": c.step,
                    "carer_id": c.carer_id,
                    "alarm_id": c.alarm_id,
                    "agreed_at": c.agreed_at.isoformat(),
                    "detail": to_json(c.detail),
                }
                logrows.append(("visit_events", c.at.isoformat(), json.dumps(row, default=str)))
            case ScheduleDeadline():
                pass  # the deadline is part of the alarm's persisted state

    # ---- outbox publisher -------------------------------------------------------------------

    async def _publisher(self) -> None:
        m = self.settings.mqtt
        delay = m.reconnect_min_s
        while True:
            raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
            try:
                async with aiomqtt.Client(
                    **connection_options(m, publisher=True),
                    identifier=f"{m.client_id}-out",
                    protocol=aiomqtt.ProtocolVersion.V5,
                    timeout=10,
                ) as client:
                    no_delay(client)
                    delay = m.reconnect_min_s
                    # Each publish waits for its PUBACK and reads the reason code: a refused
                    # or unacknowledged message stays in the outbox (gateway.outbox).
                    acked = AckedPublisher(client, self.settings.delivery.puback_timeout_s)
                    await self.outbox.drain(acked, client._client.is_connected)
            except (aiomqtt.MqttError, ConnectionError) as exc:
                log.warning("outbox publisher: %s; retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, m.reconnect_max_s)
