"""Alarm to handset: from a pendant press leaving the device to the offer reaching the carer's
handset, idle and under background heartbeats, with the broker's own round trip as the floor;
and offer-timeout lateness (the escalation timer) under the same load.

A private Mosquitto, a fresh database and a gateway serving Hazelhurst Court at night on a
clock ten times real time (the 60 s offer timeout is 6 s real). Two carers are logged in with
beating handsets. At each background rate (``benchmarks/load_gen.py``, its own process,
bounded in time) the run takes ``--presses`` presses one after another: press, wait for the
offer, then the offered carer accepts, arrives and resolves, so the next press finds them free.
Between presses the same client times a QoS 1 publish to itself through the broker (the
floor). Then ``--timer-probes`` presses nobody answers: the offer moves on when the timeout
fires, and the lateness is the gap between the two offers at the handset less the timeout.

The rate the gateway sustained is its accepted-message count over the window, and its CPU is
its own CPU time over the same window. Run:
    .venv/bin/python -m benchmarks.alarm_latency [--rates 0,500,2000,5000] [--ref main]

``--ref REV`` runs the gateway as it was at a git revision (``git archive``) beside this one,
each on its own private broker (with that revision's ``set_tcp_nodelay``) and database, level
by level in one run, so before and after meet the same machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from benchmarks.common import (
    REPO,
    SCHEME,
    cpu_seconds,
    fresh_database,
    gateway_env,
    metrics,
    stop,
    summary_ms,
    table,
    wait_ready,
    write_result,
)
from benchmarks.ingest_drain import export
from devices.registry import DeviceType
from devices.scheme import load_scheme
from devices.topics import TopicLayout
from simulator.gateway_proc import free_port
from tests.faults.private_broker import PrivateBroker

SPEED = 10.0
NIGHT = datetime(2026, 1, 14, 2, 0, tzinfo=UTC)  # a winter night: Europe/London is UTC
OFFER_TIMEOUT_S = 60  # scheme seconds (the gateway's default)
CARERS = {"cw-01": "A-012", "cw-02": "B-050"}


@dataclass
class Got:
    topic: str
    body: dict[str, Any]
    at: float


class Handsets:
    """Both carers' handsets on one MQTT connection; presses and floor probes on another."""

    def __init__(
        self,
        port: int,
        layout: TopicLayout,
        scheme: str,
        anchor: float,
        carers: dict[str, str] | None = None,
    ) -> None:
        self.carers = carers if carers is not None else CARERS  # carer -> flat at login
        self.layout = layout
        self.scheme = scheme
        self.anchor = anchor
        self.got: list[Got] = []
        self.cond = threading.Condition()
        self.floor_topic = f"{layout.root}/_bench/floor"
        self.c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.c.max_inflight_messages_set(100)
        self.c.on_message = self._on_message
        ok = threading.Event()
        self.c.on_subscribe = lambda *a: ok.set()
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        self.c.subscribe([(f"{layout.root}/{scheme}/carers/+/dispatch", 1), (self.floor_topic, 1)])
        if not ok.wait(10):
            raise RuntimeError("no SUBACK")
        # Presses and floor probes come from a connection of their own, as from a real device:
        # on one connection the broker's PUBACK and the forwarded PUBLISH meet Nagle's
        # algorithm and a delayed ACK, adding about 40 ms that no deployment would see.
        self.dev = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.dev.connect("127.0.0.1", port)
        self.dev.loop_start()
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._beats, daemon=True)

    def _on_message(self, c: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        at = time.monotonic()
        body = json.loads(msg.payload)
        with self.cond:
            self.got.append(Got(msg.topic, body, at))
            self.cond.notify_all()

    def now(self) -> datetime:
        return NIGHT + timedelta(seconds=(time.time() - self.anchor) * SPEED)

    def send(self, topic: str, body: dict[str, Any], device: bool = False) -> float:
        t = time.monotonic()
        (self.dev if device else self.c).publish(topic, json.dumps(body), qos=1)
        return t

    def presence(self, carer: str, what: str, **pos: Any) -> None:
        body = {"presence_id": str(uuid.uuid4()), "what": what, "at": self.now().isoformat()}
        self.send(self.layout.carer(self.scheme, carer, "presence"), {**body, **pos})

    def act(self, carer: str, kind: str, alarm_id: str, offer_id: str | None, **kw: Any) -> None:
        body = {
            "action_id": str(uuid.uuid4()),
            "action": kind,
            "alarm_id": alarm_id,
            "offer_id": offer_id,
            "at": self.now().isoformat(),
            **kw,
        }
        self.send(self.layout.carer(self.scheme, carer, "actions"), body)

    def press(self, device_id: str) -> float:
        body = {
            "v": 1,
            "event_id": str(uuid.uuid4()),
            "device_id": device_id,
            "kind": "pendant_press",
            "occurred_at": self.now().isoformat(),
        }
        return self.send(self.layout.device_events(self.scheme, device_id), body, device=True)

    def wait(self, pred: Any, timeout: float, after: int = 0) -> Got | None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for g in self.got[after:]:
                    if pred(g):
                        return g
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)

    def mark(self) -> int:
        with self.cond:
            return len(self.got)

    def floor(self) -> float | None:
        """One QoS 1 publish to ourselves through the broker: seconds, or None."""
        probe = uuid.uuid4().hex
        mark = self.mark()
        t0 = self.send(self.floor_topic, {"probe": probe}, device=True)
        g = self.wait(lambda g: g.body.get("probe") == probe, 10, mark)
        return None if g is None else g.at - t0

    def log_in(self) -> None:
        """Log every carer in and keep their handsets beating (a silent one is not routable)."""
        for carer, flat in self.carers.items():
            self.presence(carer, "login", flat=flat)
        self._beat.start()

    def _beats(self) -> None:
        while not self._stop.wait(1.0):
            for carer in self.carers:
                self.presence(carer, "heartbeat")

    def close(self) -> None:
        self._stop.set()
        for c in (self.c, self.dev):
            c.loop_stop()
            c.disconnect()


