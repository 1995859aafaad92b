"""Run a scenario against a gateway (spawned for the run, or an existing one) and judge it.

Order: connect to MQTT and start hub heartbeats; start the gateway (its clock anchored so the
scenario starts a few real seconds later); read the clock back from ``/api/v1/clock``; play the
schedule in scheme time while the handsets answer; drain until the gateway has no open alarm;
wait until the shipper has copied everything; compute the verdict from the database.

Every task is owned (``simulator.tasks.Owner``): a failure is counted and reported once, and a
run always ends with a verdict, including one that could not start (exit code 2: the run is
not valid). Every wait is measured against when it was due (``simulator.timekeeping``) and the
gateway's API is watched (``simulator.health``), so the verdict can tell the product's
failures from the machine's.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import random
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import psycopg

from devices.decoders import ZIGBEE_NAMESPACE
from devices.events import EventKind
from devices.scheme import Scheme, load_scheme
from devices.topics import TopicLayout
from responders.models import ShiftRole
from simulator import api_session, wire
from simulator.clock import SimClock
from simulator.gateway_proc import DEFAULT_DSN, GatewayChild, with_hub_interval
from simulator.handsets import Handset, World
from simulator.health import GatewayWatch
from simulator.outbox import CARELINE, Outbox
from simulator.scenario import Scenario
from simulator.schedule import (
    CancelVisit,
    HandsetSilent,
    Login,
    Logout,
    Planned,
    PlayRun,
    QuietHub,
    Resend,
    SendBad,
    SendCallout,
    SendEvent,
    Visit,
    build_schedule,
    hubs,
    runs_at_start,
)
from simulator.tasks import Owner
from simulator.timekeeping import SlipMeter
from simulator.verdict import (
    DbFacts,
    RunFacts,
    SentAlarm,
    SimRecord,
    callout_alarm_id,
    compute,
    event_alarm_id,
    fetch,
)
from simulator.visit_verdict import VisitFacts
from simulator.visit_verdict import fetch as fetch_visits
from simulator.visits import RunPlayer, end_of_night, load_tonight, night_of

# Real seconds the drain waits at least, whatever the speed: a few seconds of starvation at
# x400 must not end the drain before carers could finish.
DRAIN_FLOOR_REAL_S = 20.0
DRAIN_BEHIND_CAP_REAL_S = 180.0
RESEND_POLL_REAL_S = 0.25

Progress = Callable[[float, float, dict[str, int]], None]


@dataclass
class RunOptions:
    speed: float | None = None
    seed: int | None = None
    gateway_url: str | None = None  # None: spawn one for this run
    topic_root: str = "telecare"  # for an existing gateway
    zigbee_root: str = "zigbee2mqtt"
    dsn: str | None = None
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 18830
    lead_real_s: float = 4.0  # real seconds between spawning the gateway and the start
    tick_s: float | None = None
    gateway_env: dict[str, str] = field(default_factory=dict)  # extra settings for a spawned one
    # Scheme files for a spawned gateway (default: the scenario's). A gateway that lacks some
    # of the simulated devices must lose their alarms: the loss test relies on it.
    gateway_schemes: list[Path] | None = None
    # For a spawned gateway that people will look at while it runs (the demo's live night):
    # keep its journal, accounts and log under ``state_dir``, describe it in
    # ``state_dir/gateway.json`` once it is ready, and serve its API on ``http_port``.
    state_dir: Path | None = None
    http_port: int | None = None


# How long each gateway this process spawned took to answer ``/readyz`` (real seconds).
STARTUPS: list[float] = []
LEAD_CAP_REAL_S = 60.0


def cpu_share(probe_real_s: float = 0.3) -> float:
    """The share of a CPU this process gets right now: CPU time over wall time of a short busy
    loop (1.0 on a quiet machine; 0.2 beside a burner and other suites on two cores)."""
    wall0, cpu0 = time.monotonic(), time.process_time()
    while time.monotonic() - wall0 < probe_real_s:
        sum(range(1000))
    wall, cpu = time.monotonic() - wall0, time.process_time() - cpu0
    return max(0.05, min(1.0, cpu / wall)) if wall > 0 else 1.0


def start_lead(base_real_s: float) -> float:
    """Real seconds from spawning the gateway to the scenario's first scheduled action.

    The gateway's scheme clock is fixed when it is spawned; one that is not ready by the start
    makes the schedule's first stretch late, burst out at once (at x400, 18 real s late is two
    hours of the night). So the lead covers the start-up: 1.5 x the slowest of the last three
    starts this process has seen, or, for the first, the base scaled by how little CPU this
    process gets now."""
    guess = 1.5 * max(STARTUPS[-3:]) if STARTUPS else base_real_s / cpu_share()
    return min(LEAD_CAP_REAL_S, max(base_real_s, guess))


class Sim:
    def __init__(
        self,
        scn: Scenario,
        scheme: Scheme,
        layout: TopicLayout,
        clock: SimClock,
        link: wire.Link,
        seed: int,
        owner: Owner,
    ) -> None:
        self.scn, self.scheme, self.layout, self.clock = scn, scheme, layout, clock
        self.link = link
        self.owner = owner
        self.start = scn.start.replace(tzinfo=scheme.tz).astimezone(UTC)
        self.world = World(scheme, layout, clock, link, scn.carers, seed, owner=owner)
        self.rec = SimRecord()
        self.outbox = Outbox(seed)
        self.payloads: dict[str, tuple[str, bytes]] = {}
        self.plan: list[Planned] = []
        self.seq: dict[str, int] = {}
        self.quiet_until: dict[str, float] = {}
        self.beating: set[str] = set()  # hubs whose last heartbeat still awaits its PUBACK
        self.hub_period = scn.faults.hub_heartbeat_s
        self.base_url = ""
        # Tonight's planned visits, when the scenario plays a visit schedule.
        loaded = load_tonight(scn, scheme)
        self.schedule = loaded[0] if loaded else None
        self.tonight = loaded[1] if loaded else []
        self.world.partners = {
            c: tuple(o for o in cs if o != c)
            for cs in runs_at_start(scn, scheme).values()
            for c in cs
        }

    def fire(self, topic: str, payload: bytes, key: str | None = None) -> None:
        """Publish in an owned task; ``key`` is marked delivered once the broker acks it."""
        self.owner.spawn(self._publish(topic, payload, key))

    async def _publish(
        self, topic: str, payload: bytes, key: str | None, hub: str | None = None
    ) -> None:
        try:
            await self.link.publish(topic, payload)
        except wire.PublishFailed:
            self.rec.counts["publishes_given_up"] += 1  # the outbox resends kept events
            return
        finally:
            if hub is not None:
                self.beating.discard(hub)
        if key is not None:
            self.rec.acked.add(key)

    def keep_and_fire(
        self, device: str, key: str, topic: str, payload: bytes, heartbeat: bool = False
    ) -> None:
        """Send an event the device keeps until the gateway's receipt (docs/protocol.md)."""
        if heartbeat:
            if device in self.beating:
                # The broker has not taken the last one yet: a queue of heartbeats would only
                # load it more. The hub's next heartbeat says the same.
                self.rec.counts["heartbeats_skipped_broker_behind"] += 1
                return
            self.beating.add(device)
        self.outbox.keep(device, key, topic, payload, heartbeat)
        self.owner.spawn(self._publish(topic, payload, key, device if heartbeat else None))

    async def resender(self) -> None:
        """Resend every kept event whose backoff is due (same payload, same id)."""
        while True:
            await asyncio.sleep(RESEND_POLL_REAL_S)
            for p in self.outbox.due():
                self.fire(p.topic, p.payload)

    def on_receipt(self, topic: str, body: dict[str, Any]) -> bool:
        """A receipt for one of our devices or the Careline; False if ``topic`` is not one."""
        parts = topic.split("/")
        if len(parts) == 5 and parts[2] == "devices" and parts[4] == "receipts":
            self.outbox.on_receipt(parts[3], body)
            return True
        if len(parts) == 4 and parts[2] == "careline" and parts[3] == "receipts":
            self.outbox.on_receipt(CARELINE, body)
            return True
        return False

    def _next_seq(self, device_id: str) -> int:
        self.seq[device_id] = self.seq.get(device_id, 0) + 1
        return self.seq[device_id]

    # ---- background: hub heartbeats ------------------------------------------------------

    async def hub_heartbeats(self) -> None:
        period = self.hub_period
        rng = random.Random(f"{self.scn.seed}/hubs")
        now = self.clock.now().timestamp()
        heap = [(now + rng.uniform(0, period), h.device_id) for h in hubs(self.scheme)]
        heapq.heapify(heap)
        while heap:
            due, device = heapq.heappop(heap)
            await self.clock.sleep(due - self.clock.now().timestamp(), "hubs")
            if self.clock.now().timestamp() >= self.quiet_until.get(device, 0.0):
                self.send_event(device, EventKind.HEARTBEAT, _uuid4(), background=True)
            heapq.heappush(heap, (due + period * rng.uniform(0.95, 1.05), device))

    # ---- actions ----------------------------------------------------------------------------

    def send_event(
        self,
        device_id: str,
        kind: EventKind,
        event_id: str,
        *,
        zigbee: str | None = None,
        background: bool = False,
        at: datetime | None = None,
    ) -> str:
        now = self.clock.now()
        if zigbee is not None:
            # Zigbee2MQTT stamps a report with when it heard the device, and the gateway derives
            # the event id from that stamp: the scheduled time keeps the id (and so the alarm,
            # and every seeded draw keyed on it) the same at any speed, however late we are.
            now = at or now
            event_id = str(_zigbee_id(zigbee, now.isoformat(), kind))
            topic = f"{self.layout.zigbee_root}/{zigbee}"
            payload = wire.zigbee_report(kind, now)
        else:
            dev = self.scheme.device(device_id)
            topic = self.layout.device_events(self.scheme.id, device_id)
            payload = wire.device_event(
                device_id,
                kind,
                event_id,
                now,
                self._next_seq(device_id),
                dev.location if dev else None,
            )
        if not background:
            self.payloads[event_id] = (topic, payload)
            self.rec.event_ids.add(event_id)
        self.rec.counts["events_sent"] += 1
        if zigbee is not None:
            self.fire(topic, payload, event_id)  # Zigbee2MQTT has no receipts to wait for
        else:
            self.keep_and_fire(device_id, event_id, topic, payload, heartbeat=background)
        return event_id

    async def perform(self, p: Planned) -> None:
        a = p.action
        w = self.world
        if isinstance(a, Login):
            if a.carer in w.handsets and w.handsets[a.carer].logged_in:
                return
            shift = next(
                (s for s in self.scheme.shifts_at(self.clock.now()) if s.carer == a.carer), None
            )
            h = Handset(w, a.carer, shift.zone if shift else None)
            w.handsets[a.carer] = h
            # Not awaited here: a login waits for its PUBACK, and a broker that is slow to
            # acknowledge must not hold up the rest of the schedule (that would be counted as
            # the simulator's own clock slip). The message is queued in order all the same.
            w.spawn(self._login(h))
        elif isinstance(a, Logout):
            if a.carer in w.handsets:
                w.spawn(w.handsets[a.carer].logout(finish_first=True))
        elif isinstance(a, SendEvent):
            at = self.start + timedelta(seconds=p.at_s)
            eid = self.send_event(a.device_id, a.kind, a.event_id, zigbee=a.zigbee, at=at)
            if a.alarm:
                self.rec.alarms.append(
                    SentAlarm(
                        eid,
                        event_alarm_id(self.scheme.id, a.device_id, eid),
                        a.resident,
                        a.kind.value,
                        self.clock.now(),
                    )
                )
        elif isinstance(a, SendCallout):
            body = wire.callout(
                a.callout_id,
                a.resident_ref,
                a.priority,
                a.reason,
                self.clock.now(),
                self.scn.careline.operator,
            )
            self.keep_and_fire(CARELINE, a.callout_id, self.layout.callouts(self.scheme.id), body)
            self.rec.alarms.append(
                SentAlarm(
                    a.callout_id,
                    callout_alarm_id(self.scheme.id, a.callout_id),
                    a.resident_ref,
                    "callout",
                    self.clock.now(),
                    True,
                )
            )
        elif isinstance(a, Resend):
            if a.event_id in self.payloads:
                self.fire(*self.payloads[a.event_id])
                self.rec.resent += 1
        elif isinstance(a, SendBad):
            self.fire(
                *wire.bad_message(a.reason, a.token, self.scheme, self.layout, self.clock.now())
            )
            self.rec.bad[a.reason] += 1
        elif isinstance(a, QuietHub):
            self.quiet_until[a.device_id] = self.clock.now().timestamp() + a.for_s
            self.rec.counts[f"hub_quiet:{a.why}"] += 1
        elif isinstance(a, HandsetSilent):
            if a.carer in w.handsets:
                w.handsets[a.carer].go_silent(a.for_s)
        elif isinstance(a, Visit):
            w.spawn(self._visit(a))
        elif isinstance(a, PlayRun):
            cancelled = {p.action.visit_id for p in self.plan if isinstance(p.action, CancelVisit)}
            player = RunPlayer(
                w,
                a.run,
                a.carers,
                [v for v in self.tonight if v.run == a.run],
                self.scn.carers.planned_visits,
                end_of_night(self.scn, self.scheme),
                cancelled,
            )
            w.spawn(player.play())
        elif isinstance(a, CancelVisit):
            w.spawn(self._cancel_visit(a))

    async def _cancel_visit(self, a: CancelVisit) -> None:
        """The control room cancels a visit through the API (the person or the Council)."""
        url = f"{self.base_url}/api/v1/visits/{self.scheme.id}/{a.visit_id}/cancel"
        body = {"by": a.by, "reason": f"cancelled by the {a.by} (simulated)"}
        try:
            async with httpx.AsyncClient(timeout=10, headers=api_session.HEADERS) as http:
                r = await http.post(url, json=body)
        except httpx.HTTPError:
            self.rec.counts["visit_cancels_failed"] += 1
            return
        self.rec.counts[f"visit_cancel_http_{r.status_code}"] += 1

    async def _login(self, h: Handset) -> None:
        try:
            await h.login()
        except wire.PublishFailed:
            self.rec.counts["actions_not_played"] += 1

    async def _visit(self, v: Visit) -> None:
        """A run's planned visit: when both are free (late if that is 30 min after plan)."""
        w = self.world
        planned = self.clock.now()
        while True:
            team = [w.handsets[c] for c in v.carers if c in w.handsets]
            if not team or not all(h.logged_in for h in team):
                self.rec.counts["visits_missed"] += 1
                return
            if all(h.busy is None for h in team):
                break
            await self.clock.sleep(60, "visits")
        if (self.clock.now() - planned).total_seconds() > 1800:
            self.rec.counts["visits_late"] += 1
        for i, h in enumerate(team):
            w.spawn(h.visit(v.flat_id, v.duration_s, lead=i == 0))

    async def flush_marker(self) -> str:
        """Publish one last heartbeat after everything else and return its event id: once the
        gateway has recorded it (or dead-lettered it), the broker has handed over everything
        this client published before it."""
        dev = (hubs(self.scheme) or [d for d in self.scheme.devices if not d.zigbee_friendly_name])[
            0
        ]
        eid = _uuid4()
        payload = wire.device_event(
            dev.device_id,
            EventKind.HEARTBEAT,
            eid,
            self.clock.now(),
            self._next_seq(dev.device_id),
            dev.location,
        )
        await self.link.publish(
            self.layout.device_events(self.scheme.id, dev.device_id), payload, attempts=3
        )
        return eid

    def live_counts(self) -> dict[str, int]:
        c = self.world.counts
        return {
            "raised": len(self.rec.alarms),
            "offers": c["offers"],
            "accepted": c["accepted"],
            "arrived": c["arrived"],
            "resolved": c["resolved"],
            "dup": len(self.world.duplicates),
        }

    async def play(self, plan: list[Planned], base_url: str, progress: Progress | None) -> None:
        total = self.scn.duration_s
        self.base_url, self.plan = base_url, plan

        async def ticker() -> None:
            while True:
                el = (self.clock.now() - self.start).total_seconds()
                if progress:
                    progress(min(max(el, 0), total), total, self.live_counts())
                await asyncio.sleep(0.25)

        tick = self.owner.spawn(ticker(), name="progress")
        try:
            for p in plan:
                await self.clock.sleep_until(self.start + timedelta(seconds=p.at_s), "schedule")
                try:
                    await self.perform(p)
                except wire.PublishFailed:
                    self.rec.counts["actions_not_played"] += 1
            await self.clock.sleep_until(self.start + timedelta(seconds=total), "schedule")
            await self.drain(base_url)
        finally:
            tick.cancel()

    async def drain(self, base_url: str) -> None:
        """Until the gateway holds no open alarm and every handset is idle, *as the engine
        sees everything sent so far*: a handset heartbeat stamped T is the barrier; once the
        carer's ``handset_seen`` in ``/api/v1/carers`` reaches T, the engine has processed
        everything published before it (one client, in order), so an empty open-alarm list
        read after that is not just an engine that is behind.

        At most ``drain_s`` scheme seconds, extended by every scheme second the simulator lost
        to stalls in the run, never less than ``DRAIN_FLOOR_REAL_S`` real seconds. Past that,
        it still waits while the engine is behind its barrier or a simulated carer is still
        at work, up to ``DRAIN_BEHIND_CAP_REAL_S`` more (then the run is reported as left
        behind: the machine's, not the product's). An alarm still open when nobody is working
        on it and the engine is caught up is the product's."""
        meter = self.clock.meter
        began = self.clock.now()
        began_real = time.monotonic()
        barrier: tuple[str, datetime] | None = None
        seen = False
        busy: list[Handset] = []
        late_since: float | None = None  # real time the scheme-time limit passed
        idle_since: float | None = None  # real time nobody was working, as the engine saw it
        # Long enough for the gateway to re-offer an escalated alarm twice (it repeats every
        # 120 scheme s by default): an open alarm nobody holds for that long is not a lull.
        idle_enough = max(2.0, 240.0 / self.clock.speed)
        async with httpx.AsyncClient(timeout=10, headers=api_session.HEADERS) as http:
            while True:
                real = time.monotonic()
                # The machine's debt: every stalled scheme second of the run so far.
                stalled = meter.stalls.measure() if meter else 0.0
                over = (self.clock.now() - began).total_seconds() > self.scn.drain_s + stalled
                plain = self.scn.drain_s / self.clock.speed + DRAIN_FLOOR_REAL_S
                if (over or real - began_real > plain) and real - began_real > DRAIN_FLOOR_REAL_S:
                    late_since = late_since or real
                    if idle_since is not None and real - idle_since > idle_enough:
                        break  # nobody working, the engine caught up, for a while: judge it
                    if real - late_since > DRAIN_BEHIND_CAP_REAL_S:
                        break
                if barrier is None and not seen:
                    # Once is enough: no alarm is raised after the schedule, so an engine that
                    # has processed this barrier has seen every alarm there will be.
                    barrier = await self._barrier()
                try:
                    open_alarms = (await http.get(f"{base_url}/api/v1/alarms")).json()
                    carers = (await http.get(f"{base_url}/api/v1/carers")).json()
                except (httpx.HTTPError, ValueError):
                    self.rec.counts["drain_api_errors"] += 1
                    await asyncio.sleep(0.5)
                    continue
                if not seen:
                    seen = _seen(carers, *barrier) if barrier else not self._can_barrier()
                busy = [h for h in self.world.handsets.values() if h.working()]
                if seen and not open_alarms and not busy:
                    return
                if seen and not busy:
                    idle_since = idle_since or time.monotonic()
                else:
                    idle_since = None
                await asyncio.sleep(0.25)
        self.rec.counts["drain_timed_out"] += 1
        if not seen or busy:
            # The engine or the simulated carers were still at work: the machine's slowness.
            self.rec.counts["drain_engine_behind" if not seen else "drain_carers_behind"] += 1

    def _can_barrier(self) -> bool:
        return any(h.logged_in and not h.silent() for h in self.world.handsets.values())

    async def _barrier(self) -> tuple[str, datetime] | None:
        """Send a heartbeat from a logged-in handset; (carer, when) or None if there is none."""
        for h in self.world.handsets.values():
            if h.logged_in and not h.silent():
                at = self.clock.now()
                try:
                    await h.beat()
                except wire.PublishFailed:
                    return None
                return h.id, at
        return None


