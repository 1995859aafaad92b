"""The broker's QoS 1 rate under the shipped durability setting against the old one, same run.

Starts two private Mosquitto instances on free loopback ports, built from
``deploy/mosquitto/telecare-dev.conf.in``: one as shipped (periodic save), one with the old
"save on every change" block. Against each, in turn:

* ``queued``: the gateway is away (a persistent QoS 1 session that is disconnected), so every
  message must be queued for it, the case after a gateway crash or upgrade;
* ``online``: a QoS 1 subscriber is connected and reads everything.

A publisher sends N QoS 1 messages with up to ``--window`` unacknowledged; the rate is N over
the time until the last PUBACK. Prints msgs/s per case and the ratio new/old; asserts nothing
(the machine is shared and noisy). Run:
    .venv/bin/python benchmarks/broker_qos1.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.faults.private_broker import SAVE_ON_EVERY_CHANGE, PrivateBroker


def _client(port: int, client_id: str, *, clean: bool, window: int = 20) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    c.max_inflight_messages_set(window)
    props = None
    if not clean:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port, clean_start=clean, properties=props)
    c.loop_start()
    if not connected.wait(10):
        raise RuntimeError("no CONNACK")
    return c


def _subscribe(c: paho.Client, topic: str) -> None:
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.subscribe(topic, qos=1)
    if not done.wait(10):
        raise RuntimeError("no SUBACK")


def publish_rate(port: int, topic: str, n: int, window: int) -> float:
    """N QoS 1 publishes, at most ``window`` unacknowledged; messages per second."""
    pub = _client(port, f"bench-pub-{uuid.uuid4().hex[:8]}", clean=True, window=window)
    acked = 0
    all_acked = threading.Event()

    def on_publish(*_a: object) -> None:
        nonlocal acked
        acked += 1
        if acked == n:
            all_acked.set()

    pub.on_publish = on_publish
    payload = b'{"v":1,"event_id":"' + b"x" * 36 + b'","kind":"heartbeat"}' + b" " * 80
    started = time.perf_counter()
    for _ in range(n):
        pub.publish(topic, payload, qos=1)
    if not all_acked.wait(600):
        raise RuntimeError(f"only {acked}/{n} acknowledged in 600 s")
    elapsed = time.perf_counter() - started
    pub.loop_stop()
    pub.disconnect()
    return n / elapsed


def measure(durability: str | None, n: int, window: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="broker-bench-") as tmp:
        with PrivateBroker(Path(tmp), durability=durability) as broker:
            out: dict[str, float] = {}
            # queued: a persistent session subscribes, then goes away.
            gw = _client(broker.port, "bench-gateway", clean=False)
            _subscribe(gw, "bench/queued/#")
            gw.loop_stop()
            gw.disconnect()
            out["queued"] = publish_rate(broker.port, "bench/queued/x", n, window)
            # online: a subscriber reads as fast as it can.
            sub = _client(broker.port, f"bench-sub-{uuid.uuid4().hex[:8]}", clean=True)
            _subscribe(sub, "bench/online/#")
            out["online"] = publish_rate(broker.port, "bench/online/x", n, window)
            sub.loop_stop()
            sub.disconnect()
            return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--window", type=int, default=100, help="unacknowledged publishes at most")
    args = ap.parse_args()
    print(f"{args.messages} QoS 1 messages per case, window {args.window}")
    old = measure(SAVE_ON_EVERY_CHANGE, args.messages, args.window)
    new = measure(None, args.messages, args.window)
    print(f"{'case':8} {'save on every change':>22} {'periodic (shipped)':>20} {'ratio':>7}")
    for case in ("queued", "online"):
        ratio = new[case] / old[case]
        print(f"{case:8} {old[case]:>16.0f} msg/s {new[case]:>14.0f} msg/s {ratio:>6.1f}x")


if __name__ == "__main__":
    main()
