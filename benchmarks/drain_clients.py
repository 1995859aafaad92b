"""The two reference consumers the ingest drain is measured against, each run as its own
process so its peak RSS is its own:

* ``aiomqtt``: bare aiomqtt, JSON parse only, QoS 1 acknowledged by the library: the limit a
  Python MQTT client reaches on this machine;
* ``paho``: a paho callback doing one autocommitted INSERT per message into PostgreSQL, the
  naive baseline (paho acknowledges each message after its callback returns).

Each resumes a persistent session the driver created, reads until it holds ``--n`` distinct
event ids, and prints one JSON line: counts, seconds from first to last message, peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import cpu_seconds, peak_rss_mib

if TYPE_CHECKING:
    import aiomqtt

SESSION_EXPIRY_S = 3600


def _report(ids: set[str], received: int, first: float, last: float, started: float) -> None:
    import os

    print(
        json.dumps(
            {
                "received": received,
                "distinct": len(ids),
                "first_to_last_s": last - first,
                "wall_s": time.monotonic() - started,
                "peak_rss_mib": peak_rss_mib(),
                "cpu_s": cpu_seconds(os.getpid()),
            }
        ),
        flush=True,
    )


def resumed_session(port: int, client_id: str) -> aiomqtt.Client:
    """A bare aiomqtt client resuming the persistent session the driver made (MQTT 5)."""
    import aiomqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    return aiomqtt.Client(
        "127.0.0.1",
        port,
        identifier=client_id,
        protocol=aiomqtt.ProtocolVersion.V5,
        clean_start=False,
        properties=props,
    )


async def _aiomqtt(port: int, client_id: str, topic: str, n: int, limit_s: float) -> None:
    ids: set[str] = set()
    received = 0
    first = last = 0.0
    started = time.monotonic()
    async with resumed_session(port, client_id) as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(limit_s):
            async for msg in client.messages:
                now = time.monotonic()
                if not received:
                    first = now
                received += 1
                last = now
                body = json.loads(msg.payload)
                ids.add(body["event_id"])
                if len(ids) >= n:
                    break
    _report(ids, received, first, last, started)


def _paho(port: int, client_id: str, topic: str, n: int, dsn: str, timeout: float) -> None:
    import paho.mqtt.client as paho
    import psycopg
    from paho.mqtt.enums import CallbackAPIVersion
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    db = psycopg.connect(dsn, autocommit=True)
    db.execute(
        "CREATE TABLE IF NOT EXISTS naive_events (event_id uuid PRIMARY KEY, device_id text,"
        " kind text, occurred_at timestamptz, body jsonb)"
    )
    ids: set[str] = set()
    state = {"received": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()
    failed: list[str] = []
    started = time.monotonic()

    def on_message(c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        try:
            handle(c, msg)
        except Exception as exc:  # stop at once rather than hang until the timeout
            failed.append(repr(exc))
            done.set()

    def handle(c: paho.Client, msg: paho.MQTTMessage) -> None:
        now = time.monotonic()
        if not state["received"]:
            state["first"] = now
        state["received"] += 1
        body = json.loads(msg.payload)
        db.execute(
            "INSERT INTO naive_events VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (
                body["event_id"],
                body["device_id"],
                body["kind"],
                body["occurred_at"],
                msg.payload.decode(),
            ),
        )
        ids.add(body["event_id"])
        state["last"] = time.monotonic()
        if len(ids) >= n:
            done.set()
            c.disconnect()

    def on_connect(c: paho.Client, *_a: object) -> None:
        c.subscribe(topic, qos=1)

    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = SESSION_EXPIRY_S
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5)
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect("127.0.0.1", port, clean_start=False, properties=props)
    client.loop_start()
    done.wait(timeout)
    client.loop_stop()
    if failed:
        raise SystemExit(f"baseline consumer failed: {failed[0]}")
    stored = db.execute("SELECT count(*) FROM naive_events").fetchone()
    db.close()
    ids_stored = int(stored[0]) if stored else 0
    _report(ids, int(state["received"]), state["first"], state["last"], started)
    print(json.dumps({"rows_in_database": ids_stored}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=("aiomqtt", "paho"))
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--client-id", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--dsn", default="")
    ap.add_argument("--timeout", type=float, default=600)
    a = ap.parse_args()
    if a.kind == "aiomqtt":
        asyncio.run(_aiomqtt(a.port, a.client_id, a.topic, a.n, a.timeout))
    else:
        _paho(a.port, a.client_id, a.topic, a.n, a.dsn, a.timeout)


if __name__ == "__main__":
    main()
