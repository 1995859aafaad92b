"""Device clients for fault runs, speaking only the wire protocol.

``ResendingDevices`` keeps every event until it holds a receipt for it and resends it (same
``event_id``) on the documented backoff, through broker restarts; it is what a device built to
docs/protocol.md does. ``FireAndForget`` publishes each event once at QoS 1 and trusts the
broker's PUBACK, as devices did before receipts: the control group.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from devices.events import DeviceEvent
from devices.receipts import resend_delay
from devices.topics import TopicLayout


@dataclass
class _Held:
    topic: str
    payload: bytes
    resends: int = 0
    next_at: float = 0.0


class ResendingDevices:
    """Many devices of one scheme behind one connection (as a hub would be)."""

    def __init__(self, host: str, port: int, layout: TopicLayout, scheme: str, seed: int) -> None:
        self.layout = layout
        self.rng = random.Random(seed)
        self.held: dict[str, _Held] = {}
        self.receipts: dict[str, dict[str, Any]] = {}
        self.sends = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fault-dev-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.reconnect_delay_set(0.2, 2.0)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self._receipts_filter = f"{layout.root}/{scheme}/devices/+/receipts"
        self.client.connect_async(host, port)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._resend_loop, daemon=True)
        self._thread.start()

    def _on_connect(self, client: paho.Client, *_a: object) -> None:
        # A restarted broker may have forgotten us: subscribe on every connect.
        client.subscribe(self._receipts_filter, qos=1)

    def _on_message(self, _c: object, _u: object, msg: paho.MQTTMessage) -> None:
        body = json.loads(msg.payload)
        event_id = body.get("event_id")
        with self._lock:
            if event_id in self.held:
                del self.held[event_id]
                self.receipts[event_id] = body

    def send(self, scheme: str, event: DeviceEvent) -> None:
        """Send once now; keep it until a receipt comes."""
        topic = self.layout.device_events(scheme, event.device_id)
        held = _Held(topic, event.model_dump_json(exclude_none=True).encode())
        with self._lock:
            self.held[str(event.event_id)] = held
            held.next_at = time.monotonic() + resend_delay(0, self.rng)
        self._publish(held)

    def _publish(self, held: _Held) -> None:
        self.client.publish(held.topic, held.payload, qos=1)
        self.sends += 1

    def _resend_loop(self) -> None:
        while not self._stop.wait(0.05):
            now = time.monotonic()
            with self._lock:
                due = [h for h in self.held.values() if h.next_at <= now]
                for h in due:
                    h.resends += 1
                    h.next_at = now + resend_delay(h.resends, self.rng)
            if self.client.is_connected():
                for h in due:
                    self._publish(h)

    def waiting(self) -> int:
        with self._lock:
            return len(self.held)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.client.loop_stop()
        self.client.disconnect()


class FireAndForget:
    """Publishes each event once at QoS 1; done when the broker says PUBACK."""

    def __init__(self, host: str, port: int, layout: TopicLayout) -> None:
        self.layout = layout
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fault-fnf-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self.client.connect(host, port)
        self.client.loop_start()
        self.infos: list[paho.MQTTMessageInfo] = []

    def send(self, scheme: str, event: DeviceEvent) -> None:
        topic = self.layout.device_events(scheme, event.device_id)
        payload = event.model_dump_json(exclude_none=True).encode()
        self.infos.append(self.client.publish(topic, payload, qos=1))

    def wait_acked(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for info in self.infos:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            info.wait_for_publish(left)
        return all(i.is_published() for i in self.infos)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
