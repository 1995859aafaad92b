"""Simulated carers' handsets, speaking the handset protocol over MQTT.

Each carer logs in, sends a heartbeat (with position) every ``heartbeat_s`` scheme seconds,
and answers offers on ``<root>/<scheme>/carers/<id>/dispatch``: after a delay drawn from the
scenario it accepts (or declines), travels, marks arrived, spends time on site and resolves
with an outcome. A busy carer declines individual offers and leaves broadcasts (``role: all``)
to someone free. Carers of a double-handed run (rota ``run:``) travel together.

Every decision a carer makes (answer or not, how fast, decline, travel time, time on site,
outcome) is drawn from its own generator keyed by (seed, carer, alarm, which offer of it), never
from a shared generator whose call order depends on what arrived first. The same seed gives the
same answers at any speed, however the machine schedules the run.

Duplicate pages are counted here, as the handset sees them (see docs/scenarios.md):
the same ``offer_id`` delivered twice, or an offer for an alarm while this handset still
holds a live offer for it or has accepted it.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from devices.scheme import Scheme
from devices.topics import TopicLayout
from responders.protocol import Action, OutcomeCode, PresenceKind
from simulator import wire
from simulator.clock import SimClock
from simulator.movement import Place, base_place, flat_place, noisy, travel_seconds
from simulator.scenario import Carers
from simulator.schedule import draw, weighted
from simulator.tasks import Owner

_SILENT = re.compile(r"handset of carer (\S+) silent")


@dataclass
class World:
    scheme: Scheme
    layout: TopicLayout
    clock: SimClock
    link: wire.Link
    cfg: Carers
    seed: int
    handsets: dict[str, Handset] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)
    partners: dict[str, tuple[str, ...]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    owner: Owner = field(default_factory=Owner)
    # Every stretch a carer was busy (alarm, escort or visit), in scheme epoch seconds: a stall
    # inside one delays every alarm that had to wait for that carer (see simulator.verdict).
    jobs: list[tuple[float, float]] = field(default_factory=list)

    def spawn(self, coro: Any) -> None:
        self.owner.spawn(coro)

    def decision(self, carer: str, *key: object) -> random.Random:
        """The generator for one decision: a function of the seed and its identity only."""
        return random.Random("/".join(str(k) for k in (self.seed, carer, *key)))

    async def on_message(self, topic: str, body: dict[str, Any]) -> None:
        parts = topic.split("/")
        if len(parts) == 5 and parts[2] == "carers" and parts[4] == "dispatch":
            self._note_delivery(body)
            h = self.handsets.get(parts[3])
            if h is not None:
                h.on_dispatch(body)
        elif len(parts) >= 4 and parts[2] == "control":
            self.counts[f"control:{body.get('type')}:{body.get('code', '')}"] += 1
            if body.get("code") == "handset_silent":
                # The gateway declines a silent handset's offers itself, without a cancel.
                m = _SILENT.search(str(body.get("message", "")))
                if m and m.group(1) in self.handsets:
                    self.handsets[m.group(1)].withdraw_all("silent")

    def _note_delivery(self, body: dict[str, Any]) -> None:
        """How late an offer reached the handset after the gateway sent it (broker and
        simulator both behind): part of the run's clock slip."""
        sent = body.get("sent_at")
        if body.get("type") != "offer" or not isinstance(sent, str) or self.clock.meter is None:
            return
        try:
            due = self.clock.real_of(datetime.fromisoformat(sent))
        except ValueError:
            return
        self.clock.meter.note(due, "offers")


