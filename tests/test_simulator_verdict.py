"""The verdict's pure parts: product checks against run health, timing judged only where the
machine kept time, exit codes; stall intervals; the slip meter."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from devices.scheme import load_scheme
from simulator.scenario import AcceptWithin, Expect
from simulator.timekeeping import Intervals, SlipMeter
from simulator.verdict import (
    DbFacts,
    RunFacts,
    SentAlarm,
    SimRecord,
    Step,
    compute,
    event_alarm_id,
    judge_share,
    lifecycle_faults,
)
from tests.conftest import SCHEME

T0 = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)


def _at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def _steps(alarm: str, steps: list[tuple[str, float]]) -> list[Step]:
    return [(alarm, st_, _at(t), "P1", "cw-01", i) for i, (st_, t) in enumerate(steps)]


def _night(accept_after: list[float]) -> tuple[SimRecord, DbFacts]:
    """Alarms raised every 1000 s, each accepted ``accept_after[i]`` s after, all closed."""
    sim = SimRecord()
    steps: list[Step] = []
    events: Counter[str] = Counter()
    for i, acc in enumerate(accept_after):
        eid = f"00000000-0000-4000-8000-{i:012d}"
        aid = event_alarm_id("hazelhurst-court", f"dev-{i}", eid)
        t = 1000.0 * i
        sim.alarms.append(SentAlarm(eid, aid, f"R{i}", "pendant_press", _at(t)))
        sim.acked.add(eid)
        events[eid] = 1
        steps += _steps(
            aid,
            [
                ("raised", t),
                ("offered", t + 1),
                ("accepted", t + acc),
                ("arrived", t + acc + 60),
                ("resolved", t + acc + 300),
            ],
        )
    return sim, DbFacts(events, Counter(), steps, Counter(), Counter())


EXPECT = Expect(accepted_within=AcceptWithin(seconds=180, min_pct=90))
SCH = load_scheme(SCHEME)


def test_a_clean_night_passes_with_exit_0() -> None:
    sim, db = _night([30, 40, 50, 60])
    v = compute(sim, db, SCH, EXPECT, run=RunFacts(speed=400), until=_at(10_000))
    assert v["exit_code"] == 0 and v["outcome"] == "pass"
    assert not v["run"]["starved"] and v["run"]["problems"] == []
    assert [c["status"] for c in v["timing_checks"]] == ["pass"]
    assert v["run"]["kept_time"]


def test_a_slow_carer_on_a_kept_clock_is_a_product_failure() -> None:
    sim, db = _night([30, 40, 50, 900])  # 75% within 180 s, no stall anywhere
    v = compute(sim, db, SCH, EXPECT, run=RunFacts(speed=400), until=_at(10_000))
    assert v["exit_code"] == 1
    assert v["timing_checks"][0]["status"] == "fail"


def test_a_miss_the_machine_explains_is_not_judged_and_the_run_not_valid() -> None:
    sim, db = _night([30, 40, 50, 900])
    stalls = Intervals()
    stalls.add(_at(3000 + 10).timestamp(), _at(3000 + 850).timestamp())  # 840 s lost
    v = compute(sim, db, SCH, EXPECT, run=RunFacts(speed=400, stalls=stalls), until=_at(10_000))
    assert v["timing_checks"][0]["status"] == "not judged"
    assert v["timing_checks"][0]["ok"] is None  # never reported as passed
    assert v["exit_code"] == 2 and v["outcome"] == "run not valid"
    assert v["run"]["starved"]  # so CI runs it again, slower
    assert "not judged" in v["run"]["problems"][0]
    # The product's invariants were still judged, and hold.
    assert all(c["status"] == "pass" for c in v["product_checks"])


def test_a_stall_too_short_to_explain_a_miss_leaves_it_a_failure() -> None:
    sim, db = _night([30, 40, 50, 900])
    stalls = Intervals()
    stalls.add(_at(3000 + 10).timestamp(), _at(3000 + 110).timestamp())  # 100 s of 720 late
    v = compute(sim, db, SCH, EXPECT, run=RunFacts(speed=400, stalls=stalls), until=_at(10_000))
    assert v["timing_checks"][0]["status"] == "fail"
    assert v["exit_code"] == 1


def test_loss_is_a_product_failure_whatever_the_machine_did() -> None:
    sim, db = _night([30, 40, 50, 60])
    lost = sim.alarms[2].key
    del db.events[lost]
    db.steps = [s for s in db.steps if s[0] != sim.alarms[2].alarm_id]
    stalls = Intervals()
    stalls.add(_at(0).timestamp(), _at(10_000).timestamp())
    v = compute(sim, db, SCH, EXPECT, run=RunFacts(speed=400, stalls=stalls), until=_at(10_000))
    assert v["lost"] == 1 and v["exit_code"] == 1
    assert next(c for c in v["product_checks"] if c["check"] == "lost alarms")["status"] == "fail"


def test_a_message_the_broker_never_took_is_not_the_product_losing_it() -> None:
    sim, db = _night([30, 40, 50, 60])
    key = sim.alarms[1].key
    sim.acked.discard(key)
    del db.events[key]
    db.steps = [s for s in db.steps if s[0] != sim.alarms[1].alarm_id]
    v = compute(sim, db, SCH, EXPECT, run=RunFacts(speed=400), until=_at(10_000))
    assert v["lost"] == 0 and v["undelivered"] == 1
    assert v["exit_code"] == 2 and v["run"]["starved"]


def test_lifecycle_order() -> None:
    good = _steps("a", [("raised", 0), ("offered", 1), ("accepted", 5), ("arrived", 9)])
    assert lifecycle_faults(good + _steps("a", [("resolved", 20)])) == []
    assert lifecycle_faults(_steps("a", [("offered", 0), ("raised", 1)])) == ["starts with offered"]
    bad = _steps("a", [("raised", 0), ("offered", 1), ("arrived", 3), ("resolved", 4)])
    assert "arrived before accepted" in lifecycle_faults(bad)
    late = _steps("a", [("raised", 0), ("cancelled", 1), ("offered", 2)])
    assert lifecycle_faults(late) == ["offered after cancelled"]


def test_out_of_order_steps_fail_the_product() -> None:
    sim, db = _night([30, 40])
    aid = sim.alarms[0].alarm_id
    db.steps = [s for s in db.steps if not (s[0] == aid and s[1] == "accepted")]
    v = compute(sim, db, SCH, Expect(), run=RunFacts(speed=400), until=_at(10_000))
    assert v["lifecycle_out_of_order"] == 1 and v["exit_code"] == 1


def test_judge_share() -> None:
    assert judge_share("x", [(True, False)] * 9 + [(False, False)], 90, "")["status"] == "pass"
    assert judge_share("x", [(True, False)] * 8 + [(False, False)] * 2, 90, "")["status"] == (
        "fail"
    )
    mixed = [(True, False)] * 8 + [(False, True)] * 2
    assert judge_share("x", mixed, 90, "")["status"] == "not judged"
    assert judge_share("x", [], 90, "")["status"] == "pass"  # nothing to judge against


@given(st.lists(st.tuples(st.floats(0, 1000), st.floats(0, 100)), max_size=40))
def test_interval_union_measure(raw: list[tuple[float, float]]) -> None:
    iv = Intervals()
    for a, length in raw:
        iv.add(a, a + length)
    total = iv.measure()
    assert total <= sum(length for _a, length in raw) + 1e-6
    assert total >= max((length for _a, length in raw), default=0.0) - 1e-6
    merged = iv.merged()
    assert all(b1 < a2 for (_a1, b1), (a2, _b2) in itertools.pairwise(merged))
    assert abs(iv.measure(-1e9, 1e9) - total) < 1e-6


def test_slip_meter_turns_lateness_into_stalls() -> None:
    m = SlipMeter(speed=400, anchor_real=1000.0, anchor_scheme_s=0.0)
    m.note(1001.0, "schedule", now_real=1001.005)  # 2 scheme s: noise
    m.note(1002.0, "schedule", now_real=1002.5)  # 200 scheme s: a stall
    assert len(m.stalls) == 1
    assert abs(m.stalls.measure() - 200.0) < 1e-6
    s = m.summary()
    assert s["max_slip_real_s"] == 0.5 and s["max_slip_scheme_s"] == 200.0


def test_a_stall_in_the_job_a_carer_was_finishing_counts_for_the_alarm_that_waited() -> None:
    """The cascade: a stall made cw-01's previous job run long, so the next alarm waited for
    cw-01 although no stall fell after it was raised: that miss is the machine's too."""
    sim, db = _night([30, 40, 50, 700])
    t = 3000.0
    stalls = Intervals()
    stalls.add(_at(t - 900).timestamp(), _at(t - 300).timestamp())  # before the alarm
    jobs = [(_at(t - 1000).timestamp(), _at(t + 650).timestamp())]
    plain = compute(sim, db, SCH, EXPECT, run=RunFacts(speed=400, stalls=stalls), until=_at(10_000))
    assert plain["timing_checks"][0]["status"] == "fail"  # nothing in the alarm's own window
    v = compute(
        sim, db, SCH, EXPECT, run=RunFacts(speed=400, stalls=stalls, jobs=jobs), until=_at(10_000)
    )
    assert v["timing_checks"][0]["status"] == "not judged" and v["exit_code"] == 2


