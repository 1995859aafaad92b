"""Durable ingest: MQTT in, decode, journal (group commit), and only then PUBACK.

aiomqtt 2.x acknowledges QoS 1 messages before our code runs, which would let an event be
lost between the broker's queue and our disk. We switch the paho client underneath to manual
acknowledgement and call ``ack(mid, qos)`` after the journal commit. An ack is bound to the
connection the message came on: if that connection is gone, the ack is dropped and the broker
redelivers the message on the next session, where the journal recognises it as a duplicate.

After the commit each device event and Careline call-out also earns a receipt
(``gateway.receipts``), published on this connection by a task of its own, so no PUBACK waits
for a receipt.

A fence task publishes the gateway's own fences on this connection and hears them back in order
with everything else (``gateway.fence``): that is how the engine knows how far it may judge
device silence.

Memory is bounded end to end: the broker sends at most ``receive_maximum`` unacknowledged
messages (MQTT 5 Receive Maximum, sent in CONNECT), acknowledgement waits for the commit, and
the queue in front of the journal holds at most ``queue_max`` messages. A backlog of any size
then drains through a window of fixed size instead of piling up in the process.

Alarms first: both queues between the socket and the journal (aiomqtt's and ours) have an
urgent lane (``gateway.flow.TwoLaneQueue``). Any input that is not a heartbeat (:func:`urgent`:
a device event, call-out, carer action, presence or visit) is taken before the heartbeats read
ahead of it and committed in a journal commit of its own, so a press does not wait for a window
of heartbeats; among themselves those inputs keep their order (a login read before a press is
applied before it). One MQTT
session still delivers in order, but the gateway reads the socket far faster than it journals,
so what waits is in these queues, where the lane applies. Fences never take the urgent lane:
a fence still passes the commit only after everything read before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import aiomqtt
import paho.mqtt.client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from devices.decoders import DecodeError, Registry, decode_message
from devices.records import CalloutRecord, EventRecord, RecordType
from devices.topics import TopicLayout
from gateway.aio import raise_if_cancelling
from gateway.broker_conn import Backoff, mqtt_client, no_delay
from gateway.clock import Clock
from gateway.config import Settings
from gateway.fence import Fences
from gateway.flow import (
    FlowControlledClient,
    InFlight,
    TwoLaneQueue,
    share_property_tables,
    two_lanes,
)
from gateway.journal import DeadLetter, Incoming, Journal, JournalError
from gateway.metrics import Metrics
from gateway.puback import AckedPublisher
from gateway.receipts import HeartbeatLookup, ReceiptQueue, ReceiptTarget, render, target_for

log = logging.getLogger(__name__)

# MQTT v5 CONNACK reason codes that retrying will not fix.
_FATAL_CONNECT_CODES = {134, 135, 138, 140}  # bad credentials, not authorised, banned, bad auth


class IngestRegistry(Registry, HeartbeatLookup, Protocol):
    """The decoders' registry, plus the heartbeat interval a receipt carries."""


@dataclass(slots=True)
class Pending:
    incoming: Incoming
    ack: Callable[[], None]
    arrived: float  # monotonic
    receipt: ReceiptTarget | None = None
    urgent: bool = False


@dataclass(slots=True)
class FenceMark:
    """One of our fences, heard back: everything queued before it was read before it."""

    sent_at: datetime


# Scheme seconds between fences (at least 20 ms real, at most 1 s): the horizon then lags the
# present by about this plus one trip through the broker.
FENCE_EVERY_S = 5.0
FENCE_WAIT_S = 30.0
# Real seconds after an alarm's journal commit before the next routine (heartbeat) commit may
# start, so the engine's pass for the alarm gets the writer thread (see ``_committer``).
ALARM_GRACE_S = 0.010  # real seconds before a fence that has not come back is given up on


# Heartbeats, read in the payload's bytes before any decoding: a heartbeat (device or handset)
# names itself. Every other input keeps its place among the others and only overtakes the
# heartbeats read before it: a carer's login published just before a press is still journaled
# (and applied) before that press, so the press is offered to them. A payload that lies only
# changes when it is journaled, never how.
_ROUTINE = b'"heartbeat"'
_NOT_INPUT = ("/_gateway/", "/receipts")