def _seen(carers: Any, carer: str, at: datetime) -> bool:
    """Has the engine processed ``carer``'s heartbeat sent at ``at``?"""
    for c in carers if isinstance(carers, list) else []:
        if isinstance(c, dict) and c.get("carer_id") == carer and c.get("handset_seen"):
            return datetime.fromisoformat(str(c["handset_seen"])) >= at - timedelta(seconds=1)
    return False


def _uuid4() -> str:
    return str(uuid.uuid4())


def _zigbee_id(name: str, last_seen: str, kind: EventKind) -> uuid.UUID:
    """The event id the gateway derives from a Zigbee2MQTT report with ``last_seen``."""
    return uuid.uuid5(ZIGBEE_NAMESPACE, f"{name}|{last_seen}|{kind}")


async def _progress(
    dsn: str, gateway_id: str, ids: list[str], callouts: list[str], until: datetime, marker: str
) -> tuple[Any, ...] | None:
    """(events, call-outs, dead letters, engine rows, marker seen) for this run, now."""
    async with await psycopg.AsyncConnection.connect(dsn, connect_timeout=5) as conn:
        cur = await conn.execute(
            "SELECT (SELECT count(DISTINCT event_id) FROM device_events"
            "  WHERE gateway_id = %s AND event_id = ANY(%s::uuid[])),"
            " (SELECT count(DISTINCT callout_id) FROM careline_callouts"
            "  WHERE gateway_id = %s AND callout_id = ANY(%s)),"
            " (SELECT count(*) FROM dead_letters WHERE gateway_id = %s),"
            " (SELECT count(*) FROM alarm_events WHERE gateway_id = %s AND at <= %s)"
            " + (SELECT count(*) FROM notifications WHERE gateway_id = %s AND at <= %s),"
            " (SELECT count(*) FROM device_events WHERE gateway_id = %s"
            "  AND event_id = %s::uuid)"
            " + (SELECT count(*) FROM dead_letters WHERE gateway_id = %s"
            "  AND position(%s::bytea IN payload) > 0)",
            (gateway_id, ids, gateway_id, callouts, gateway_id)
            + (gateway_id, until) * 2
            + (gateway_id, marker, gateway_id, marker.encode()),
        )
        return await cur.fetchone()


