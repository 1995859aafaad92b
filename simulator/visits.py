"""Planned visits played through the gateway: a run's carers make the night's visits in order,
checking in and out on the handset topic ``<root>/<scheme>/carers/<id>/visits``
(docs/visits.md), and a few visits are cancelled through the API.

What the carers mean to do about each visit (how late they plan to be, whether they will find
nobody in, how long they stay) is drawn from a generator keyed by (seed, visit id) only, so
the same seed gives the same intentions at any speed. When they can act on them is the night's
doing: a run that is on an alarm reaches its next visit later. Carers on a visit take whatever
the gateway offers them: whether a visit protects a carer from an alarm is the gateway's call
(a checked-in carer is skipped for P2/P3 and may be pulled away by a P0/P1).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devices.scheme import Scheme
from devices.visits import NOON, VisitSchedule, load_schedule
from simulator.movement import flat_place, noisy, travel_seconds
from simulator.scenario import REPO, PlannedVisits, Scenario
from simulator.schedule import draw, weighted

if TYPE_CHECKING:
    from simulator.handsets import Handset, World

# The night's visits end at 07:00 local (docs/visits.md): after that a visit is missed, and a
# run makes no more visits.
END_OF_NIGHT = time(7, 0)
FRUSTRATED_REASONS = {"no_access": 0.5, "not_at_home": 0.3, "turned_away": 0.2}
POLL_S = 30.0  # scheme seconds between looks at whether the run is free / still on the visit


@dataclass(frozen=True, slots=True)
class PlannedVisit:
    """One visit of tonight's plan, as the simulator knows it from the schedule file."""

    visit_id: str
    run: str
    client: str
    flat_id: str
    agreed_at: datetime  # UTC
    window_min: int
    minutes: int
    double: bool
    critical: bool

    @property
    def window_end(self) -> datetime:
        return self.agreed_at + timedelta(minutes=self.window_min)


@dataclass(frozen=True, slots=True)
class Intent:
    """What the run means to do about one visit (from the seed and the visit alone)."""

    late_s: float  # arrive this long after the agreed time (negative: early)
    frustrated: str | None  # the reason, when they will not be able to make the visit
    on_site_s: float


def schedule_path(scn: Scenario) -> Path | None:
    pv = scn.carers.planned_visits
    if pv.schedule is None:
        return None
    return pv.schedule if pv.schedule.is_absolute() else REPO / pv.schedule


def night_of(start_local: datetime) -> date:
    """The night (named by the local date it began, noon to noon) that ``start_local`` is in."""
    return start_local.date() if start_local.time() >= NOON else start_local.date() - timedelta(1)


def tonight(schedule: VisitSchedule, scheme: Scheme, night: date) -> list[PlannedVisit]:
    """The night's visits in the order each run makes them."""
    flats = {r.client_ref: r.flat for r in scheme.residents}
    out = []
    for run in schedule.runs:
        for v in run.visits:
            day = night + timedelta(days=1) if v.at < NOON else night
            agreed = datetime.combine(day, v.at, tzinfo=scheme.tz).astimezone(UTC)
            out.append(
                PlannedVisit(
                    v.id,
                    run.run,
                    v.client,
                    flats[v.client],
                    agreed,
                    v.window_min,
                    v.minutes,
                    v.double,
                    v.critical,
                )
            )
    return out


def load_tonight(scn: Scenario, scheme: Scheme) -> tuple[VisitSchedule, list[PlannedVisit]] | None:
    path = schedule_path(scn)
    if path is None:
        return None
    schedule = load_schedule(path, scheme)
    return schedule, tonight(schedule, scheme, night_of(scn.start))


def end_of_night(scn: Scenario, scheme: Scheme) -> datetime:
    day = night_of(scn.start) + timedelta(days=1)
    return datetime.combine(day, END_OF_NIGHT, tzinfo=scheme.tz).astimezone(UTC)


def intent(seed: int, v: PlannedVisit, cfg: PlannedVisits) -> Intent:
    rng = random.Random(f"{seed}/visit/{v.visit_id}")
    if rng.random() < cfg.late_probability and not v.critical:
        late = draw(rng, cfg.late_s)
    else:
        late = rng.uniform(-cfg.early_s, cfg.on_time_s)
    frustrated = None
    if rng.random() < cfg.frustrated_probability:
        frustrated = weighted(rng, FRUSTRATED_REASONS)
    on_site = noisy(rng, v.minutes * 60.0, 0.15)
    return Intent(late, frustrated, on_site)