def carer_of(topic: str) -> str:
    return topic.split("/")[-2]


def one_press(h: Handsets, device: str, flat: str, timeout: float) -> float | None:
    """Press, time the offer, then accept, arrive and resolve it. None if no offer came."""
    mark = h.mark()
    t0 = h.press(device)
    offer = h.wait(
        lambda g: g.body.get("type") == "offer" and g.body.get("flat_id") == flat, timeout, mark
    )
    if offer is None:
        return None
    close(h, offer, timeout)
    return offer.at - t0


def close(h: Handsets, offer: Got, timeout: float) -> None:
    carer, alarm = carer_of(offer.topic), str(offer.body["alarm_id"])
    mark = h.mark()
    h.act(carer, "accept", alarm, str(offer.body["offer_id"]))
    h.act(carer, "arrived", alarm, None)
    h.act(carer, "resolved", alarm, None, outcome="assisted")
    h.wait(
        lambda g: (
            g.body.get("type") == "action_result"
            and g.body.get("alarm_id") == alarm
            and g.body.get("action") == "resolved"
        ),
        timeout,
        mark,
    )


def timer_probe(h: Handsets, device: str, flat: str, timeout: float) -> float | None:
    """Lateness of the offer timeout in real seconds, seen at the handsets."""
    mark = h.mark()
    h.press(device)
    first = h.wait(
        lambda g: g.body.get("type") == "offer" and g.body.get("flat_id") == flat, timeout, mark
    )
    if first is None:
        return None
    alarm = first.body["alarm_id"]
    due = OFFER_TIMEOUT_S / SPEED
    second = h.wait(
        lambda g: (
            g.body.get("type") == "offer"
            and g.body.get("alarm_id") == alarm
            and g.body.get("offer_id") != first.body["offer_id"]
        ),
        due + timeout,
        mark,
    )
    if second is None:
        return None
    close(h, second, timeout)
    return (second.at - first.at) - due


