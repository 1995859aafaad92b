"""Durable ingest: MQTT in, decode, journal (group commit), and only then PUBACK.

aiomqtt 2.x acknowledges QoS 1 messages before our code runs, which would let an event be
lost between the broker's queue and our disk. We switch the paho client underneath to manual
acknowledgement and call ``ack(mid, qos)`` after the journal commit. An ack is bound to the
connection the message came on: if that connection is gone, the ack is dropped and the broker
redelivers the message on the next session, where the journal recognises it as a duplicate.

After the commit each device event and Careline call-out also earns a receipt
(``gateway.receipts``), published on this connection by a task of its own, so no PUBACK waits
for a receipt.

Memory is bounded end to end: the broker sends at most ``receive_maximum`` unacknowledged
messages (MQTT 5 Receive Maximum, sent in CONNECT), acknowledgement waits for the commit, and
the queue in front of the journal holds at most ``queue_max`` messages. A backlog of any size
then drains through a window of fixed size instead of piling up in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
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
from devices.topics import TopicLayout
from gateway.broker_conn import connection_options
from gateway.clock import Clock
from gateway.config import Settings
from gateway.flow import FlowControlledClient, InFlight
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


class FatalMqttError(Exception):
    """The broker refused us for a reason retrying cannot fix (credentials, authorisation)."""


def _ack_on(client: paho.Client, mid: int, qos: int, window: InFlight) -> Callable[[], None]:
    def ack() -> None:
        if qos > 0 and client.is_connected():
            client.ack(mid, qos)
            window.done()

    return ack


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
        self.queue: asyncio.Queue[Pending] = asyncio.Queue(cfg.queue_max)
        self.receipts = ReceiptQueue(metrics, cfg.receipt_queue_max, cfg.receipt_concurrency)
        self.in_flight = InFlight(metrics, cfg.receive_maximum)
        self.connected = False
        self.on_committed: list[Callable[[list[Incoming]], None]] = []

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
        client = FlowControlledClient(
            **connection_options(m),
            identifier=m.client_id,
            protocol=aiomqtt.ProtocolVersion.V5,
            clean_start=False,
            properties=props,
            keepalive=m.keepalive_s,
            timeout=10,
            # Never drop here: the Receive Maximum above already bounds this queue.
            max_queued_incoming_messages=0,
        )
        # Must be set before connecting: PUBACK goes out only after the journal commit.
        client._client.manual_ack_set(True)
        # Counts every QoS 1 message as it arrives and pauses reading at the window's edge.
        self.in_flight.attach(client)
        return client

    async def _mqtt_loop(self) -> None:
        m = self.settings.mqtt
        delay = m.reconnect_min_s
        while True:
            try:
                client = self._client()
                async with client:
                    # Re-subscribe on every connect: cheap, and right even if the session was lost.
                    # Ready only once subscribed: before that, a first session hears nothing.
                    # No Local: the receipts this connection publishes under ``devices/#``
                    # must not come back to it (the broker would queue each one for us).
                    only_others = SubscribeOptions(qos=1, noLocal=True)
                    for topic_filter in self.layout.subscriptions():
                        await client.subscribe(topic_filter, options=only_others)
                    self.in_flight.arm()
                    self.connected = True
                    self.metrics.mqtt_connected.set(1)
                    self.metrics.mqtt_connects.inc()
                    delay = m.reconnect_min_s
                    log.info("connected to mqtt %s:%s as %s", m.host, m.port, m.client_id)
                    # Receipts live and die with this connection; the queue outlives it.
                    receipts = asyncio.create_task(
                        self.receipts.run(AckedPublisher(client)), name="receipts"
                    )
                    try:
                        await self._receive(client)
                    finally:
                        receipts.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await receipts
            except aiomqtt.MqttCodeError as exc:
                rc = getattr(exc.rc, "value", exc.rc)
                if rc in _FATAL_CONNECT_CODES:
                    raise FatalMqttError(f"broker refused the gateway: {exc}") from exc
                log.warning("mqtt error: %s; reconnecting in %.1fs", exc, delay)
            except aiomqtt.MqttError as exc:
                log.warning("mqtt connection lost: %s; reconnecting in %.1fs", exc, delay)
            finally:
                self.connected = False
                self.metrics.mqtt_connected.set(0)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, m.reconnect_max_s)

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
            now = self.clock.now()
            incoming = self.classify(topic, payload, now)
            target = target_for(self.layout, topic, payload, self.registry)
            # Waits only when the queue is full: the broker then holds the rest for us.
            await self.queue.put(Pending(incoming, ack, time.monotonic(), target))
            self.metrics.ingest_queue.set(self.queue.qsize())

    async def _committer(self) -> None:
        loop = asyncio.get_running_loop()
        max_batch = self.settings.journal.max_batch
        while True:
            batch = [await self.queue.get()]
            # Group commit: take whatever queued up while the previous fsync ran.
            while len(batch) < max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            items = [p.incoming for p in batch]
            started = time.perf_counter()
            while True:
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
                    self.metrics.messages.labels("dead_letter").inc()
                    self.metrics.dead_letters.labels(dl.reason).inc()
                elif result.new:
                    self.metrics.messages.labels("accepted").inc()
                    for rec in pending.incoming.records:
                        self.metrics.records.labels(rec.record_type.value).inc(1)
                else:
                    self.metrics.messages.labels("duplicate").inc()
            for callback in self.on_committed:
                callback(items)
