"""Receipts to devices and the Careline, published after the journal commit.

A receipt is what lets a device stop resending (see ``devices.receipts``). It needs no
durability of its own: a receipt lost on the way (gateway crash, broker restart, full queue) only
means the device resends, and the resend is journaled as a duplicate and receipted again. So
receipts wait in a bounded in-memory queue and are published on the ingest connection by their
own task; the journal commit and the PUBACKs to devices never wait for them. Every receipt the
gateway could not publish is counted (``telecare_receipts_total{result!="ok"}``).

Zigbee2MQTT devices get no receipt: they cannot read one or resend (docs/protocol.md says what
protects them instead).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from devices.receipts import ReceiptStatus
from devices.records import CalloutRecord, EventRecord
from devices.topics import TopicLayout
from gateway.aio import raise_if_cancelling
from gateway.journal import CommitResult, Incoming
from gateway.metrics import Metrics
from gateway.puback import AckedPublisher, PublishOutcome

log = logging.getLogger(__name__)

# An id we can still find in bytes that are not valid JSON (truncated, oversized).
_ID_RE = {
    field: re.compile(rb'"' + field.encode() + rb'"\s*:\s*"([^"\\]{1,128})"')
    for field in ("event_id", "callout_id")
}
_SCAN_BYTES = 64 * 1024  # never scan more of a hostile payload than this


class HeartbeatLookup(Protocol):
    """What the receipt tells a device about its heartbeat (the scheme's expectation)."""

    def heartbeat_s(self, scheme: str, device_id: str) -> int | None: ...


@dataclass(frozen=True, slots=True)
class ReceiptTarget:
    """Where a message's receipt goes and what it names, fixed when the message arrives."""

    topic: str
    id_field: str  # "event_id" or "callout_id"
    id_value: str | None  # from the payload, if it could be read at all
    heartbeat_s: int | None


def _read_id(payload: bytes, id_field: str) -> str | None:
    head = payload[:_SCAN_BYTES]
    try:
        data = json.loads(head)
    except Exception:  # any undecodable payload: depth, digits, encoding
        data = None
    if isinstance(data, dict):
        value = data.get(id_field)
        return value[:128] if isinstance(value, str) and value else None
    match = _ID_RE[id_field].search(head)
    return match.group(1).decode("utf-8", "replace") if match else None


def target_for(
    layout: TopicLayout,
    topic: str,
    payload: bytes,
    heartbeats: HeartbeatLookup,
    known_id: str | None = None,
) -> ReceiptTarget | None:
    """The receipt a message on ``topic`` earns, or None (handsets, Zigbee, stray topics).

    Any message under ``<root>/<scheme>/devices/<device_id>/`` gets one, refused ones too (a
    misspelt topic is told so), and so does any message on ``<root>/<scheme>/careline/callouts``.
    ``known_id``: the id the decoder already read, so the payload is not parsed a second time.
    """
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != layout.root or not parts[1]:
        return None
    scheme = parts[1]
    if len(parts) >= 5 and parts[2] == "devices" and parts[3] and parts[4] != "receipts":
        device_id = parts[3]
        return ReceiptTarget(
            layout.device_receipts(scheme, device_id),
            "event_id",
            known_id if known_id is not None else _read_id(payload, "event_id"),
            heartbeats.heartbeat_s(scheme, device_id),
        )
    if len(parts) == 4 and parts[2:] == ["careline", "callouts"]:
        return ReceiptTarget(
            layout.careline_receipts(scheme),
            "callout_id",
            known_id if known_id is not None else _read_id(payload, "callout_id"),
            None,
        )
    return None


def render(target: ReceiptTarget, incoming: Incoming, result: CommitResult, at: datetime) -> str:
    """The receipt's JSON for one committed message (see docs/protocol.md, "Receipts")."""
    id_value = target.id_value
    dl = incoming.dead_letter
    if dl is not None:
        status, reason = ReceiptStatus.REFUSED, dl.reason
    else:
        status = ReceiptStatus.ACCEPTED if result.new else ReceiptStatus.DUPLICATE
        reason = None
        # The decoded record is the authority on the id (the payload scan is a fallback).
        for rec in incoming.records:
            match rec.record:
                case EventRecord() if target.id_field == "event_id":
                    id_value = str(rec.record.event_id)
                    break
                case CalloutRecord() if target.id_field == "callout_id":
                    id_value = rec.record.callout_id
                    break
    body = {
        "v": 1,
        target.id_field: id_value,
        "status": status.value,
        "reason": reason,
        "heartbeat_s": target.heartbeat_s,
        "at": at.isoformat(),
    }
    return json.dumps(body, separators=(",", ":"))


class ReceiptQueue:
    """Receipts waiting to be published: bounded, so a backlog cannot grow memory without
    limit. A receipt that does not fit is dropped and counted; its device resends."""

    def __init__(self, metrics: Metrics, maxsize: int, concurrency: int) -> None:
        self.metrics = metrics
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize)
        self.concurrency = concurrency

    def offer(self, topic: str, payload: str) -> None:
        try:
            self.queue.put_nowait((topic, payload))
        except asyncio.QueueFull:
            self.metrics.receipts.labels("dropped").inc()

    async def run(self, publisher: AckedPublisher) -> None:
        """Publish until cancelled (the connection ended). Up to ``concurrency`` receipts are
        in flight at once; each outcome, good or bad, is counted."""
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        try:
            while True:
                raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
                topic, payload = await self.queue.get()
                await slots.acquire()
                task = asyncio.create_task(self._one(publisher, topic, payload, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                self.metrics.receipts.labels("unacknowledged").inc(len(tasks))

    async def _one(
        self, publisher: AckedPublisher, topic: str, payload: str, slots: asyncio.Semaphore
    ) -> None:
        try:
            outcome: PublishOutcome = await publisher.publish(topic, payload)
        finally:
            slots.release()
        self.metrics.receipts.labels(outcome.label).inc()
        if not outcome.ok:
            log.warning("receipt on %s not delivered: %s", topic, outcome.detail)