def level(
    h: Handsets,
    rate: int,
    args: argparse.Namespace,
    gw: tuple[int, str],
    port: int,
    root: str,
    pendants: list[tuple[str, str]],
) -> dict[str, Any]:
    pid, url = gw
    gen: subprocess.Popen[str] | None = None
    if rate:
        gen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks.load_gen",
                "--port",
                str(port),
                "--root",
                root,
                "--scheme",
                str(SCHEME),
                "--rate",
                str(rate),
                "--seconds",
                str(args.window),
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(3)  # let the load settle before measuring
    try:
        m0 = metrics(url)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        lat: list[float] = []
        floor: list[float] = []
        missed = 0
        # Bounded: a gateway far behind (presses queued behind the backlog) ends the level
        # when the load does, rather than at ``presses`` x ``press_timeout``.
        budget = t0 + args.window
        for i in range(args.presses):
            if i and time.monotonic() > budget:
                break
            device, flat = pendants[i % len(pendants)]
            f = h.floor()
            if f is not None:
                floor.append(f)
            got = one_press(h, device, flat, args.press_timeout)
            if got is None:
                missed += 1
            else:
                lat.append(got)
        late: list[float] = []
        for i in range(args.timer_probes):
            if i and time.monotonic() > budget + 15:
                break
            device, flat = pendants[-1 - i % len(pendants)]
            got = timer_probe(h, device, flat, args.press_timeout)
            if got is not None:
                late.append(got)
        m1 = metrics(url)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
    finally:
        offered: dict[str, Any] = {}
        if gen is not None:
            out, _ = gen.communicate(timeout=args.window + 60)
            offered = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
    key = "telecare_ingest_messages_total{result=accepted}"
    sustained = (m1.get(key, 0) - m0.get(key, 0)) / (t1 - t0)
    return {
        "offered_rate": rate,
        "generator": offered,
        "sustained_rate": sustained,
        "gateway_cpu_pct_of_core": 100 * (cpu1 - cpu0) / (t1 - t0),
        "press_to_offer": summary_ms(lat),
        "presses_without_offer": missed,
        "presses": len(lat) + missed,
        "broker_round_trip": summary_ms(floor),
        "timer_lateness": summary_ms(late),
    }


def settle(url: str, timeout: float) -> None:
    """Wait until the gateway has stopped accepting (any backlog drained), at most ``timeout``."""
    key = "telecare_ingest_messages_total{result=accepted}"
    last, deadline = -1.0, time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = metrics(url).get(key, 0.0)
        if now - last < 5:
            return
        last = now
        time.sleep(1.0)


