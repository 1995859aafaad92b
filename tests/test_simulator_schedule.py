"""The simulator's pure parts: scenario files load, schedules are deterministic per seed."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from devices.scheme import load_scheme
from simulator.scenario import SCENARIO_DIR, Dist, load_scenario
from simulator.schedule import (
    CancelVisit,
    Login,
    Logout,
    PlayRun,
    SendCallout,
    SendEvent,
    Visit,
    build_schedule,
    draw,
)
from simulator.verdict import pct

NAMES = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_events(name: str) -> None:
    scn = load_scenario(name)
    scheme = load_scheme(scn.scheme_path())
    first = build_schedule(scn, scheme)
    assert first == build_schedule(scn, scheme), "same seed gave a different schedule"
    assert first, "empty schedule"
    assert [p.at_s for p in first] == sorted(p.at_s for p in first)
    other = build_schedule(scn, scheme, seed=scn.seed + 1)
    assert other != first, "a different seed gave the same schedule"


def test_hazelhurst_night_looks_like_a_night() -> None:
    scn = load_scenario("hazelhurst-night")
    plan = build_schedule(scn, load_scheme(scn.scheme_path()))
    kinds = Counter(type(p.action).__name__ for p in plan)
    assert {p.action.carer for p in plan if isinstance(p.action, Login) and p.at_s == 0} == {
        "cw-01",
        "cw-02",
    }
    # The day team logs in at 07:00 when the waking night logs out.
    assert {p.action.carer for p in plan if isinstance(p.action, Logout)} == {"cw-01", "cw-02"}
    alarms = [p for p in plan if isinstance(p.action, SendEvent) and p.action.alarm]
    assert 8 <= len(alarms) <= 40
    assert all(scn.warmup_s <= p.at_s < scn.duration_s for p in alarms)
    assert kinds["SendCallout"] == 1


def test_sick_carer_never_logs_in() -> None:
    scn = load_scenario("hazelhurst-one-carer-sick")
    plan = build_schedule(scn, load_scheme(scn.scheme_path()))
    assert scn.carers.absent
    logged = {p.action.carer for p in plan if isinstance(p.action, Login)}
    assert not logged & set(scn.carers.absent)


def test_thurrock_plays_its_schedule_by_pairs_and_has_edt_callouts() -> None:
    scn = load_scenario("thurrock-ooh")
    plan = build_schedule(scn, load_scheme(scn.scheme_path()))
    runs = [p.action for p in plan if isinstance(p.action, PlayRun)]
    assert [r.run for r in runs] == ["run-1", "run-2", "run-3"]
    assert all(len(r.carers) == 2 for r in runs)
    assert not [p for p in plan if isinstance(p.action, Visit)]  # no local-only visits
    cancels = [p for p in plan if isinstance(p.action, CancelVisit)]
    assert len(cancels) == 2 and all(p.at_s > 0 for p in cancels)
    assert sum(isinstance(p.action, SendCallout) for p in plan) == 3


def test_draw_follows_median_and_p90() -> None:
    rng = random.Random(5)
    d = Dist(median=20, p90=60, min=1)
    values = [draw(rng, d) for _ in range(4000)]
    assert 18 <= (pct(values, 50) or 0) <= 22
    assert 52 <= (pct(values, 90) or 0) <= 68
    assert min(values) >= 1