async def _shipping(
    http: httpx.AsyncClient, base_url: str
) -> tuple[dict[str, int], dict[str, int]]:
    """Journal heads and shipped sequences per stream: from ``/readyz`` (every stream, the
    engine's log included) where the gateway reports them, else ``/api/v1/ingest``."""
    ready = (await http.get(f"{base_url}/readyz")).json()
    streams = ready.get("shipping") if isinstance(ready, dict) else None
    if streams:
        heads = {k: int(v["head"]) for k, v in streams.items()}
        return heads, {k: int(v["shipped"]) for k, v in streams.items()}
    s = (await http.get(f"{base_url}/api/v1/ingest")).json()
    return dict(s["journal_head"]), dict(s["shipped"])


async def _wait_recorded(
    base_url: str,
    dsn: str,
    gateway_id: str,
    until: datetime,
    rec: SimRecord,
    marker: str,
    limit_s: float = 300.0,
    quiet_s: float = 15.0,
) -> str | None:
    """Until the database holds everything the simulator sent (events, call-outs, dead
    letters), the shipper has copied the journal as it stood at the end, and the engine's rows
    have stopped growing. First the ``marker`` event (published last) must be recorded: then
    the broker has delivered everything before it. If something stays missing while nothing
    moves for ``quiet_s`` real seconds after that, it is missing: the verdict judges that.
    Returns why it stopped waiting early, if it did (too far behind after ``limit_s``)."""
    ids = sorted({a.key for a in rec.alarms if not a.callout} | rec.event_ids)
    callouts = sorted({a.key for a in rec.alarms if a.callout})
    bad_sent = sum(rec.bad.values())
    deadline = time.monotonic() + limit_s
    targets: dict[str, int] | None = None
    last: tuple[int, ...] | None = None
    last_change = time.monotonic()
    stable = 0
    async with httpx.AsyncClient(timeout=10, headers=api_session.HEADERS) as http:
        while time.monotonic() < deadline:
            try:
                heads, shipped = await _shipping(http, base_url)
            except (httpx.HTTPError, ValueError, KeyError):
                await asyncio.sleep(0.5)
                continue
            targets = targets or heads  # what the journal held when the run ended
            caught_up = all(shipped.get(k, 0) >= v for k, v in targets.items())
            try:
                row = await _progress(dsn, gateway_id, ids, callouts, until, marker)
            except psycopg.OperationalError:
                await asyncio.sleep(1.0)  # the database away for a moment: wait on it
                continue
            got = tuple(int(x) for x in row) if row else (0, 0, 0, 0, 0)
            # Dead letters count up to what was sent: beyond that they may be a stranger's
            # heartbeats (a device the gateway does not know), which never stop coming.
            now, flushed = (got[0], got[1], min(got[2], bad_sent), got[3]), got[4] > 0
            caught_up = caught_up and flushed
            missing = (len(ids) - now[0]) + (len(callouts) - now[1]) + max(0, bad_sent - now[2])
            if now != last:
                last, last_change, stable = now, time.monotonic(), 0
            else:
                stable += 1
            if caught_up and missing == 0 and stable >= 3:
                return None
            if caught_up and time.monotonic() - last_change > quiet_s:
                return None  # what is still missing is not coming
            await asyncio.sleep(0.4)
    return f"the gateway had not recorded everything {limit_s:.0f} s after the run ended"