class Subject:
    """One gateway (this tree, or an exported revision) on its own private broker, database
    and handsets, so two can be measured level by level in one run."""

    def __init__(self, name: str, work: Path, dsn: str, src: Path, extra_broker: str) -> None:
        self.name = name
        self.work = work
        self.dsn = dsn
        self.src = src
        self.broker = PrivateBroker(work / "broker", extra=extra_broker)
        self.proc: subprocess.Popen[bytes] | None = None
        self.h: Handsets | None = None
        self.url = ""
        self.layout: TopicLayout | None = None

    def start(self, scheme_id: str, anchor: float) -> None:
        self.broker.start()
        tag = uuid.uuid4().hex[:8]
        http = free_port()
        self.url = f"http://127.0.0.1:{http}"
        env = gateway_env(
            self.work,
            self.broker.port,
            self.dsn,
            http,
            tag,
            TELECARE_CLOCK__SPEED=str(SPEED),
            TELECARE_CLOCK__START=NIGHT.isoformat(),
            TELECARE_CLOCK__ANCHOR=repr(anchor),
            TELECARE_ENGINE__TICK_S="50",
        )
        if self.src != REPO:
            env["PYTHONPATH"] = str(self.src)
        log = self.work / "gateway.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "gateway", "run"],
                env=env,
                cwd=self.src,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_ready(self.proc, self.url, log, 90)
        self.layout = TopicLayout(f"b{tag}", f"bz{tag}")
        self.h = Handsets(self.broker.port, self.layout, scheme_id, anchor)
        self.h.log_in()

    def close(self) -> None:
        if self.h is not None:
            self.h.close()
        if self.proc is not None:
            stop(self.proc)
        self.broker.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="0,500,2000,5000")
    ap.add_argument("--presses", type=int, default=20)
    ap.add_argument("--timer-probes", type=int, default=2)
    ap.add_argument("--window", type=float, default=25.0, help="seconds of load per rate")
    ap.add_argument("--press-timeout", type=float, default=15.0)
    ap.add_argument(
        "--ref",
        help="also the gateway (and broker config) at this git revision, level by level",
    )
    args = ap.parse_args()
    rates = [int(r) for r in args.rates.split(",")]
    scheme = load_scheme(SCHEME)
    pendants = []
    for d in scheme.devices:
        if d.type is DeviceType.PENDANT and d.resident:
            r = scheme.resident(d.resident)
            if r is not None:
                pendants.append((d.device_id, r.flat))
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp, fresh_database() as dsn:
        work = Path(tmp)
        subjects = [Subject("gateway", work / "gw", dsn, REPO, "")]
        if args.ref:
            src = export(args.ref, work / "src-ref")
            # The broker as that revision shipped it: its template's lines, last one wins.
            ref_conf = (src / "deploy/mosquitto/telecare-dev.conf.in").read_text()
            nodelay = "set_tcp_nodelay true" if "\nset_tcp_nodelay true" in ref_conf else ""
            subjects.append(
                Subject(
                    f"gateway@{args.ref}",
                    work / "gw-ref",
                    dsn,
                    src,
                    nodelay or "set_tcp_nodelay false",
                )
            )
        anchor = time.time()
        try:
            for sub in subjects:
                sub.start(scheme.id, anchor)
            time.sleep(1.0)
            for rate in rates:
                # Level by level, one gateway after the other: both see the same machine.
                for sub in subjects:
                    assert sub.h is not None and sub.proc is not None and sub.layout is not None
                    r = level(
                        sub.h,
                        rate,
                        args,
                        (sub.proc.pid, sub.url),
                        sub.broker.port,
                        sub.layout.root,
                        pendants,
                    )
                    results.setdefault(sub.name, {})[str(rate)] = r
                    p = r["press_to_offer"]
                    print(
                        f"  {sub.name} {rate:>5}/s offered: sustained {r['sustained_rate']:,.0f}/s,"
                        f" press->offer p50 {p['p50_ms']:.1f} ms p99 {p['p99_ms']:.1f} ms",
                        flush=True,
                    )
                    settle(sub.url, 30)
        finally:
            for sub in subjects:
                sub.close()
    rows = []
    for name, levels in results.items():
        for rate, r in levels.items():
            p, f, t = r["press_to_offer"], r["broker_round_trip"], r["timer_lateness"]
            cpu = r["gateway_cpu_pct_of_core"]
            per_event = 1e4 * cpu / r["sustained_rate"] if r["sustained_rate"] else float("nan")
            r["cpu_us_per_event"] = per_event
            rows.append(
                [
                    name,
                    "idle" if rate == "0" else f"{int(rate):,}/s",
                    round(r["sustained_rate"]),
                    cpu,
                    per_event,
                    f["p50_ms"],
                    p["p50_ms"],
                    p["p99_ms"],
                    p["max_ms"],
                    r["presses_without_offer"],
                    t["p99_ms"],
                ]
            )
    print()
    print(
        table(
            [
                "gateway",
                "background",
                "sustained/s",
                "gw CPU %",
                "CPU us/event",
                "floor p50 ms",
                "p50 ms",
                "p99 ms",
                "max ms",
                "no offer",
                "timer late p99 ms",
            ],
            rows,
        )
    )
    body: dict[str, Any] = {
        "speed": SPEED,
        "presses": args.presses,
        "window_s": args.window,
        "levels": results["gateway"],
    }
    if args.ref:
        body["ref"] = {"rev": args.ref, "levels": results.get(f"gateway@{args.ref}", {})}
    path = write_result("alarm_latency", body)
    print(f"\nwritten {path.relative_to(REPO)}")


if __name__ == "__main__":
    main()