def test_a_gateway_hours_behind_cannot_fail_what_depends_on_when_it_processed() -> None:
    """Triage "at night" and "closed within the drain" depend on when the gateway processed
    its inputs: a gateway the machine left hours behind makes them the machine's. Loss of an
    event that never reached the database stays the product's."""
    sim, db = _night([30, 40, 50, 60])
    late = sim.alarms[1]
    db.steps = [s for s in db.steps if s[0] != late.alarm_id]  # recorded, never an alarm
    db.ingest_lags = [(_at(2000).timestamp(), _at(2000 + 7200).timestamp())]  # 2 h behind
    v = compute(sim, db, SCH, Expect(), run=RunFacts(speed=400), until=_at(10_000))
    assert v["lost"] == 0 and len(v["decided_by_machine"]) == 1
    assert v["exit_code"] == 2 and v["run"]["starved"]
    gone = sim.alarms[2]
    del db.events[gone.key]
    db.steps = [s for s in db.steps if s[0] != gone.alarm_id]
    v = compute(sim, db, SCH, Expect(), run=RunFacts(speed=400), until=_at(10_000))
    assert v["lost"] == 1 and v["exit_code"] == 1


def test_an_alarm_left_open_is_the_product_s_unless_the_machine_ate_the_drain() -> None:
    sim, db = _night([30, 40, 50, 60])
    open_one = sim.alarms[3].alarm_id
    db.steps = [s for s in db.steps if not (s[0] == open_one and s[1] == "resolved")]
    v = compute(sim, db, SCH, Expect(), run=RunFacts(speed=400), until=_at(10_000))
    closed = next(c for c in v["product_checks"] if c["check"].startswith("closed"))
    assert closed["status"] == "fail" and v["exit_code"] == 1
    stalls = Intervals()
    stalls.add(_at(3100).timestamp(), _at(9000).timestamp())  # more than the 3600 s drain
    v = compute(sim, db, SCH, Expect(), run=RunFacts(speed=400, stalls=stalls), until=_at(10_000))
    closed = next(c for c in v["product_checks"] if c["check"].startswith("closed"))
    assert closed["status"] == "not judged" and v["exit_code"] == 2 and v["run"]["starved"]