async def _fetch_retrying(
    dsn: str, gateway_id: str, rec: SimRecord, until: datetime, attempts: int = 10
) -> DbFacts:
    """``verdict.fetch``, waiting out a database that is away for a moment."""
    for attempt in range(attempts):
        try:
            return await asyncio.to_thread(fetch, dsn, gateway_id, rec, until)
        except psycopg.OperationalError:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(2.0)
    raise AssertionError("unreachable")


class RunInvalid(Exception):
    """The run could not test the product (set-up failed, the machine did not deliver)."""


def not_valid(scn: Scenario, why: str, started: float, log: str = "") -> dict[str, Any]:
    """The verdict of a run that could not be judged: exit code 2, with the reason."""
    return {
        "scenario": scn.name,
        "seed": scn.seed,
        "speed": scn.speed,
        "outcome": "run not valid",
        "exit_code": 2,
        "passed": False,
        "checks": [],
        "product_checks": [],
        "timing_checks": [],
        "run": {"problems": [why], "summary": why},
        "gateway_log_tail": log[-2000:],
        "real_seconds": round(time.monotonic() - started, 1),
    }


async def run_async(
    scn: Scenario, opts: RunOptions, progress: Progress | None = None
) -> dict[str, Any]:
    """Play ``scn`` and judge it. Always returns a verdict (``exit_code`` 0, 1 or 2)."""
    seed = scn.seed if opts.seed is None else opts.seed
    speed = opts.speed or scn.speed
    scn = scn.model_copy(update={"seed": seed, "speed": speed})
    started = time.monotonic()
    child: list[GatewayChild] = []
    try:
        return await _play_and_judge(scn, opts, progress, started, child)
    except (RunInvalid, OSError, aiomqtt.MqttError, httpx.HTTPError, psycopg.Error) as exc:
        why = str(exc) if isinstance(exc, RunInvalid) else f"{type(exc).__name__}: {exc}"
        return not_valid(scn, why, started, child[0].log() if child else "")


