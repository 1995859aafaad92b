"""Background heartbeats at a fixed rate, as their own process: QoS 1 from a scheme's devices,
each with a fresh event id, for a bounded time, then stop. Prints one JSON line: offered,
acknowledged by the broker, and the rate actually achieved.

Run by ``benchmarks.alarm_latency``; never left running: ``--seconds`` bounds it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devices.registry import DeviceType
from devices.scheme import load_scheme
from devices.topics import TopicLayout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--scheme", type=Path, required=True)
    ap.add_argument("--rate", type=float, required=True, help="messages per second")
    ap.add_argument("--seconds", type=float, required=True)
    a = ap.parse_args()
    scheme = load_scheme(a.scheme)
    layout = TopicLayout(a.root)
    # Hubs and other mains devices: a pendant's heartbeat is fine too, never a press.
    devices = [d for d in scheme.devices if d.zigbee_friendly_name is None]
    topics = [layout.device_events(scheme.id, d.device_id) for d in devices]
    ids = [d.device_id for d in devices]
    acked = 0
    lock = threading.Lock()

    def on_publish(*_a: object) -> None:
        nonlocal acked
        with lock:
            acked += 1

    c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", a.port, keepalive=30)
    c.loop_start()
    assert DeviceType.HUB  # the scheme's devices above are validated models
    sent = 0
    started = time.monotonic()
    end = started + a.seconds
    batch = max(1, int(a.rate / 100))  # send in 10 ms slices
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - started) * a.rate)
        stamp = datetime.now(UTC).isoformat()
        while sent < due:
            k = sent % len(ids)
            body = (
                f'{{"v":1,"event_id":"{uuid.uuid4()}","device_id":"{ids[k]}",'
                f'"kind":"heartbeat","occurred_at":"{stamp}"}}'
            )
            c.publish(topics[k], body.encode(), qos=1)
            sent += 1
            if sent % batch == 0 and time.monotonic() >= end:
                break
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with lock:
            if acked >= sent:
                break
        time.sleep(0.05)
    c.loop_stop()
    c.disconnect()
    print(
        json.dumps({"offered": sent, "acked": acked, "seconds": elapsed, "rate": sent / elapsed}),
        flush=True,
    )


if __name__ == "__main__":
    main()
