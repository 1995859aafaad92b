"""The engine's outbox on the wire: publish, read the broker's answer, retry what failed.

A row leaves the outbox (``sent = 1``) only when the broker's PUBACK carries a success reason
code. A refusal (MQTT 5 reason code >= 0x80: an ACL, a quota, a size limit) or a missing PUBACK
leaves it unsent: it is retried with capped backoff, counted, and the control room is told at
once with a ``delivery_failed`` alert naming the carer (or call-out) and the alarm, on the
control alerts topic and on the API's alert stream. Later rows to the same topic wait behind a
failing one, so a carer never receives a cancellation before the offer it cancels. After
``max_attempts`` a row is given up (``sent = 2``) with a ``delivery_abandoned`` alert, so one
dead topic cannot hold the rest of the outbox for ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

from devices.topics import TopicLayout
from gateway.aio import raise_if_cancelling
from gateway.clock import Clock
from gateway.config import DeliverySettings
from gateway.dispatch_hub import DispatchHub
from gateway.journal import EngineStore, OutboxRow
from gateway.metrics import Metrics
from gateway.puback import PublishOutcome

log = logging.getLogger(__name__)

OUTBOX_BATCH = 200  # messages published (and awaited) together
ALERT_TYPE = "delivery_failed"  # the alert's ``type``; ``code`` says failed/abandoned/recovered


class Publishes(Protocol):
    """``gateway.puback.AckedPublisher``, or a fake in unit tests."""

    async def publish(self, topic: str, payload: str | bytes) -> PublishOutcome: ...


@dataclass(slots=True)
class Retry:
    attempts: int = 0
    next_at: float = 0.0  # monotonic
    alerted: bool = False


@dataclass(frozen=True, slots=True)
class Addressee:
    """Who a message was for, read back from its topic and payload."""

    scheme: str
    carer_id: str | None
    callout_id: str | None
    alarm_id: str | None
    what: str  # "offer", "cancel", "alert"... for the message people read
    priority: str


def addressee(layout: TopicLayout, row: OutboxRow) -> Addressee:
    parts = row.topic.split("/")
    scheme = parts[1] if len(parts) > 1 else "?"
    try:
        body = json.loads(row.payload)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    carer = parts[3] if len(parts) == 5 and parts[2] == "carers" else None
    callout = parts[4] if len(parts) == 5 and parts[2:4] == ["careline", "status"] else None
    what = str(body.get("type") or ("careline status" if callout else "message"))
    prio = body.get("priority")
    return Addressee(
        scheme,
        carer,
        callout,
        body.get("alarm_id") if isinstance(body.get("alarm_id"), str) else None,
        what,
        prio if prio in ("P0", "P1", "P2", "P3") else "P1",
    )


def _is_delivery_alert(row: OutboxRow) -> bool:
    # A failing delivery alert is counted and retried but raises no alert about itself.
    return row.topic.endswith("/control/alerts") and f'"type": "{ALERT_TYPE}"' in row.payload


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


class OutboxPublisher:
    """Drains the outbox through one connection at a time; retry state outlives connections."""

    def __init__(
        self,
        store: EngineStore,
        writer: Executor,
        metrics: Metrics,
        hub: DispatchHub,
        layout: TopicLayout,
        clock: Clock,
        settings: DeliverySettings,
    ) -> None:
        self.store = store
        self.writer = writer
        self.metrics = metrics
        self.hub = hub
        self.layout = layout
        self.clock = clock
        self.settings = settings
        self.wake = asyncio.Event()
        self.retry: dict[int, Retry] = {}

    def backoff(self, attempts: int) -> float:
        s = self.settings
        return float(min(s.retry_min_s * 2.0 ** min(attempts - 1, 20), s.retry_max_s))

    def due(self, rows: list[OutboxRow], now: float) -> tuple[list[OutboxRow], float | None]:
        """Rows to publish now, in order, and when the next waiting one falls due.

        A row waiting for its retry blocks later rows to its topic; a row being retried goes
        out alone on its topic in this batch."""
        blocked: set[str] = set()
        out: list[OutboxRow] = []
        next_due: float | None = None
        for r in rows:
            if r.topic in blocked:
                continue
            state = self.retry.get(r.seq)
            if state is not None:
                blocked.add(r.topic)
                if state.next_at > now:
                    next_due = state.next_at if next_due is None else min(next_due, state.next_at)
                    continue
            out.append(r)
            if len(out) >= OUTBOX_BATCH:
                break
        return out, next_due

    async def drain(self, publisher: Publishes, connected: Callable[[], bool]) -> None:
        """Publish until cancelled or the connection is gone (``connected()`` false)."""
        loop = asyncio.get_running_loop()
        while True:
            raise_if_cancelling()  # a library may have swallowed our cancel (gateway/aio.py)
            if not connected():
                raise ConnectionError("outbox connection lost")
            self.wake.clear()
            rows = await asyncio.to_thread(self.store.unsent, OUTBOX_BATCH + len(self.retry))
            batch, next_due = self.due(rows, time.monotonic())
            if batch:
                outcomes = await asyncio.gather(
                    *(publisher.publish(r.topic, r.payload) for r in batch)
                )
                await self._settle(loop, batch, outcomes)
                continue
            wait = 1.0 if next_due is None else max(0.01, min(1.0, next_due - time.monotonic()))
            try:
                async with asyncio.timeout(wait):  # not wait_for: it can swallow a cancel (3.11)
                    await self.wake.wait()
            except TimeoutError:
                pass

    async def _settle(
        self,
        loop: asyncio.AbstractEventLoop,
        batch: list[OutboxRow],
        outcomes: list[PublishOutcome],
    ) -> None:
        sent = [r.seq for r, o in zip(batch, outcomes, strict=True) if o.ok]
        if sent:
            await loop.run_in_executor(self.writer, self.store.mark_sent, sent)
            self.metrics.engine_published.inc(len(sent))
        alerts: list[tuple[Addressee, dict[str, Any]]] = []
        abandoned: list[int] = []
        now = time.monotonic()
        for row, outcome in zip(batch, outcomes, strict=True):
            state = self.retry.get(row.seq)
            if outcome.ok:
                if state is not None:
                    del self.retry[row.seq]
                    if state.alerted:
                        alerts.append(self._alert(row, "delivery_recovered", outcome, state))
                continue
            state = state or self.retry.setdefault(row.seq, Retry())
            state.attempts += 1
            state.next_at = now + self.backoff(state.attempts)
            self.metrics.outbox_failures.labels(outcome.label).inc()
            log.warning(
                "outbox row %d on %s not delivered (attempt %d): %s",
                row.seq,
                row.topic,
                state.attempts,
                outcome.detail,
            )
            if state.attempts >= self.settings.max_attempts:
                abandoned.append(row.seq)
                del self.retry[row.seq]
                self.metrics.outbox_abandoned.inc()
                if not _is_delivery_alert(row):
                    alerts.append(self._alert(row, "delivery_abandoned", outcome, state))
            elif not state.alerted and not _is_delivery_alert(row):
                state.alerted = True
                alerts.append(self._alert(row, "delivery_failed", outcome, state))
        if abandoned:
            await loop.run_in_executor(self.writer, self.store.mark_abandoned, abandoned)
        self.metrics.outbox_retrying.set(len(self.retry))
        if alerts:
            await self._raise(loop, alerts)

    def _alert(
        self, row: OutboxRow, code: str, outcome: PublishOutcome, state: Retry
    ) -> tuple[Addressee, dict[str, Any]]:
        who = addressee(self.layout, row)
        to = (
            f"carer {who.carer_id}"
            if who.carer_id
            else f"Careline call-out {who.callout_id}"
            if who.callout_id
            else "the control room"
        )
        alarm = f" for alarm {who.alarm_id}" if who.alarm_id else ""
        if code == "delivery_recovered":
            message = f"{who.what}{alarm} to {to} delivered after {state.attempts} failed attempts"
        elif code == "delivery_abandoned":
            message = (
                f"{who.what}{alarm} to {to} NOT delivered, given up after {state.attempts}"
                f" attempts: {outcome.detail}"
            )
        else:
            message = f"{who.what}{alarm} to {to} not delivered: {outcome.detail}; retrying"
        body: dict[str, Any] = {
            "type": ALERT_TYPE,
            "priority": None if code == "delivery_recovered" else who.priority,
            "code": code,
            "message": message,
            "alarm_id": who.alarm_id,
            "carer_id": who.carer_id,
            "callout_id": who.callout_id,
            "topic": row.topic,
            "reason_code": outcome.code,
            "reason": None if outcome.ok else outcome.detail,
            "attempts": state.attempts,
            "at": self.clock.now().isoformat(),
        }
        return who, body

    async def _raise(
        self, loop: asyncio.AbstractEventLoop, alerts: list[tuple[Addressee, dict[str, Any]]]
    ) -> None:
        """Journal each alert (outbox + notification record), then tell connected screens."""
        at = self.clock.now()
        outbox: list[tuple[str, str]] = []
        logrows: list[tuple[str, str, str]] = []
        for who, body in alerts:
            outbox.append((self.layout.control_alerts(who.scheme), json.dumps(body)))
            note = {
                "scheme": who.scheme,
                "kind": "delivery",
                "code": body["code"],
                "priority": body["priority"],
                # The record's column is a UUID: anything else stays in the body only.
                "alarm_id": who.alarm_id if _is_uuid(who.alarm_id) else None,
                "target": who.carer_id or who.callout_id,
                "message": body["message"],
                "body": body,
            }
            logrows.append(("notifications", at.isoformat(), json.dumps(note)))
        await loop.run_in_executor(self.writer, self.store.enqueue, outbox, logrows, at)
        for who, body in alerts:
            self.hub.publish(f"control/{who.scheme}", body)
            self.hub.publish("control/*", {**body, "scheme": who.scheme})
        self.wake.set()