async def _play_and_judge(
    scn: Scenario,
    opts: RunOptions,
    progress: Progress | None,
    started: float,
    child_out: list[GatewayChild],
) -> dict[str, Any]:
    scheme = load_scheme(scn.scheme_path())
    seed, speed = scn.seed, scn.speed
    plan = build_schedule(scn, scheme, seed)
    start_utc = scn.start.replace(tzinfo=scheme.tz).astimezone(UTC)
    dsn = opts.dsn or DEFAULT_DSN
    child: GatewayChild | None = None
    lead: float | None = None
    hub_period = scn.faults.hub_heartbeat_s
    if opts.gateway_url is None:
        lead = start_lead(opts.lead_real_s)
        anchor = time.time() + lead
        schemes = list(opts.gateway_schemes or [scn.scheme_path()])
        if scn.faults.hub_expected_s is not None:
            out = Path(tempfile.mkdtemp(prefix="telecare-sim-schemes-"))
            schemes = with_hub_interval(schemes, scn.faults.hub_expected_s, out)
        child = GatewayChild(
            schemes,
            speed,
            start_utc,
            anchor,
            dsn,
            opts.mqtt_host,
            opts.mqtt_port,
            opts.tick_s or max(5.0, speed / 20),
            extra_env=dict(opts.gateway_env),
            state_dir=opts.state_dir,
            http_port=opts.http_port,
        )
        child_out.append(child)
        layout = TopicLayout(child.topic_root, child.zigbee_root)
        clock = SimClock(speed, anchor, start_utc)
        base_url, gateway_id = child.url, child.gateway_id
    else:
        base_url = opts.gateway_url.rstrip("/")
        layout = TopicLayout(opts.topic_root, opts.zigbee_root)
        await asyncio.to_thread(api_session.sign_in, base_url)
        clock = await asyncio.to_thread(SimClock.fetch, base_url, api_session.HEADERS)
        async with httpx.AsyncClient(timeout=5, headers=api_session.HEADERS) as http:
            gateway_id = (await http.get(f"{base_url}/api/v1/ingest")).json()["gateway_id"]
        speed = clock.speed
        if scn.faults.hub_expected_s is not None:
            # That gateway keeps its own scheme file: beat well inside what it expects.
            expected = min((h.expected_heartbeat_s for h in hubs(scheme)), default=60)
            hub_period = min(hub_period, expected * 2 / 3)
    meter = SlipMeter(clock.speed, clock.anchor_real, clock.anchor_scheme.timestamp())
    clock = clock.with_meter(meter)
    filters = [
        layout.carer(scheme.id, "+", "dispatch"),
        layout.control_alerts(scheme.id),
        layout.device_receipts(scheme.id, "+"),
        layout.careline_receipts(scheme.id),
    ]
    sim_holder: list[Sim] = []

    async def handler(topic: str, body: dict[str, Any]) -> None:
        if sim_holder and not sim_holder[0].on_receipt(topic, body):
            await sim_holder[0].world.on_message(topic, body)

    # Three owners: background loops (until the verdict), the carers' world (until the
    # drain ends), and publishes (awaited before judging).
    background, world, sends = Owner(), Owner(), Owner()
    watch = GatewayWatch(base_url)
    drain_timed_out = False
    try:
        async with wire.Link(
            opts.mqtt_host, opts.mqtt_port, filters, handler, on_error=background.record
        ) as link:
            sim = Sim(scn, scheme, layout, clock, link, seed, sends)
            sim.hub_period = hub_period
            sim.world.owner = world
            sim_holder.append(sim)
            background.spawn(meter.probe(), name="slip-probe")
            background.spawn(sim.hub_heartbeats(), name="hub-heartbeats")
            background.spawn(sim.resender(), name="resender")
            if child is not None:
                try:
                    began = time.monotonic()
                    await asyncio.to_thread(child.start)
                    STARTUPS.append(time.monotonic() - began)
                except RuntimeError as exc:
                    raise RunInvalid(f"the gateway did not start: {exc}") from None
                await asyncio.to_thread(api_session.sign_in, base_url, child.credentials_file)
                if opts.state_dir is not None:
                    (opts.state_dir / "gateway.json").write_text(
                        json.dumps(child.describe(), indent=2) + "\n"
                    )
                shared = await asyncio.to_thread(SimClock.fetch, base_url, api_session.HEADERS)
                drift = abs((shared.now() - clock.now()).total_seconds())
                if drift > speed * 0.05:
                    raise RunInvalid(f"gateway clock differs from the run's by {drift:.1f} s")
            background.spawn(watch.run(), name="gateway-watch")
            await sim.play(plan, base_url, progress)
            sim_end = clock.now()
            drain_timed_out = bool(sim.rec.counts.get("drain_timed_out"))
            for h in sim.world.handsets.values():
                h.end_job()
                try:
                    await h.logout()
                except wire.PublishFailed:
                    sim.rec.counts["logouts_not_sent"] += 1
            await world.close()
            # Publishes still in flight finish (or give up) before the database is read.
            if sends.tasks:
                await asyncio.wait(list(sends.tasks), timeout=2 * wire.PUBLISH_TIMEOUT_S)
            try:
                marker = await sim.flush_marker()
            except wire.PublishFailed as exc:
                raise RunInvalid(f"the broker did not take the run's last message: {exc}") from None
            # Hubs keep calling in until the verdict is taken, so the gateway stays quiet.
            behind = await _wait_recorded(base_url, dsn, gateway_id, sim_end, sim.rec, marker)
            for key, who in (
                ("drain_engine_behind", "the gateway's engine was"),
                ("drain_carers_behind", "the simulated carers were"),
            ):
                if sim.rec.counts.get(key):
                    behind = (
                        f"{who} still behind when the drain ended"
                        f" ({DRAIN_BEHIND_CAP_REAL_S:.0f} real s after its scheme-time limit)"
                    )
            sim.rec.duplicates = sim.world.duplicates
            sim.rec.counts.update(sim.world.counts)
            sim.rec.counts["mqtt_published"] = link.published
            db = await _fetch_retrying(dsn, gateway_id, sim.rec, sim_end)
            visit_facts = None
            if sim.schedule is not None and scn.expect.visits is not None:
                visit_facts = await asyncio.to_thread(
                    fetch_visits,
                    dsn,
                    gateway_id,
                    VisitFacts(
                        night_of(scn.start),
                        sim.tonight,
                        sim.schedule.late_alert_min,
                        sim.schedule.contact_min,
                        end_of_night(scn, scheme),
                        scn.expect.visits,
                        start_utc + timedelta(seconds=scn.duration_s),
                    ),
                    sim_end,
                )
            publish = {
                "published": link.published,
                "timed_out_and_retried": link.timeouts,
                "given_up": link.failed,
                "handler_errors": link.handler_errors,
            }
            await background.close()
            await sends.close()
    finally:
        await background.close()
        await world.close()
        await sends.close()
        if child is not None:
            await asyncio.to_thread(child.stop)
            if opts.state_dir is not None:
                (opts.state_dir / "gateway.json").unlink(missing_ok=True)
    failures = [*background.summary(), *world.summary(), *sends.summary()]
    sim.rec.errors = failures
    sleep_in = frozenset(
        s.carer
        for s in scheme.shifts_at(start_utc + timedelta(seconds=1))
        if s.role is ShiftRole.SLEEP_IN
    )
    facts = RunFacts(
        speed=speed,
        slip=meter.summary(),
        stalls=meter.stalls,
        api=watch.summary(),
        receipts=sim.outbox.summary(),
        publish=publish,
        task_failures=failures,
        drain_timed_out=drain_timed_out,
        behind=behind,
        jobs=sim.world.jobs,
    )
    verdict = compute(
        sim.rec, db, scheme, scn.expect, sleep_in, facts, sim_end, scn.drain_s, visit_facts
    )
    verdict.update(
        {
            "scenario": scn.name,
            "scheme": scheme.id,
            "seed": seed,
            "speed": speed,
            "gateway_id": gateway_id,
            "scheme_seconds": round((sim_end - start_utc).total_seconds()),
            "real_seconds": round(time.monotonic() - started, 1),
            "scheduled_actions": len(plan),
            "gateway_lead_real_s": None if lead is None else round(lead, 1),
            "gateway_start_real_s": round(STARTUPS[-1], 1) if child and STARTUPS else None,
        }
    )
    return verdict