class Handset:
    def __init__(self, world: World, carer_id: str, zone: str | None) -> None:
        self.w = world
        self.id = carer_id
        self.rng = random.Random(f"{world.seed}/{carer_id}/heartbeats")  # timing only
        self.offers_of: Counter[str] = Counter()  # alarm id -> offers of it seen
        self.nth: dict[str, int] = {}  # offer id -> which offer of its alarm it was, here
        self.place: Place = base_place(world.scheme, zone)
        self.logged_in = False
        self.silent_until = 0.0  # real monotonic-free: a scheme timestamp (epoch seconds)
        self._busy: str | None = None  # "alarm:<id>", "visit", "escort:<id>"
        self._job_start: float | None = None
        self.answering = 0  # offers being answered (the carer is deciding, not yet busy)
        self.live: dict[str, dict[str, Any]] = {}  # alarm_id -> the live offer
        self.seen_offers: set[str] = set()
        self.accepted: set[str] = set()
        self.escorts: list[Handset] = []
        self.results: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.never_answers = carer_id in world.cfg.never_answer
        self._beat: asyncio.Task[None] | None = None

    @property
    def busy(self) -> str | None:
        return self._busy

    @busy.setter
    def busy(self, value: str | None) -> None:
        """Record each busy stretch as it ends (a change of job ends one and starts another)."""
        if value != self._busy:
            self.end_job()
            if value is not None:
                self._job_start = self._now_s()
        self._busy = value

    def end_job(self) -> None:
        if self._job_start is not None:
            self.w.jobs.append((self._job_start, self._now_s()))
            self._job_start = None

    # ---- presence -----------------------------------------------------------------------

    def _now_s(self) -> float:
        return self.w.clock.now().timestamp()

    def silent(self) -> bool:
        return self._now_s() < self.silent_until

    async def _presence(self, what: PresenceKind, attempts: int = 1) -> None:
        body = wire.presence(what, self.w.clock.now(), **self.place.presence())
        topic = self.w.layout.carer(self.w.scheme.id, self.id, "presence")
        await self.w.link.publish(topic, body, attempts)

    async def beat(self) -> None:
        """One heartbeat now (the runner's barrier at the end of a run)."""
        await self._presence(PresenceKind.HEARTBEAT, attempts=3)

    async def login(self) -> None:
        self.logged_in = True
        await self._presence(PresenceKind.LOGIN, attempts=3)
        self._beat = self.w.owner.spawn(self._heartbeats(), name=f"beat-{self.id}")

    async def logout(self, finish_first: bool = False) -> None:
        """End of shift; with ``finish_first`` after the alarm or visit in hand is done."""
        while finish_first and self.busy is not None:
            await self.w.clock.sleep(30, "handsets")
        if self._beat is not None:
            self._beat.cancel()
        if self.logged_in:
            self.logged_in = False
            await self._presence(PresenceKind.LOGOUT, attempts=3)

    async def _heartbeats(self) -> None:
        period = self.w.cfg.heartbeat_s
        await self.w.clock.sleep(self.rng.uniform(0, period), "handsets")
        while True:
            if self.logged_in and not self.silent():
                try:
                    await self._presence(PresenceKind.HEARTBEAT)
                    self.w.counts["handset_heartbeats"] += 1
                except wire.PublishFailed:
                    self.w.counts["heartbeat_failures"] += 1
            await self.w.clock.sleep(period * self.rng.uniform(0.9, 1.1), "handsets")

    def go_silent(self, for_s: float) -> None:
        self.silent_until = self._now_s() + for_s
        self.w.counts["handset_silences"] += 1

    async def _online(self) -> None:
        while self.silent():
            await self.w.clock.sleep(min(30.0, self.silent_until - self._now_s() + 0.1), "handsets")

    # ---- dispatch -------------------------------------------------------------------------

    def on_dispatch(self, body: dict[str, Any]) -> None:
        typ = body.get("type")
        aid = str(body.get("alarm_id"))
        if typ == "offer":
            self._on_offer(body)
        elif typ == "cancel":
            if self._live_id(aid) == body.get("offer_id"):
                del self.live[aid]
            self.w.counts["cancels"] += 1
        elif typ == "action_result":
            fut = self.results.pop(str(body.get("action_id")), None)
            if fut is not None and not fut.done():
                fut.set_result(body)
            if not body.get("ok"):
                self.w.counts["actions_refused"] += 1
        elif typ == "visit_result":
            fut = self.results.pop(str(body.get("visit_action_id")), None)
            if fut is not None and not fut.done():
                fut.set_result(body)
            if not body.get("ok"):
                self.w.counts[f"visit_refused:{body.get('reason')}"] += 1
        elif typ == "reminder":
            self.w.counts["reminders"] += 1

    def _live_id(self, aid: str) -> str | None:
        offer = self.live.get(aid)
        return None if offer is None else str(offer.get("offer_id"))

    def withdraw_all(self, why: str) -> None:
        """The gateway took this carer's offers back without a cancel (handset silent)."""
        if self.live:
            self.w.counts[f"offers_withdrawn_{why}"] += len(self.live)
        self.live.clear()

    def _dup(self, body: dict[str, Any], why: str) -> None:
        self.w.duplicates.append(
            {
                "carer": self.id,
                "alarm_id": body.get("alarm_id"),
                "offer_id": body.get("offer_id"),
                "why": why,
                "at": self.w.clock.now().isoformat(),
            }
        )

    def _on_offer(self, body: dict[str, Any]) -> None:
        aid, oid = str(body["alarm_id"]), str(body["offer_id"])
        self.w.counts["offers"] += 1
        if oid in self.seen_offers:
            self._dup(body, "same offer_id delivered twice")
            return
        self.seen_offers.add(oid)
        if aid in self.live:
            self._dup(body, f"new offer while offer {self._live_id(aid)} for this alarm is live")
        elif aid in self.accepted:
            self._dup(body, "offered an alarm this carer has already accepted")
        self.live[aid] = body
        self.offers_of[aid] += 1
        self.nth[oid] = self.offers_of[aid]
        if not self.logged_in or self.silent():
            self.w.counts["offers_unheard"] += 1
            return
        cfg = self.w.cfg
        rng = self.w.decision(self.id, aid, self.offers_of[aid], "ignore")
        if self.never_answers or rng.random() < cfg.no_answer_probability:
            self.w.counts["offers_ignored"] += 1
            return
        self.w.spawn(self._answer(body))

    def working(self) -> bool:
        """On an alarm, holding an offer, or about to answer one: the carer's night is not
        over, whatever the gateway shows."""
        on_alarm = self.busy is not None and not self.on_visit()
        return on_alarm or bool(self.live) or self.answering > 0

    def on_visit(self) -> bool:
        return self.busy is not None and self.busy.startswith("visit")

    async def _answer(self, body: dict[str, Any]) -> None:
        self.answering += 1
        try:
            await self._answer_offer(body)
        finally:
            self.answering -= 1

    async def _answer_offer(self, body: dict[str, Any]) -> None:
        aid, oid, role = str(body["alarm_id"]), str(body["offer_id"]), body.get("role")
        clock, cfg = self.w.clock, self.w.cfg
        nth = self.nth.get(oid, 0)
        mine_already = self.busy == f"escort:{aid}"
        if self.busy is not None and not mine_already and not self._interrupts(body):
            if role == "all":
                self.w.counts["broadcasts_left_busy"] += 1
                return
            await clock.sleep(self.w.decision(self.id, aid, nth, "busy").uniform(3, 15), "handsets")
            if self._live_id(aid) == oid:
                self.live.pop(aid, None)
                await self._act(Action.DECLINE, aid, oid)
                self.w.counts["declined_busy"] += 1
            return
        delay = draw(self.w.decision(self.id, aid, nth, "delay"), cfg.response_delay_s)
        await clock.sleep(delay if not mine_already else 2.0, "handsets")
        if self._live_id(aid) != oid:
            return  # cancelled or taken meanwhile
        if self.busy is not None and self.busy != f"escort:{aid}" and not self._interrupts(body):
            self.live.pop(aid, None)
            if role != "all":
                await self._act(Action.DECLINE, aid, oid)
                self.w.counts["declined_busy"] += 1
            return
        declines = self.w.decision(self.id, aid, nth, "decline").random() < cfg.decline_probability
        if role != "all" and not mine_already and declines:
            self.live.pop(aid, None)
            await self._act(Action.DECLINE, aid, oid)
            self.w.counts["declined"] += 1
            return
        if self.on_visit():
            self.w.counts["visits_interrupted"] += 1
            self.w.counts[f"visits_interrupted_{body.get('priority')}"] += 1
        self.busy = f"alarm:{aid}"
        self.live.pop(aid, None)
        result = await self._act(Action.ACCEPT, aid, oid)
        if not result or not result.get("ok"):
            self.busy = None
            self.w.counts["accept_refused"] += 1
            return
        self.accepted.add(aid)
        self.w.counts["accepted"] += 1
        await self._respond(aid, str(body.get("flat_id") or ""))

    def _interrupts(self, offer: dict[str, Any]) -> bool:
        """A carer on a planned visit takes what the gateway offers: whether a visit keeps a
        carer from an alarm is the gateway's decision (docs/visits.md, routing). The old
        local-only visits (``planned_visits.count``) yield to emergencies only."""
        if self.busy == "visit":
            return offer.get("priority") in ("P0", "P1")
        return self.on_visit()

    async def _respond(self, aid: str, flat_id: str) -> None:
        w, clock = self.w, self.w.clock
        dest = flat_place(w.scheme, flat_id) if flat_id else self.place
        escorts = [
            w.handsets[p]
            for p in w.partners.get(self.id, ())
            if p in w.handsets
            and (w.handsets[p].busy is None or w.handsets[p].on_visit())
            and w.handsets[p].logged_in
        ]
        for e in escorts:
            e.busy = f"escort:{aid}"
        self.escorts = escorts
        rng = w.decision(self.id, aid, "respond")
        await clock.sleep(
            noisy(rng, travel_seconds(w.scheme, self.place, dest), w.cfg.travel_noise), "handsets"
        )
        self.place = dest
        for e in escorts:
            if e.busy == f"escort:{aid}":
                e.place = dest
        result = await self._act(Action.ARRIVED, aid)
        if result is not None and not result.get("ok"):
            self._free(aid)
            return
        w.counts["arrived"] += 1
        # What the carer finds (how long it takes, how it ends) belongs to the alarm, not to
        # whichever carer the routing sent: the same seed gives the same outcomes at any speed.
        situation = w.decision("alarm", aid, "situation")
        await clock.sleep(draw(situation, w.cfg.on_site_s), "handsets")
        if aid not in w.resolved:
            outcome = weighted(situation, dict(w.cfg.outcomes))
            w.resolved.add(aid)
            result = await self._act(Action.RESOLVED, aid, outcome=outcome)
            if result is not None and result.get("ok"):
                w.counts["resolved"] += 1
                w.counts[f"outcome:{outcome.value}"] += 1
        self._free(aid)
        await self._presence(PresenceKind.HEARTBEAT)

    def _free(self, aid: str) -> None:
        self.busy = None
        for e in self.escorts:
            if e.busy == f"escort:{aid}":
                e.busy = None
                e.pick_up()
        self.escorts = []
        self.pick_up()

    def pick_up(self) -> None:
        """Free again: answer the oldest broadcast still waiting on the handset."""
        waiting = [o for o in self.live.values() if o.get("role") == "all"]
        if waiting and self.busy is None and self.logged_in:
            self.w.counts["broadcasts_picked_up"] += 1
            self.w.spawn(self._answer(min(waiting, key=lambda o: str(o.get("raised_at")))))

    async def _act(
        self, kind: Action, aid: str, oid: str | None = None, outcome: OutcomeCode | None = None
    ) -> dict[str, Any] | None:
        """Send an action (once the phone is online) and wait for the gateway's answer."""
        await self._online()
        action_id, payload = wire.action(kind, aid, self.w.clock.now(), oid, outcome)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.results[action_id] = fut
        try:
            await self.w.link.publish(
                self.w.layout.carer(self.w.scheme.id, self.id, "actions"), payload, attempts=3
            )
        except wire.PublishFailed:
            self.results.pop(action_id, None)
            self.w.counts["actions_not_sent"] += 1
            return None
        try:
            return await asyncio.wait_for(fut, timeout=max(5.0, self.w.clock.real_seconds(300)))
        except TimeoutError:
            self.results.pop(action_id, None)
            self.w.counts["action_results_missing"] += 1
            return None

    # ---- planned visits -------------------------------------------------------------------

    async def visit_action(
        self, action: str, visit_id: str, reason: str | None = None
    ) -> dict[str, Any] | None:
        """Check in, check out or frustrate a planned visit; the gateway's ``visit_result``
        (None if it never came or could not be sent)."""
        await self._online()
        vid, payload = wire.visit_action(action, visit_id, self.w.clock.now(), reason)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.results[vid] = fut
        self.w.counts[f"visit_{action}"] += 1
        try:
            await self.w.link.publish(
                self.w.layout.carer(self.w.scheme.id, self.id, "visits"), payload, attempts=3
            )
        except wire.PublishFailed:
            self.results.pop(vid, None)
            self.w.counts["visit_actions_not_sent"] += 1
            return None
        try:
            return await asyncio.wait_for(fut, timeout=max(5.0, self.w.clock.real_seconds(300)))
        except TimeoutError:
            self.results.pop(vid, None)
            self.w.counts["visit_results_missing"] += 1
            return None

    async def visit(self, flat_id: str, duration_s: float, lead: bool) -> None:
        dest = flat_place(self.w.scheme, flat_id)
        self.busy = "visit"
        rng = self.w.decision(self.id, "visit", flat_id, duration_s)
        await self.w.clock.sleep(
            noisy(rng, travel_seconds(self.w.scheme, self.place, dest), 0.2), "handsets"
        )
        self.place = dest
        if lead:
            self.w.counts["visits_done"] += 1
        await self._presence(PresenceKind.HEARTBEAT)  # checked in at the client's home
        await self.w.clock.sleep(duration_s, "handsets")
        if self.busy == "visit":
            self.busy = None
            self.pick_up()

    def idle(self) -> bool:
        return self.busy is None and not self.live