def cancellations(
    seed: int, visits: list[PlannedVisit], cfg: PlannedVisits, start: datetime
) -> list[tuple[float, str, str]]:
    """(seconds after ``start``, visit id, by) for the visits cancelled through the API: an
    hour or two before the agreed time, by the person or the Council (never a critical one,
    and never before the run starts)."""
    rng = random.Random(f"{seed}/visit-cancellations")
    pool = [v for v in visits if not v.critical and v.run not in cfg.no_show_runs]
    chosen = rng.sample(pool, min(cfg.cancel, len(pool)))
    out = []
    for v in sorted(chosen, key=lambda v: v.visit_id):
        at = (v.agreed_at - start).total_seconds() - rng.uniform(1800, 7200)
        out.append((max(60.0, at), v.visit_id, rng.choice(("person", "council"))))
    return sorted(out)


class RunPlayer:
    """One run's pair making their visits in order, through the handsets of ``world``."""

    def __init__(
        self,
        world: World,
        run: str,
        carers: tuple[str, ...],
        visits: list[PlannedVisit],
        cfg: PlannedVisits,
        end: datetime,
        cancelled: set[str],
    ) -> None:
        self.w, self.run, self.carers, self.visits = world, run, carers, visits
        self.cfg, self.end, self.cancelled = cfg, end, cancelled

    def team(self) -> list[Handset]:
        return [self.w.handsets[c] for c in self.carers if c in self.w.handsets]

    def _free(self) -> bool:
        team = self.team()
        return bool(team) and all(h.logged_in and h.busy is None for h in team)

    async def play(self) -> None:
        counts = self.w.counts
        if self.run in self.cfg.no_show_runs:
            counts["visits_no_show"] += len(self.visits)
            return  # this run's carers answer alarms but never check in to a visit
        for v in self.visits:
            if v.visit_id in self.cancelled:
                counts["visits_skipped_cancelled"] += 1
                continue
            made = await self._make(v, intent(self.w.seed, v, self.cfg))
            counts[f"visits_{made}"] += 1

    async def _make(self, v: PlannedVisit, it: Intent) -> str:
        clock = self.w.clock
        dest = flat_place(self.w.scheme, v.flat_id)
        arrive = v.agreed_at + timedelta(seconds=it.late_s)
        while True:
            team = self.team()
            lead = team[0] if team else None
            leave = arrive - timedelta(
                seconds=travel_seconds(self.w.scheme, lead.place, dest) if lead else 0
            )
            if clock.now() < leave:
                await clock.sleep_until(leave, "visits")
            while not self._free():
                if clock.now() >= self.end:
                    return "not_reached"
                await clock.sleep(POLL_S, "visits")
            if clock.now() >= self.end:
                return "not_reached"
            team = self.team()
            lead = team[0]
            tag = f"visit:{v.visit_id}"
            for h in team:
                h.busy = tag
            rng = self.w.decision(self.run, v.visit_id, "travel")
            await clock.sleep(
                noisy(rng, travel_seconds(self.w.scheme, lead.place, dest), 0.2), "visits"
            )
            if any(h.busy != tag for h in team):
                # Pulled to an alarm on the way: the visit is still to make. Whoever was not
                # pulled is free again (not left holding a visit the run has put off).
                for h in team:
                    if h.busy == tag:
                        h.busy = None
                        h.pick_up()
                continue
            for h in team:
                h.place = dest
            made = await self._on_site(v, it, team, tag)
            if made != "again":
                return made
            self.w.counts["visits_resumed"] += 1

    async def _on_site(self, v: PlannedVisit, it: Intent, team: list[Handset], tag: str) -> str:
        clock = self.w.clock
        lead = team[0]
        try:
            if it.frustrated in ("no_access", "not_at_home"):
                await lead.visit_action("frustrated", v.visit_id, it.frustrated)
                await clock.sleep(300, "visits")  # knock, ring, try the key safe
                return "frustrated"
            result = await lead.visit_action("check_in", v.visit_id)
            if result is not None and not result.get("ok"):
                return "check_in_refused"
            if it.frustrated == "turned_away":
                await clock.sleep(120, "visits")
                await lead.visit_action("frustrated", v.visit_id, it.frustrated)
                return "frustrated"
            until = clock.now() + timedelta(seconds=it.on_site_s)
            while clock.now() < until:
                if lead.busy != tag:
                    # Pulled to an alarm: the carer leaves and says so on the handset. If the
                    # gateway has put the visit back to planned (pulled away), it is still to
                    # make: the run comes back to it after the alarm.
                    out = await lead.visit_action("check_out", v.visit_id)
                    return "again" if out is not None and not out.get("ok") else "cut_short"
                await clock.sleep(
                    min(POLL_S, (until - clock.now()).total_seconds() + 0.1), "visits"
                )
            await lead.visit_action("check_out", v.visit_id)
            return "made"
        finally:
            for h in team:
                if h.busy == tag:
                    h.busy = None
                    h.pick_up()


def result_summary(counts: Any) -> dict[str, int]:
    return {k: int(n) for k, n in sorted(counts.items()) if str(k).startswith("visits_")}
