"""A minimal device publisher: canonical events from a scheme's devices over MQTT QoS 1.

Speaks only the wire protocol (``devices`` models and topics), like a real hub would. The
full simulator (scenarios, carers, accelerated clock) builds on this.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from devices.events import DeviceEvent, EventKind
from devices.registry import DeviceType
from devices.scheme import Scheme
from devices.topics import TopicLayout

# What each kind of device plausibly says, most often first.
_KINDS: dict[DeviceType, list[EventKind]] = {
    DeviceType.PENDANT: [EventKind.HEARTBEAT, EventKind.PENDANT_PRESS, EventKind.TEST],
    DeviceType.FALL_DETECTOR: [EventKind.HEARTBEAT, EventKind.FALL_DETECTED],
    DeviceType.DOOR_CONTACT: [EventKind.DOOR_OPEN, EventKind.DOOR_CLOSED],
    DeviceType.HUB: [EventKind.HEARTBEAT, EventKind.POWER_FAIL, EventKind.POWER_RESTORED],
    DeviceType.SMOKE: [EventKind.HEARTBEAT, EventKind.LOW_BATTERY],
    DeviceType.BED_SENSOR: [EventKind.BED_EXIT, EventKind.BED_RETURN],
    DeviceType.CHAIR_SENSOR: [EventKind.CHAIR_EXIT, EventKind.CHAIR_RETURN],
    DeviceType.PIR: [EventKind.HEARTBEAT, EventKind.INACTIVITY],
    DeviceType.HEAT: [EventKind.HEARTBEAT, EventKind.HEAT],
    DeviceType.CO: [EventKind.HEARTBEAT, EventKind.CO],
    DeviceType.FLOOD: [EventKind.HEARTBEAT, EventKind.FLOOD],
}


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    event: DeviceEvent

    def payload(self) -> bytes:
        return self.event.model_dump_json(exclude_none=True).encode()


def event_stream(scheme: Scheme, count: int, seed: int, layout: TopicLayout) -> Iterator[Outgoing]:
    """``count`` plausible events from the scheme's devices, reproducible from ``seed``."""
    rng = random.Random(seed)
    devices = [d for d in scheme.devices if d.zigbee_friendly_name is None]
    seqs: dict[str, int] = {}
    for _ in range(count):
        device = rng.choice(devices)
        kinds = _KINDS.get(device.type, [EventKind.HEARTBEAT])
        kind = kinds[0] if rng.random() < 0.7 else rng.choice(kinds)
        seqs[device.device_id] = seqs.get(device.device_id, 0) + 1
        event = DeviceEvent(
            event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            device_id=device.device_id,
            kind=kind,
            occurred_at=datetime.now(UTC),
            seq=seqs[device.device_id],
            battery_pct=rng.randint(20, 100),
            location=device.location,
        )
        yield Outgoing(layout.device_events(scheme.id, device.device_id), event)


class Publisher:
    """A paho client that publishes at QoS 1 and can wait until the broker has every PUBACK."""

    def __init__(self, host: str, port: int, client_id: str | None = None) -> None:
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"telecare-sim-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)
        self._acked = 0
        self._lock = threading.Condition()
        self.client.on_publish = self._on_publish
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def _on_publish(
        self, client: object, userdata: object, mid: int, rc: object, props: object
    ) -> None:
        with self._lock:
            self._acked += 1
            self._lock.notify_all()

    def publish(self, topic: str, payload: bytes, qos: int = 1) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise RuntimeError(f"publish to {topic} failed: {paho.error_string(info.rc)}")

    def wait_acked(self, n: int, timeout: float = 60.0) -> bool:
        """Block until ``n`` publishes have been acknowledged by the broker."""
        with self._lock:
            return self._lock.wait_for(lambda: self._acked >= n, timeout)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
