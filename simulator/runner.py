"""Run a scenario against a gateway (spawned for the run, or an existing one) and judge it.

Order: connect to MQTT and start hub heartbeats; start the gateway (its clock anchored so the
scenario starts a few real seconds later); read the clock back from ``/api/v1/clock``; play the
schedule in scheme time while the handsets answer; drain until the gateway has no open alarm;
wait until the shipper has copied everything; compute the verdict from the database.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devices.decoders import ZIGBEE_NAMESPACE
from devices.events import EventKind
from devices.scheme import Scheme, load_scheme
from devices.topics import TopicLayout
from responders.models import ShiftRole
from simulator import wire
from simulator.api_session import api_headers
from simulator.clock import SimClock
from simulator.gateway_proc import DEFAULT_DSN, GatewayChild
from simulator.handsets import Handset, World
from simulator.scenario import Scenario
from simulator.schedule import (
    HandsetSilent,
    Login,
    Logout,
    Planned,
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
from simulator.verdict import (
    SentAlarm,
    SimRecord,
    callout_alarm_id,
    compute,
    event_alarm_id,
    fetch,
)

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


class Sim:
    def __init__(
        self,
        scn: Scenario,
        scheme: Scheme,
        layout: TopicLayout,
        clock: SimClock,
        link: wire.Link,
        seed: int,
    ) -> None:
        self.scn, self.scheme, self.layout, self.clock = scn, scheme, layout, clock
        self.link = link
        self.start = scn.start.replace(tzinfo=scheme.tz).astimezone(UTC)
        self.world = World(scheme, layout, clock, link, scn.carers, seed)
        self.rec = SimRecord()
        self.payloads: dict[str, tuple[str, bytes]] = {}
        self.seq: dict[str, int] = {}
        self.quiet_until: dict[str, float] = {}
        self.pending: set[asyncio.Task[Any]] = set()
        self.world.partners = {
            c: tuple(o for o in cs if o != c)
            for cs in runs_at_start(scn, scheme).values()
            for c in cs
        }

    def fire(self, topic: str, payload: bytes) -> None:
        t = asyncio.create_task(self.link.publish(topic, payload))
        self.pending.add(t)
        t.add_done_callback(self.pending.discard)

    def _next_seq(self, device_id: str) -> int:
        self.seq[device_id] = self.seq.get(device_id, 0) + 1
        return self.seq[device_id]

    # ---- background: hub heartbeats ------------------------------------------------------

    async def hub_heartbeats(self) -> None:
        period = self.scn.faults.hub_heartbeat_s
        rng = random.Random(f"{self.scn.seed}/hubs")
        now = self.clock.now().timestamp()
        heap = [(now + rng.uniform(0, period), h.device_id) for h in hubs(self.scheme)]
        heapq.heapify(heap)
        while heap:
            due, device = heapq.heappop(heap)
            await self.clock.sleep(due - self.clock.now().timestamp())
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
    ) -> str:
        now = self.clock.now()
        if zigbee is not None:
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
        self.fire(topic, payload)
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
            await h.login()
        elif isinstance(a, Logout):
            if a.carer in w.handsets:
                w.spawn(w.handsets[a.carer].logout(finish_first=True))
        elif isinstance(a, SendEvent):
            eid = self.send_event(a.device_id, a.kind, a.event_id, zigbee=a.zigbee)
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
            self.fire(self.layout.callouts(self.scheme.id), body)
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
            await self.clock.sleep(60)
        if (self.clock.now() - planned).total_seconds() > 1800:
            self.rec.counts["visits_late"] += 1
        for i, h in enumerate(team):
            w.spawn(h.visit(v.flat_id, v.duration_s, lead=i == 0))

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

    async def play(
        self,
        plan: list[Planned],
        base_url: str,
        progress: Progress | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        total = self.scn.duration_s

        async def ticker() -> None:
            while True:
                el = (self.clock.now() - self.start).total_seconds()
                if progress:
                    progress(min(max(el, 0), total), total, self.live_counts())
                await asyncio.sleep(0.25)

        tick = asyncio.create_task(ticker())
        try:
            for p in plan:
                await self.clock.sleep_until(self.start + timedelta(seconds=p.at_s))
                await self.perform(p)
            await self.clock.sleep_until(self.start + timedelta(seconds=total))
            await self.drain(base_url, headers)
        finally:
            tick.cancel()

    async def drain(self, base_url: str, headers: dict[str, str] | None = None) -> None:
        """Until the gateway holds no open alarm and every handset is idle (or ``drain_s``)."""
        end = self.clock.now() + timedelta(seconds=self.scn.drain_s)
        async with httpx.AsyncClient(timeout=5, headers=headers) as http:
            while self.clock.now() < end:
                open_alarms = (await http.get(f"{base_url}/api/v1/alarms")).json()
                busy = [h for h in self.world.handsets.values() if h.busy not in (None, "visit")]
                if not open_alarms and not busy:
                    return
                await asyncio.sleep(0.25)
        self.rec.counts["drain_timed_out"] += 1


def _uuid4() -> str:
    return str(uuid.uuid4())


def _zigbee_id(name: str, last_seen: str, kind: EventKind) -> uuid.UUID:
    """The event id the gateway derives from a Zigbee2MQTT report with ``last_seen``."""
    return uuid.uuid5(ZIGBEE_NAMESPACE, f"{name}|{last_seen}|{kind}")


async def _wait_shipped(
    base_url: str,
    dsn: str,
    gateway_id: str,
    until: datetime,
    limit_s: float = 60,
    headers: dict[str, str] | None = None,
) -> None:
    """Until the shipper has copied every journal record and dead letter, and the engine log
    rows in the database have stopped growing."""
    import psycopg

    deadline = time.monotonic() + limit_s
    last = -1
    stable = 0
    targets: dict[str, int] | None = None
    async with httpx.AsyncClient(timeout=5, headers=headers) as http:
        while time.monotonic() < deadline:
            s = (await http.get(f"{base_url}/api/v1/ingest")).json()
            targets = targets or s["journal_head"]  # what had arrived when the run ended
            caught_up = all(s["shipped"].get(k, 0) >= v for k, v in targets.items())
            async with await psycopg.AsyncConnection.connect(dsn) as conn:
                cur = await conn.execute(
                    "SELECT (SELECT count(*) FROM alarm_events WHERE gateway_id = %s AND at <= %s)"
                    " + (SELECT count(*) FROM notifications WHERE gateway_id = %s AND at <= %s)",
                    (gateway_id, until, gateway_id, until),
                )
                row = await cur.fetchone()
            n = int(row[0]) if row else 0
            stable = stable + 1 if (caught_up and n == last) else 0
            last = n
            if stable >= 3:
                return
            await asyncio.sleep(0.4)


async def run_async(
    scn: Scenario, opts: RunOptions, progress: Progress | None = None
) -> dict[str, Any]:
    scheme = load_scheme(scn.scheme_path())
    seed = scn.seed if opts.seed is None else opts.seed
    speed = opts.speed or scn.speed
    scn = scn.model_copy(update={"seed": seed, "speed": speed})
    plan = build_schedule(scn, scheme, seed)
    start_utc = scn.start.replace(tzinfo=scheme.tz).astimezone(UTC)
    dsn = opts.dsn or DEFAULT_DSN
    child: GatewayChild | None = None
    headers: dict[str, str] | None = None
    started = time.monotonic()
    if opts.gateway_url is None:
        anchor = time.time() + opts.lead_real_s
        child = GatewayChild(
            [scn.scheme_path()],
            speed,
            start_utc,
            anchor,
            dsn,
            opts.mqtt_host,
            opts.mqtt_port,
            opts.tick_s or max(5.0, speed / 20),
        )
        layout = TopicLayout(child.topic_root, child.zigbee_root)
        clock = SimClock(speed, anchor, start_utc)
        base_url, gateway_id = child.url, child.gateway_id
    else:
        base_url = opts.gateway_url.rstrip("/")
        layout = TopicLayout(opts.topic_root, opts.zigbee_root)
        headers = await asyncio.to_thread(api_headers, base_url)
        clock = await asyncio.to_thread(SimClock.fetch, base_url, headers)
        async with httpx.AsyncClient(timeout=5, headers=headers) as http:
            gateway_id = (await http.get(f"{base_url}/api/v1/ingest")).json()["gateway_id"]
    filters = [layout.carer(scheme.id, "+", "dispatch"), layout.control_alerts(scheme.id)]
    sim_holder: list[Sim] = []

    async def handler(topic: str, body: dict[str, Any]) -> None:
        if sim_holder:
            await sim_holder[0].world.on_message(topic, body)

    try:
        async with wire.Link(opts.mqtt_host, opts.mqtt_port, filters, handler) as link:
            sim = Sim(scn, scheme, layout, clock, link, seed)
            sim_holder.append(sim)
            beats = asyncio.create_task(sim.hub_heartbeats())
            if child is not None:
                await asyncio.to_thread(child.start)
                headers = await asyncio.to_thread(api_headers, base_url, child.credentials_file)
                shared = await asyncio.to_thread(SimClock.fetch, base_url, headers)
                drift = abs((shared.now() - clock.now()).total_seconds())
                if drift > speed * 0.05:
                    raise RuntimeError(f"gateway clock differs from the run's by {drift:.1f} s")
                clock = shared
            try:
                await sim.play(plan, base_url, progress, headers)
                sim_end = clock.now()
                for h in sim.world.handsets.values():
                    await h.logout()
                for t in list(sim.world.tasks):
                    t.cancel()
                await asyncio.gather(*sim.pending, return_exceptions=True)
                # Hubs keep calling in until the verdict is taken, so the gateway stays quiet.
                await _wait_shipped(base_url, dsn, gateway_id, sim_end, headers=headers)
                sim.rec.duplicates = sim.world.duplicates
                sim.rec.errors = sim.world.errors
                sim.rec.counts.update(sim.world.counts)
                sim.rec.counts["mqtt_published"] = link.published
                db = await asyncio.to_thread(fetch, dsn, gateway_id, sim.rec, sim_end)
            finally:
                beats.cancel()
        sleep_in = frozenset(
            s.carer
            for s in scheme.shifts_at(start_utc + timedelta(seconds=1))
            if s.role is ShiftRole.SLEEP_IN
        )
        verdict = compute(sim.rec, db, scheme, scn.expect, sleep_in)
    except BaseException:
        if child is not None:
            print(child.log())
        raise
    finally:
        if child is not None:
            child.stop()
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
        }
    )
    return verdict


def run(scn: Scenario, opts: RunOptions, progress: Progress | None = None) -> dict[str, Any]:
    return asyncio.run(run_async(scn, opts, progress))