class RunStopped(Exception):
    """The run was stopped (SIGTERM) before its verdict; the gateway it spawned is stopped."""


async def _stoppable(scn: Scenario, opts: RunOptions, progress: Progress | None) -> dict[str, Any]:
    """``run_async``, cancelled by SIGTERM (``make stop``): its ``finally`` blocks then stop the
    gateway it spawned. SIGINT is left alone: asyncio.run turns it into KeyboardInterrupt, and a
    run started in the background by a script ignores it, as it should (Ctrl-C at the demo's
    prompt must not end the live night)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    handled = False
    if task is not None:
        try:
            loop.add_signal_handler(signal.SIGTERM, task.cancel)
            handled = True
        except (NotImplementedError, RuntimeError, ValueError):
            pass  # not the main thread, or no signals here: nothing to stop us but the end
    try:
        return await run_async(scn, opts, progress)
    except asyncio.CancelledError:
        raise RunStopped("stopped by SIGTERM before the verdict") from None
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGTERM)


def run(scn: Scenario, opts: RunOptions, progress: Progress | None = None) -> dict[str, Any]:
    return asyncio.run(_stoppable(scn, opts, progress))


def run_with_rerun(
    scn: Scenario, opts: RunOptions, progress: Progress | None = None, slower: float = 0.5
) -> dict[str, Any]:
    """Run; if the run was not valid because the machine starved it (timing not judged,
    messages not delivered, the gateway left behind), run once more at ``slower`` times the
    speed. Any other invalid run (the gateway did not start) is returned as it is. The second
    verdict stands, with the first one's reasons attached; if it is still starved,
    ``machine_message`` says so in words about the machine."""
    first = run(scn, opts, progress)
    if first["exit_code"] != 2 or not first["run"].get("starved"):
        return first
    speed = float(first.get("speed") or opts.speed or scn.speed) * slower
    second = run(scn, replace(opts, speed=speed), progress)
    second["first_attempt"] = {
        "speed": first.get("speed"),
        "problems": first["run"]["problems"],
        "real_seconds": first.get("real_seconds"),
    }
    if second["exit_code"] == 2 and second["run"].get("starved"):
        second["machine_message"] = (
            f"The machine could not keep time for {scn.name}: at x{first.get('speed')} and again"
            f" at x{speed:g} the run was not valid ({'; '.join(second['run']['problems'])})."
            " This says nothing about the product: free the CPU or run at a lower --speed."
        )
    return second


def product_signature(v: dict[str, Any]) -> dict[str, Any]:
    """What must be identical between runs of one scenario and seed at any speed: the
    product's invariant checks and what was raised and recorded."""
    return {
        "alarms_raised": v.get("alarms_raised"),
        "alarms_known": v.get("alarms_known"),
        "checks": {c["check"]: [c["status"], c["got"]] for c in v.get("product_checks", [])},
    }