def urgent(layout: TopicLayout, topic: str, payload: bytes) -> bool:
    """Whether a message takes the urgent lane: any input that is not a heartbeat (a device
    event, a Zigbee2MQTT report, a Careline call-out, a carer's action, presence or visit).
    Never a fence or a receipt: a fence must never overtake what was read before it."""
    if topic.startswith(layout.root + "/"):
        if any(part in topic for part in _NOT_INPUT):
            return False
    elif not topic.startswith(layout.zigbee_root + "/"):
        return False
    return _ROUTINE not in payload


def _is_urgent_pending(item: Pending | FenceMark) -> bool:
    return isinstance(item, Pending) and item.urgent


class FatalMqttError(Exception):
    """The broker refused us for a reason retrying cannot fix (credentials, authorisation)."""


def _ack_on(client: paho.Client, mid: int, qos: int, window: InFlight) -> Callable[[], None]:
    def ack() -> None:
        if qos > 0 and client.is_connected():
            client.ack(mid, qos)
            window.done()

    return ack


def _known_id(incoming: Incoming) -> str | None:
    """The event or call-out id the decoder read, so the receipt need not parse it again."""
    if not incoming.records:
        return None
    rec = incoming.records[0].record
    if isinstance(rec, EventRecord):
        return str(rec.event_id)
    if isinstance(rec, CalloutRecord):
        return rec.callout_id
    return None


