"""What the simulator puts on the wire: payloads built from the protocol models, and one MQTT
connection (QoS 1, every publish awaited until the broker's PUBACK)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiomqtt

from devices.events import CarelineCallout, DeviceEvent, EventKind, Priority
from devices.scheme import Scheme
from devices.topics import TopicLayout
from responders.protocol import Action, HandsetAction, HandsetPresence, OutcomeCode, PresenceKind


def device_event(
    device_id: str,
    kind: EventKind,
    event_id: str,
    at: datetime,
    seq: int,
    location: str | None = None,
) -> bytes:
    ev = DeviceEvent(
        event_id=uuid.UUID(event_id),
        device_id=device_id,
        kind=kind,
        occurred_at=at,
        seq=seq,
        battery_pct=15 if kind is EventKind.LOW_BATTERY else 80,
        location=location,
    )
    return ev.model_dump_json(exclude_none=True).encode()


def zigbee_report(kind: EventKind, at: datetime) -> bytes:
    """A Zigbee2MQTT door-contact state report with ``last_seen`` (so resends deduplicate)."""
    body: dict[str, Any] = {"battery": 88, "linkquality": 120, "last_seen": at.isoformat()}
    if kind in (EventKind.DOOR_OPEN, EventKind.DOOR_CLOSED):
        body["contact"] = kind is EventKind.DOOR_CLOSED
    elif kind is EventKind.LOW_BATTERY:
        body["battery_low"] = True
    return json.dumps(body).encode()


def callout(
    callout_id: str, resident_ref: str, priority: Priority, reason: str, at: datetime, operator: str
) -> bytes:
    c = CarelineCallout(
        callout_id=callout_id,
        resident_ref=resident_ref,
        reason=reason,
        priority=priority,
        operator=operator,
        requested_at=at,
    )
    return c.model_dump_json().encode()


def presence(what: PresenceKind, at: datetime, **pos: Any) -> bytes:
    p = HandsetPresence(presence_id=uuid.uuid4(), what=what, at=at, **pos)
    return p.model_dump_json(exclude_none=True).encode()


def action(
    kind: Action,
    alarm_id: str,
    at: datetime,
    offer_id: str | None = None,
    outcome: OutcomeCode | None = None,
) -> tuple[str, bytes]:
    a = HandsetAction(
        action_id=uuid.uuid4(),
        action=kind,
        alarm_id=alarm_id,
        offer_id=offer_id,
        outcome=outcome,
        at=at,
    )
    return str(a.action_id), a.model_dump_json(exclude_none=True).encode()


def visit_action(
    action: str, visit_id: str, at: datetime, reason: str | None = None
) -> tuple[str, bytes]:
    """A planned-visit check-in, check-out or frustrated visit (docs/visits.md)."""
    body: dict[str, Any] = {
        "v": 1,
        "visit_action_id": str(uuid.uuid4()),
        "action": action,
        "visit_id": visit_id,
        "at": at.isoformat(),
    }
    if reason is not None:
        body["reason"] = reason
    return body["visit_action_id"], json.dumps(body).encode()


def bad_message(
    reason: str, token: int, scheme: Scheme, layout: TopicLayout, at: datetime
) -> tuple[str, bytes]:
    """A message the gateway must dead-letter with ``reason``; content seeded by ``token``."""
    rng = random.Random(token)
    real = [d for d in scheme.devices if d.zigbee_friendly_name is None]
    dev = rng.choice(real)
    good = json.loads(device_event(dev.device_id, EventKind.HEARTBEAT, str(uuid.uuid4()), at, 1))
    topic = layout.device_events(scheme.id, dev.device_id)
    if reason == "malformed_json":
        cut = rng.randint(5, 40)
        return topic, json.dumps(good).encode()[:cut] + b"\xff{"
    if reason == "oversized":
        good["detail"] = {"padding": "x" * (40_000 + rng.randint(0, 1000))}
        return topic, json.dumps(good).encode()
    if reason == "unknown_device":
        ghost = f"ghost-{rng.getrandbits(24):06x}"
        good["device_id"] = ghost
        return layout.device_events(scheme.id, ghost), json.dumps(good).encode()
    if reason == "invalid_payload":
        good["occurred_at"] = at.replace(tzinfo=None).isoformat()  # no offset: refused
        return topic, json.dumps(good).encode()
    if reason == "wrong_topic":
        return f"{layout.root}/{scheme.id}/devices/{dev.device_id}/status", json.dumps(
            good
        ).encode()
    if reason == "topic_mismatch":
        other = rng.choice([d for d in real if d.device_id != dev.device_id])
        return layout.device_events(scheme.id, other.device_id), json.dumps(good).encode()
    raise ValueError(f"no bad message of kind {reason!r}")


Handler = Callable[[str, dict[str, Any]], Awaitable[None] | None]

# How long to wait for one PUBACK before a publish counts as timed out. A timed-out message is
# still queued in the client and will go out: re-publishing it at once would only add load to a
# broker that is already behind, so only callers without another way to recover (handset
# actions) try again; device events are resent by the outbox on its own backoff.
PUBLISH_TIMEOUT_S = 30.0
# Publishes awaiting their PUBACK at once. More would queue inside paho, whose bookkeeping is
# linear in the queue on every PUBACK: a backlog there turns a slow broker into a starved
# simulator. Beyond this they wait in asyncio, which costs nothing.
MAX_IN_FLIGHT = 200


class PublishFailed(Exception):
    """A publish was not acknowledged in time after every attempt."""


class Link:
    """One MQTT connection for the whole simulation; ``handler`` gets every received message.

    A publish that times out is counted and, if the caller asks, retried with the very same
    payload (the same event, action or presence id: the gateway deduplicates); a handler error
    is counted, and the reader goes on.
    """

    def __init__(
        self,
        host: str,
        port: int,
        filters: list[str],
        handler: Handler,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        logger = logging.getLogger("telecare.simulator.mqtt")
        logger.setLevel(logging.ERROR)  # aiomqtt warns on every publish while many are in flight
        self.client = aiomqtt.Client(
            logger=logger,
            hostname=host,
            port=port,
            identifier=f"telecare-sim-{uuid.uuid4().hex[:10]}",
            protocol=aiomqtt.ProtocolVersion.V5,
            max_inflight_messages=MAX_IN_FLIGHT,
            max_queued_outgoing_messages=0,
            max_concurrent_outgoing_calls=MAX_IN_FLIGHT,
            timeout=30,
        )
        self.filters = filters
        self.handler = handler
        self.on_error = on_error
        self.published = 0
        self.timeouts = 0  # attempts that were not acknowledged in time (then retried)
        self.failed = 0  # publishes given up after every attempt
        self.handler_errors = 0
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Link:
        await self.client.__aenter__()
        for f in self.filters:
            await self.client.subscribe(f, qos=1)
        self._reader = asyncio.create_task(self._read(), name="sim-reader")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        try:
            await self.client.__aexit__(None, None, None)
        except aiomqtt.MqttError:
            pass  # already gone: nothing left to close

    async def _read(self) -> None:
        async for msg in self.client.messages:
            try:
                body = json.loads(bytes(msg.payload))
            except (ValueError, TypeError):
                continue
            if isinstance(body, dict):
                try:
                    res = self.handler(str(msg.topic), body)
                    if res is not None:
                        await res
                except Exception as exc:  # one bad message must not stop the reader
                    self.handler_errors += 1
                    if self.on_error is not None:
                        self.on_error(exc)

    async def publish(self, topic: str, payload: bytes, attempts: int = 1) -> None:
        """Publish at QoS 1 and return once the broker has acknowledged it; on a timeout, try
        the same payload again up to ``attempts`` in all, then ``PublishFailed``."""
        for attempt in range(1, attempts + 1):
            try:
                await self.client.publish(topic, payload, qos=1, timeout=PUBLISH_TIMEOUT_S)
                self.published += 1
                return
            except aiomqtt.MqttError as exc:
                self.timeouts += 1
                if attempt == attempts:
                    self.failed += 1
                    raise PublishFailed(f"{topic}: {exc} after {attempts} attempts") from None
                await asyncio.sleep(min(2.0**attempt, 10.0))
