"""The simulator's planned visits, without a gateway: tonight's plan from the schedule file,
what the carers mean to do (from the seed and the visit alone), the cancellations, and the
visits' part of the verdict judged on hand-made ``visit_events`` rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from devices.scheme import load_scheme
from simulator.scenario import ExpectVisits, PlannedVisits, load_scenario
from simulator.timekeeping import Intervals
from simulator.visit_verdict import VisitFacts, VisitRow, judge
from simulator.visits import (
    cancellations,
    end_of_night,
    intent,
    load_tonight,
    night_of,
)

# Thurrock's night playing its schedule file, with some late, frustrated and cancelled visits.
_BASE = load_scenario("thurrock-ooh")
SCN = _BASE.model_copy(
    update={
        "carers": _BASE.carers.model_copy(
            update={
                "planned_visits": PlannedVisits(
                    schedule=Path("examples/thurrock-ooh.visits.yaml"),
                    late_probability=0.1,
                    frustrated_probability=0.06,
                    cancel=2,
                )
            }
        )
    }
)
SCHEME = load_scheme(SCN.scheme_path())
LOADED = load_tonight(SCN, SCHEME)
assert LOADED is not None
SCHEDULE, TONIGHT = LOADED
BY_ID = {v.visit_id: v for v in TONIGHT}


def test_tonight_is_the_schedule_on_the_scenario_night() -> None:
    assert night_of(SCN.start) == date(2026, 11, 24)
    assert len(TONIGHT) == sum(len(r.visits) for r in SCHEDULE.runs) >= 45
    assert BY_ID["r1-01"].agreed_at == datetime(2026, 11, 24, 23, 15, tzinfo=UTC)  # GMT
    assert BY_ID["r1-02"].agreed_at == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    assert BY_ID["r1-04"].critical and BY_ID["r1-04"].window_end == datetime(
        2026, 11, 25, 2, 15, tzinfo=UTC
    )
    assert end_of_night(SCN, SCHEME) == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    # Each run's visits are in the order it makes them: by agreed time.
    for run in {v.run for v in TONIGHT}:
        times = [v.agreed_at for v in TONIGHT if v.run == run]
        assert times == sorted(times)


def test_intents_come_from_the_seed_and_the_visit_alone() -> None:
    cfg = SCN.carers.planned_visits
    first = {v.visit_id: intent(11, v, cfg) for v in TONIGHT}
    again = {v.visit_id: intent(11, v, cfg) for v in reversed(TONIGHT)}
    assert first == again
    assert first != {v.visit_id: intent(12, v, cfg) for v in TONIGHT}
    late = [i for i in first.values() if i.late_s >= 15 * 60]
    assert late and all(i.late_s <= cfg.late_s.max for i in late)
    assert any(i.frustrated for i in first.values())
    # Time-critical visits are never planned late: a miss there is the night's doing.
    assert all(first[v.visit_id].late_s <= cfg.on_time_s for v in TONIGHT if v.critical)


def test_cancellations_are_seeded_and_spare_critical_and_no_show_runs() -> None:
    cfg = SCN.carers.planned_visits.model_copy(update={"cancel": 5, "no_show_runs": ["run-2"]})
    start = SCN.start.replace(tzinfo=SCHEME.tz)
    got = cancellations(3, TONIGHT, cfg, start)
    assert got == cancellations(3, TONIGHT, cfg, start)
    assert len(got) == 5
    for at, vid, by in got:
        v = BY_ID[vid]
        assert not v.critical and v.run != "run-2" and by in ("person", "council")
        assert 0 < at < (v.agreed_at - start).total_seconds()


# ---- the verdict's visits part, on hand-made rows ---------------------------------------------

_seq = iter(range(1, 10_000))


def row(vid: str, step: str, at: datetime, alarm: str | None = None) -> VisitRow:
    return (vid, step, at, BY_ID[vid].agreed_at, alarm, None, next(_seq))


def facts(rows: list[VisitRow], plan_ids: list[str], **kw: Any) -> VisitFacts:
    f = VisitFacts(
        date(2026, 11, 24),
        [BY_ID[v] for v in plan_ids],
        late_alert_min=15,
        contact_min=30,
        end_of_night=datetime(2026, 11, 25, 7, 0, tzinfo=UTC),
        expect=ExpectVisits(max_not_made=kw.get("max_not_made", 0), alert_within_s=120),
    )
    f.rows = rows
    f.raised_alarms = kw.get("raised", {})
    return f


def checks(f: VisitFacts, end: datetime, stalls: Intervals | None = None) -> dict[str, str]:
    product, timing, _ = judge(f, end, stalls or Intervals(), [])
    return {c["check"]: c["status"] for c in product + timing}


def planned(*ids: str) -> list[VisitRow]:
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    return [row(v, "planned", noon) for v in ids]


END = datetime(2026, 11, 25, 7, 30, tzinfo=UTC)


def test_an_on_time_night_passes() -> None:
    a = BY_ID["r1-01"].agreed_at
    c = BY_ID["r1-04"].agreed_at
    rows = [
        *planned("r1-01", "r1-04"),
        row("r1-01", "checked_in", a + timedelta(minutes=3)),
        row("r1-01", "checked_out", a + timedelta(minutes=33)),
        row("r1-04", "checked_in", c + timedelta(minutes=5)),
    ]
    got = checks(facts(rows, ["r1-01", "r1-04"]), END)
    assert set(got.values()) == {"pass"}, got


def test_a_late_visit_needs_its_alert_and_contact_task_in_time() -> None:
    a = BY_ID["r1-03"].agreed_at  # 01:30, not critical
    late = [*planned("r1-03"), row("r1-03", "checked_in", a + timedelta(minutes=40))]
    got = checks(facts(late, ["r1-03"]), END)
    assert got["late visits alerted"] == "fail" and got["contact tasks raised"] == "fail"
    alerted = [
        *late,
        row("r1-03", "late_alert", a + timedelta(minutes=15, seconds=20)),
        row("r1-03", "contact_due", a + timedelta(minutes=30, seconds=20)),
    ]
    got = checks(facts(alerted, ["r1-03"]), END)
    assert set(got.values()) == {"pass"}, got
    # Alerted, but ten minutes after it fell due: a timing failure where the run kept time...
    slow = [
        *late,
        row("r1-03", "late_alert", a + timedelta(minutes=25)),
        row("r1-03", "contact_due", a + timedelta(minutes=31)),
    ]
    assert checks(facts(slow, ["r1-03"]), END)["late alerts in time"] == "fail"
    # ...and not judged where the machine stalled across it.
    stalls = Intervals()
    lo = (a + timedelta(minutes=14)).timestamp()
    stalls.add(lo, lo + 900)
    assert checks(facts(slow, ["r1-03"]), END, stalls)["late alerts in time"] == "not judged"


def test_a_late_alert_after_an_on_time_check_in_is_wrong() -> None:
    a = BY_ID["r1-03"].agreed_at
    rows = [
        *planned("r1-03"),
        row("r1-03", "checked_in", a + timedelta(minutes=2)),
        row("r1-03", "late_alert", a + timedelta(minutes=15)),
    ]
    assert checks(facts(rows, ["r1-03"]), END)["no late alert after an on-time check-in"] == "fail"


def test_a_critical_miss_needs_a_non_arrival_alarm_that_was_raised() -> None:
    c = BY_ID["r1-04"].agreed_at  # 02:00, window 15 minutes
    base = [*planned("r1-04"), row("r1-04", "late_alert", c + timedelta(minutes=15))]
    got = checks(facts(base, ["r1-04"]), datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    assert got["critical misses opened an alarm"] == "fail"
    assert got["visits made"] == "fail"
    assert got["contact tasks raised"] == "pass"  # never for a critical visit
    na = [*base, row("r1-04", "non_arrival", c + timedelta(minutes=15, seconds=5), "a-1")]
    got = checks(facts(na, ["r1-04"]), datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    assert got["critical misses opened an alarm"] == "fail"  # a-1 is not in alarm_events
    f = facts(na, ["r1-04"], raised={"a-1": "carer_non_arrival"})
    got = checks(f, datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    assert got["critical misses opened an alarm"] == "pass"
    assert got["non-arrival alarms in time"] == "pass"


def test_a_run_that_never_checks_in_fails_on_runs_turned_up_only() -> None:
    """The no-show variant's right reason: the product alerted every late visit, raised the
    critical miss's alarm and marked the rest missed; the run still never turned up."""
    ids = [v.visit_id for v in TONIGHT if v.run == "run-2"]
    rows = planned(*ids)
    raised = {}
    for vid in ids:
        v = BY_ID[vid]
        rows.append(row(vid, "late_alert", v.agreed_at + timedelta(minutes=15, seconds=10)))
        if v.critical:
            raised[f"na-{vid}"] = "carer_non_arrival"
            rows.append(row(vid, "non_arrival", v.window_end + timedelta(seconds=10), f"na-{vid}"))
        else:
            rows.append(row(vid, "contact_due", v.agreed_at + timedelta(minutes=30, seconds=10)))
        rows.append(row(vid, "missed", datetime(2026, 11, 25, 7, 0, tzinfo=UTC)))
    f = facts(rows, ids, raised=raised, max_not_made=None)
    product, timing, figures = judge(f, END, Intervals(), [])
    failed = [c["check"] for c in product + timing if c["status"] != "pass"]
    assert failed == ["runs turned up"]
    assert "visits made" not in {c["check"] for c in product}  # reported, not judged
    assert figures["visits_not_made_by_run"] == {"run-2": len(ids)}
    # One check-in for the run and it turned up; a bound on visits made would still catch it.
    there = [*rows, row(ids[0], "checked_in", BY_ID[ids[0]].agreed_at)]
    got = checks(facts(there, ids, raised=raised, max_not_made=2), END)
    assert got["runs turned up"] == "pass" and got["visits made"] == "fail"
    # Without the missed marks at 07:00, the product is at fault as well.
    no_missed = [r for r in rows if r[1] != "missed"]
    assert checks(facts(no_missed, ids, raised=raised), END)["missed at end of night"] == "fail"