class Ingest:
    """Owns the broker session and the journal writer. ``run`` until cancelled."""

    def __init__(
        self,
        settings: Settings,
        registry: IngestRegistry,
        journal: Journal,
        writer: Executor,
        metrics: Metrics,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.journal = journal
        self.writer = writer
        self.metrics = metrics
        self.clock = clock or Clock()
        self.layout = TopicLayout(settings.mqtt.topic_root, settings.mqtt.zigbee_root)
        cfg = settings.ingest
        self.queue: TwoLaneQueue[Pending | FenceMark] = two_lanes(_is_urgent_pending)(cfg.queue_max)
        self.receipts = ReceiptQueue(metrics, cfg.receipt_queue_max, cfg.receipt_concurrency)
        self.in_flight = InFlight(metrics, cfg.receive_maximum)
        self.connected = False
        self.on_committed: list[Callable[[list[Incoming]], None]] = []
        self.fences = Fences()
        # Named by the identity the broker's ACL knows: the username when there is one (the
        # production broker makes it the client id too), else the client id.
        m = settings.mqtt
        self._fence_topic = self.layout.fence(m.username or m.client_id)
        self._fence_back = asyncio.Event()
        share_property_tables()
        # Children bound once: ``labels()`` per message cost five times the increment itself.
        self._counted = {r: metrics.messages.labels(r) for r in ("accepted", "duplicate")}
        self._dead = metrics.messages.labels("dead_letter")
        self._records = {t: metrics.records.labels(t.value) for t in RecordType}

    def classify(self, topic: str, payload: bytes, received_at: datetime) -> Incoming:
        """Decode one message; any failure becomes a dead letter, never an exception."""
        cfg = self.settings.ingest
        try:
            records = decode_message(
                topic,
                payload,
                layout=self.layout,
                registry=self.registry,
                received_at=received_at,
                max_bytes=cfg.max_payload_bytes,
            )
            return Incoming(topic, received_at, records=records)
        except DecodeError as exc:
            reason, detail, scheme = exc.reason.value, exc.detail, exc.scheme
        except Exception as exc:  # a decoder bug must not stop the loop or lose the message
            log.exception("decoder failed on topic %s", topic)
            reason, detail, scheme = "internal_error", repr(exc)[:500], None
        keep = payload[: cfg.dead_letter_keep_bytes]
        log.warning("dead letter %s on %s: %s (payload %r)", reason, topic, detail, keep[:80])
        return Incoming(
            topic, received_at, dead_letter=DeadLetter(reason, detail, keep, len(payload), scheme)
        )

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._committer(), name="journal-committer")
            tg.create_task(self._mqtt_loop(), name="mqtt-session")

    def _client(self) -> FlowControlledClient:
        m = self.settings.mqtt
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = m.session_expiry_s
        # The broker keeps at most this many QoS 1 messages unacknowledged with us (MQTT 5
        # Receive Maximum); with PUBACK after the commit, that bounds what a backlog can put
        # in memory at once.
        props.ReceiveMaximum = self.settings.ingest.receive_maximum
        client = mqtt_client(
            m,
            m.client_id,
            cls=FlowControlledClient,
            clean_start=False,
            properties=props,
            keepalive=m.keepalive_s,
            # Never drop here: the Receive Maximum above already bounds this queue.
            max_queued_incoming_messages=0,
            # Alarm-class messages first (module docstring).
            queue_type=two_lanes(self._urgent_message),
        )
        # Must be set before connecting: PUBACK goes out only after the journal commit.
        client._client.manual_ack_set(True)
        # Counts every QoS 1 message as it arrives and pauses reading at the window's edge.
        self.in_flight.attach(client)
        return client

    def _urgent_message(self, msg: aiomqtt.Message) -> bool:
        payload = msg.payload
        return isinstance(payload, bytes) and urgent(self.layout, msg.topic.value, payload)

    async def _mqtt_loop(self) -> None:
        m = self.settings.mqtt
        backoff = Backoff(m.reconnect_min_s, m.reconnect_max_s)
        while True:
            raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
            try:
                client = self._client()
                async with client:
                    no_delay(client)
                    # Re-subscribe on every connect: cheap, and right even if the session was lost.
                    # Ready only once subscribed: before that, a first session hears nothing.
                    # No Local: the receipts this connection publishes under ``devices/#``
                    # must not come back to it (the broker would queue each one for us).
                    only_others = SubscribeOptions(qos=1, noLocal=True)
                    for topic_filter in self.layout.subscriptions():
                        await client.subscribe(topic_filter, options=only_others)
                    # Our fences must come back to us: no No Local here.
                    await client.subscribe(self._fence_topic, options=SubscribeOptions(qos=1))
                    self.in_flight.arm()
                    self.connected = True
                    self.metrics.mqtt_connected.set(1)
                    self.metrics.mqtt_connects.inc()
                    backoff.reset()
                    log.info("connected to mqtt %s:%s as %s", m.host, m.port, m.client_id)
                    # Receipts live and die with this connection; the queue outlives it.
                    receipts = asyncio.create_task(
                        self.receipts.run(AckedPublisher(client)), name="receipts"
                    )
                    fencer = asyncio.create_task(self._fencer(client), name="fencer")
                    try:
                        await self._receive(client)
                    finally:
                        for task in (receipts, fencer):
                            task.cancel()
                            with contextlib.suppress(asyncio.CancelledError):
                                await task
            except aiomqtt.MqttCodeError as exc:
                rc = getattr(exc.rc, "value", exc.rc)
                if rc in _FATAL_CONNECT_CODES:
                    raise FatalMqttError(f"broker refused the gateway: {exc}") from exc
                log.warning("mqtt error: %s; reconnecting in ~%.1fs", exc, backoff.base)
            except aiomqtt.MqttError as exc:
                log.warning("mqtt connection lost: %s; reconnecting in ~%.1fs", exc, backoff.base)
            finally:
                self.connected = False
                self.metrics.mqtt_connected.set(0)
            await asyncio.sleep(backoff.next())

    async def _receive(self, client: aiomqtt.Client) -> None:
        paho_client = client._client
        async for msg in client.messages:
            topic = msg.topic.value
            payload = msg.payload if isinstance(msg.payload, bytes) else str(msg.payload).encode()
            ack = _ack_on(paho_client, msg.mid, msg.qos, self.in_flight)
            if self.layout.is_receipt(topic):
                # Our own receipts come back through ``devices/#``: not an input.
                ack()
                continue
            if topic == self._fence_topic:
                ack()
                sent_at = self.fences.returned(payload)
                if sent_at is not None:
                    # Queued behind what was read before it, so it passes the commit after them.
                    await self.queue.put(FenceMark(sent_at))
                continue
            now = self.clock.now()
            incoming = self.classify(topic, payload, now)
            target = target_for(self.layout, topic, payload, self.registry, _known_id(incoming))
            lane = urgent(self.layout, topic, payload)
            if lane:
                self.metrics.ingest_urgent.inc()
            # Waits only when the queue is full: the broker then holds the rest for us.
            await self.queue.put(Pending(incoming, ack, time.monotonic(), target, lane))
            self.metrics.ingest_queue.set(self.queue.qsize())

    async def _committer(self) -> None:
        loop = asyncio.get_running_loop()
        max_batch = self.settings.journal.max_batch
        # Routine batches (heartbeats, presence, fences) begin at most this often: each
        # commit costs the loop a writer hop, a pass of the engine and its commit, so at
        # 2,000 heartbeats/s committing as fast as the fsyncs allow cost 20% more CPU per
        # event (measured, docs/performance.md). Alarms never wait for it.
        window = self.settings.journal.max_delay_ms / 1000
        routine_at = 0.0
        # After an alarm's commit no routine batch starts for a moment: the engine's pass for
        # the alarm then finds the journal's writer thread free for its commit instead of
        # behind a batch of heartbeats (measured at 2,000/s: 5-15 ms behind them).
        grace_until = 0.0
        while True:
            raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
            first = await self.queue.get()
            if not _is_urgent_pending(first):
                # A routine batch fills for up to ``window`` after the last routine commit
                # began; an alarm arriving meanwhile is committed at once, on its own.
                deadline = routine_at + window
                while self.queue.qsize() + 1 < max_batch:
                    wait = max(deadline, grace_until) - time.monotonic()
                    if wait <= 0:
                        break
                    try:
                        async with asyncio.timeout(wait):
                            await self.queue.urgent_arrived.wait()
                    except TimeoutError:
                        break
                    alarms: list[Pending] = []
                    while len(alarms) < max_batch and self.queue.urgent_waiting:
                        item = self.queue.get_nowait()
                        assert isinstance(item, Pending)  # only Pending takes the urgent lane
                        alarms.append(item)
                    await self._commit(loop, alarms)
                    grace_until = time.monotonic() + ALARM_GRACE_S
                routine_at = time.monotonic()
            taken = [first]
            if _is_urgent_pending(first):
                # An alarm commits alone (with any other urgent one): one fsync, not a batch
                # of heartbeats' worth of rows before its PUBACK and the engine's pass.
                while len(taken) < max_batch and self.queue.urgent_waiting:
                    taken.append(self.queue.get_nowait())
            else:
                # Group commit: take whatever queued up while the previous fsync ran.
                while len(taken) < max_batch and not self.queue.empty():
                    taken.append(self.queue.get_nowait())
            batch = [p for p in taken if isinstance(p, Pending)]
            fences = [f for f in taken if isinstance(f, FenceMark)]
            if batch:
                await self._commit(loop, batch)
                if _is_urgent_pending(first):
                    grace_until = time.monotonic() + ALARM_GRACE_S
            if fences:
                # Everything read before these fences is committed now (in ``batch`` or before).
                head = await loop.run_in_executor(self.writer, self.journal.head, "records")
                self.fences.passed(max(f.sent_at for f in fences), head)
                self.metrics.ingest_fences.inc(len(fences))
                self._fence_back.set()

    async def _commit(self, loop: asyncio.AbstractEventLoop, batch: list[Pending]) -> None:
        """Write one batch to the journal (retrying until it holds), then PUBACK each."""
        items = [p.incoming for p in batch]
        started = time.perf_counter()
        while True:
            raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
            try:
                results = await loop.run_in_executor(self.writer, self.journal.commit, items)
                break
            except JournalError:
                # Nothing is acknowledged, so the broker keeps every message; keep trying.
                log.exception("journal commit failed; retrying in 1s")
                await asyncio.sleep(1.0)
        self.metrics.journal_commit_seconds.observe(time.perf_counter() - started)
        self.metrics.journal_batch_size.observe(len(batch))
        now = time.monotonic()
        stamp = self.clock.now()
        for pending, result in zip(batch, results, strict=True):
            pending.ack()
            if pending.receipt is not None:
                self.receipts.offer(
                    pending.receipt.topic,
                    render(pending.receipt, pending.incoming, result, stamp),
                )
            self.metrics.ingest_latency.observe(now - pending.arrived)
            dl = pending.incoming.dead_letter
            if dl is not None:
                self._dead.inc()
                self.metrics.dead_letters.labels(dl.reason).inc()
            elif result.new:
                self._counted["accepted"].inc()
                for rec in pending.incoming.records:
                    self._records[rec.record_type].inc(1)
            else:
                self._counted["duplicate"].inc()
        for callback in self.on_committed:
            callback(items)

    async def _fencer(self, client: aiomqtt.Client) -> None:
        """Publish a fence, wait for it to come back through the commit, pause, repeat."""
        pause = max(0.02, min(1.0, self.clock.real_seconds(FENCE_EVERY_S)))
        while True:
            raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
            self._fence_back.clear()
            payload = self.fences.issue(self.clock.now())
            try:
                await client.publish(self._fence_topic, payload, qos=1)
            except aiomqtt.MqttError as exc:
                # The session is failing; ``_receive`` will see it too and reconnect.
                log.warning("fence not published: %s", exc)
                await asyncio.sleep(1.0)
                continue
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancel that lands
            # as the event is set (a fence comes back every second), and the stop then hangs.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FENCE_WAIT_S):
                    await self._fence_back.wait()
            await asyncio.sleep(pause)