def test_a_visit_pulled_away_after_check_in_is_open_again() -> None:
    """A P1 takes the carer off a checked-in visit: its late rules run again (the alert is
    right, not a false one), and it must be made again or marked missed."""
    a = BY_ID["r3-04"].agreed_at  # 03:45
    rows = [
        *planned("r3-04"),
        row("r3-04", "checked_in", a + timedelta(minutes=3)),
        row("r3-04", "pulled_away", a + timedelta(minutes=20), "alarm-1"),
        row("r3-04", "late_alert", a + timedelta(minutes=20, seconds=16)),
        row("r3-04", "contact_due", a + timedelta(minutes=30, seconds=5)),
        row("r3-04", "checked_in", a + timedelta(minutes=43)),
        row("r3-04", "checked_out", a + timedelta(minutes=60)),
    ]
    got = checks(facts(rows, ["r3-04"]), END)
    assert set(got.values()) == {"pass"}, got
    without = [r for r in rows if r[1] != "late_alert"]
    assert checks(facts(without, ["r3-04"]), END)["late visits alerted"] == "fail"


def test_the_schedule_is_played_as_runs_and_api_cancellations() -> None:
    from simulator.schedule import CancelVisit, PlayRun, Visit, build_schedule

    plan = build_schedule(SCN, SCHEME)
    runs = [p.action for p in plan if isinstance(p.action, PlayRun)]
    assert [r.run for r in runs] == ["run-1", "run-2", "run-3"]
    assert all(len(r.carers) == 2 for r in runs)
    assert not [p for p in plan if isinstance(p.action, Visit)]  # no local-only visits
    cancels = [p for p in plan if isinstance(p.action, CancelVisit)]
    assert len(cancels) == 2 and all(p.at_s > 0 for p in cancels)
    # The rest of the night is the same with or without the visits.
    without = build_schedule(_BASE.model_copy(update={"carers": _BASE.carers}), SCHEME)
    keep = (PlayRun, CancelVisit, Visit)
    assert [p for p in plan if not isinstance(p.action, keep)] == [
        p for p in without if not isinstance(p.action, keep)
    ]
