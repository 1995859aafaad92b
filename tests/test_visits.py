"""Planned visits: the schedule file (errors on their lines) and the night's pure rules (late at
+15, contact at +30, a critical miss opens a non-arrival alarm, cancellations by the 6.4.3
deadline, missed at the end of the night) and the schedule 3 quantities, hand-computed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.scheme import SchemeError, load_scheme
from devices.visits import ServiceUnit, load_schedule, parse_schedule
from gateway.engine import visits as V

REPO = Path(__file__).resolve().parents[1]
THURROCK = load_scheme(REPO / "examples" / "thurrock-ooh.yaml")
SCHEDULE = load_schedule(REPO / "examples" / "thurrock-ooh.visits.yaml", THURROCK)
LONDON = ZoneInfo("Europe/London")
RULES = V.Rules(late_alert_min=15, contact_min=30, tz=LONDON)
NIGHT = date(2026, 11, 24)  # a Tuesday night; GMT
PLAN = V.night_plan(SCHEDULE, NIGHT, LONDON)


def local(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=LONDON).astimezone(UTC)


# ---- the schedule file -------------------------------------------------------------------------

GOOD = """scheme: thurrock-ooh
runs:
  - run: run-1
    visits:
      - {id: a, client: THR-4100, at: "23:15", minutes: 30, service: S, level: L}
"""


def test_times_before_noon_belong_to_the_morning_after() -> None:
    assert PLAN["r1-01"].agreed_at == local(NIGHT, 23, 15)
    assert PLAN["r1-02"].agreed_at == local(NIGHT + timedelta(days=1), 0, 0)
    assert PLAN["r1-04"].critical and PLAN["r1-04"].window_end == local(date(2026, 11, 25), 2, 15)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (GOOD.replace("THR-4100", "THR-9999"), 5, "no resident has client_ref"),
        (GOOD.replace("run: run-1", "run: run-9"), 3, "no rota line has run"),
        (GOOD.replace('"23:15"', '"25:99"'), 5, "hour must be in 0..23"),
        (GOOD.replace('"23:15"', '"11pm"'), 5, "HH:MM"),
        (GOOD.replace("minutes: 30", "minutes: 0"), 5, "greater than or equal to 1"),
        (GOOD.replace("scheme: thurrock-ooh", "scheme: hazelhurst-court"), 1, "not 'thurrock-ooh'"),
        (
            GOOD
            + '      - {id: a, client: THR-4107, at: "00:15", minutes: 5, service: S, level: L}\n',
            6,
            "used twice",
        ),
        (GOOD.replace("service: S", "servce: S"), 5, "unknown field"),
    ],
)
def test_a_bad_schedule_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(SchemeError) as caught:
        parse_schedule(text, THURROCK, "plan.yaml")
    assert caught.value.line == line, str(caught.value)
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"plan.yaml:{line}:")


# ---- the rules ---------------------------------------------------------------------------------


def run(plan: dict[str, V.Visit], *inputs: V.Input) -> tuple[dict[str, V.Visit], list[V.Effect]]:
    effects: list[V.Effect] = []
    for inp in inputs:
        plan, out = V.step(plan, inp, RULES)
        effects += out
    return plan, effects


def test_a_late_visit_alerts_at_fifteen_minutes_and_asks_for_contact_at_thirty() -> None:
    at = PLAN["r1-03"].agreed_at  # 01:30, not time-critical
    _, before = run(PLAN, V.Tick(at + timedelta(minutes=14, seconds=59)))
    assert not [e for e in before if e.visit_id == "r1-03"]
    plan, at15 = run(PLAN, V.Tick(at + timedelta(minutes=15)))
    assert V.LateVisit("r1-03", "run-1", "THR-4114", 15, None) in at15
    assert not [e for e in at15 if isinstance(e, V.ContactTask) and e.visit_id == "r1-03"]
    plan, at30 = run(plan, V.Tick(at + timedelta(minutes=30)))
    mine = [e for e in at30 if e.visit_id == "r1-03"]
    assert mine == [V.ContactTask("r1-03", "run-1", "THR-4114")]  # the late alert is not repeated
    plan, again = run(plan, V.Tick(at + timedelta(minutes=90)))
    assert not [e for e in again if e.visit_id == "r1-03"]
    plan, _ = run(plan, V.Contacted("r1-03", at + timedelta(minutes=31)))
    assert plan["r1-03"].contacted_at == at + timedelta(minutes=31)


def test_a_time_critical_miss_opens_a_non_arrival_alarm_and_no_contact_task() -> None:
    v = PLAN["r1-04"]  # 02:00, window 15 minutes
    _, early = run(PLAN, V.Tick(v.window_end - timedelta(seconds=1)))
    assert not [e for e in early if isinstance(e, V.NonArrival)]
    plan, effects = run(PLAN, V.Tick(v.window_end))
    assert V.NonArrival("r1-04", "run-1", "THR-4121") in effects
    _, later = run(plan, V.Tick(v.agreed_at + timedelta(hours=1)))
    assert not [e for e in later if e.visit_id == "r1-04"]
    assert not [
        e for e in effects + later if isinstance(e, V.ContactTask) and e.visit_id == "r1-04"
    ]


def test_a_checked_in_visit_raises_nothing() -> None:
    v = PLAN["r2-02"]
    plan, effects = run(
        PLAN,
        V.CheckIn("r2-02", "ooh-03", v.agreed_at + timedelta(minutes=5)),
        V.Tick(v.agreed_at + timedelta(hours=2)),
        V.CheckOut("r2-02", "ooh-03", v.agreed_at + timedelta(minutes=33)),
    )
    assert not [e for e in effects if e.visit_id == "r2-02"]
    assert plan["r2-02"].status is V.VisitStatus.CHECKED_OUT
    assert V.punctuality(plan["r2-02"]) is V.Punctuality.LATE_UNDER_15


def test_a_carer_pulled_to_an_alarm_makes_the_visit_late_with_the_reason() -> None:
    v = PLAN["r3-02"]
    _, effects = run(
        PLAN, V.PulledAway("r3-02", "alm-7"), V.Tick(v.agreed_at + timedelta(minutes=20))
    )
    [late] = [e for e in effects if isinstance(e, V.LateVisit) and e.visit_id == "r3-02"]
    assert late.reason == "carer pulled away to alarm alm-7" and late.minutes_late == 20


def test_cancellations_against_the_noon_deadline_and_by_the_person() -> None:
    # r1-02 is at 00:00 on Wednesday 25 November: the deadline is Tuesday 24 at 12:00.
    v = PLAN["r1-02"]
    deadline = local(date(2026, 11, 24), 12, 0)
    plan, _ = run(PLAN, V.Cancel("r1-02", V.CancelledBy.COUNCIL, deadline))
    assert plan["r1-02"].status is V.VisitStatus.CANCELLED and not plan["r1-02"].late_notice
    plan, _ = run(PLAN, V.Cancel("r1-02", V.CancelledBy.COUNCIL, deadline + timedelta(seconds=1)))
    assert plan["r1-02"].status is V.VisitStatus.CANCELLED and plan["r1-02"].late_notice
    plan, _ = run(PLAN, V.Cancel("r1-02", V.CancelledBy.PERSON, v.agreed_at - timedelta(minutes=1)))
    assert plan["r1-02"].status is V.VisitStatus.CANCELLED
    plan, _ = run(PLAN, V.Cancel("r1-02", V.CancelledBy.PERSON, v.agreed_at + timedelta(minutes=1)))
    assert plan["r1-02"].status is V.VisitStatus.FRUSTRATED
    # A cancelled visit is not missed at the end of the night, and cannot be checked in to.
    plan, _ = run(PLAN, V.Cancel("r1-02", V.CancelledBy.COUNCIL, deadline))
    plan, effects = run(
        plan,
        V.CheckIn("r1-02", "ooh-01", v.agreed_at),
        V.EndOfNight(local(date(2026, 11, 25), 7, 0)),
    )
    assert V.Refused("r1-02", "the visit is cancelled") in effects
    assert plan["r1-02"].status is V.VisitStatus.CANCELLED
    assert not [e for e in effects if isinstance(e, V.Missed) and e.visit_id == "r1-02"]


def test_the_noon_deadline_skips_the_weekend_and_bank_holidays() -> None:
    # A Monday visit: the working day before is Friday. Tuesday after Easter Monday 2027: the
    # Thursday before Good Friday... the working day before Tuesday 30 March 2027 is Thursday 25.
    assert V.council_deadline(date(2026, 11, 30), LONDON) == local(date(2026, 11, 27), 12, 0)
    assert V.council_deadline(date(2027, 3, 30), LONDON) == local(date(2027, 3, 25), 12, 0)


def test_what_is_still_planned_at_the_end_of_the_night_is_missed() -> None:
    end = local(date(2026, 11, 25), 7, 0)
    plan, effects = run(PLAN, V.EndOfNight(end))
    assert {e.visit_id for e in effects if isinstance(e, V.Missed)} == set(PLAN)
    assert all(v.status is V.VisitStatus.MISSED for v in plan.values())


def test_inputs_that_no_longer_apply_are_refused_and_change_nothing() -> None:
    plan, effects = run(
        PLAN, V.CheckOut("r1-01", "ooh-01", NIGHT_T), V.CheckIn("nope", "x", NIGHT_T)
    )
    assert plan == PLAN
    assert effects == [
        V.Refused("r1-01", "the visit is planned, not checked in"),
        V.Refused("nope", "no such visit tonight"),
    ]


NIGHT_T = local(NIGHT, 23, 0)


# ---- schedule 3, hand-computed -----------------------------------------------------------------


def test_schedule_3_per_client_per_week_by_hand() -> None:
    # THR-4100 has r1-01 (23:15 Tue) and r1-06 (06:00 Wed) each night. Two nights in week
    # starting Monday 23 November, one night in the next week (Monday 30 November).
    nights = [date(2026, 11, 24), date(2026, 11, 25), date(2026, 11, 30)]
    visits: list[V.Visit] = []
    for n, night in enumerate(nights):
        p = V.night_plan(SCHEDULE, night, LONDON)
        for vid in ("r1-01", "r1-06"):
            v = replace(p[vid], visit_id=f"{vid}@{night}")
            if (n, vid) == (0, "r1-01"):  # performed, 32 minutes
                v = replace(
                    v,
                    status=V.VisitStatus.CHECKED_OUT,
                    checked_in_at=v.agreed_at + timedelta(minutes=3),
                    checked_out_at=v.agreed_at + timedelta(minutes=35),
                )
            elif (n, vid) == (0, "r1-06"):  # carer there, no access
                v = replace(
                    v,
                    status=V.VisitStatus.FRUSTRATED,
                    checked_in_at=v.agreed_at,
                    reason="no access",
                )
            elif (n, vid) == (1, "r1-01"):  # Council cancelled late
                v = replace(v, status=V.VisitStatus.CANCELLED, late_notice=True)
            elif (n, vid) == (1, "r1-06"):
                v = replace(v, status=V.VisitStatus.MISSED)
            else:  # week 2: both performed, 30 and 28 minutes
                minutes = 30 if vid == "r1-01" else 28
                v = replace(
                    v,
                    status=V.VisitStatus.CHECKED_OUT,
                    checked_in_at=v.agreed_at,
                    checked_out_at=v.agreed_at + timedelta(minutes=minutes),
                )
            visits.append(v)
    extra = replace(
        V.night_plan(SCHEDULE, nights[2], LONDON)["r1-01"],
        visit_id="extra-1",
        extra=True,
        status=V.VisitStatus.CHECKED_OUT,
        checked_in_at=local(date(2026, 12, 1), 3, 0),
        checked_out_at=local(date(2026, 12, 1), 3, 20),
    )
    visits.append(extra)
    rows = V.schedule3(visits, ServiceUnit.VISIT, LONDON)
    assert [(r.client, r.week_start) for r in rows] == [
        ("THR-4100", date(2026, 11, 23)),
        ("THR-4100", date(2026, 11, 30)),
    ]
    w1, w2 = rows
    assert (w1.actual, w1.frustrated, w1.cancelled, w1.missed, w1.extra) == (1, 1, 1, 1, 0)
    assert (w1.visits, w1.call_minutes) == (2, 32)
    assert "late-notice Council cancellation" in w1.comments
    assert (w2.actual, w2.frustrated, w2.cancelled, w2.missed, w2.extra) == (3, 0, 0, 0, 1)
    assert (w2.visits, w2.call_minutes) == (3, 30 + 28 + 20)
    # In minutes: each unit is a planned minute (r1-01 and r1-06 are planned at 30).
    m1, _ = V.schedule3(visits, ServiceUnit.MINUTES, LONDON)
    assert (m1.actual, m1.frustrated, m1.cancelled, m1.missed) == (30, 30, 30, 30)


# ---- properties --------------------------------------------------------------------------------

IDS = sorted(PLAN)
T0 = local(NIGHT, 23, 0)
offsets = st.integers(min_value=0, max_value=8 * 60)
inputs = st.one_of(
    st.builds(
        lambda i, m: V.CheckIn(IDS[i], "c", T0 + timedelta(minutes=m)), st.integers(0, 17), offsets
    ),
    st.builds(
        lambda i, m: V.CheckOut(IDS[i], "c", T0 + timedelta(minutes=m)), st.integers(0, 17), offsets
    ),
    st.builds(
        lambda i, m: V.Frustrate(IDS[i], "no access", T0 + timedelta(minutes=m)),
        st.integers(0, 17),
        offsets,
    ),
    st.builds(
        lambda i, m, by: V.Cancel(IDS[i], by, T0 + timedelta(minutes=m)),
        st.integers(0, 17),
        offsets,
        st.sampled_from(list(V.CancelledBy)),
    ),
    st.builds(lambda i: V.PulledAway(IDS[i], "alm"), st.integers(0, 17)),
    st.builds(lambda m: V.Tick(T0 + timedelta(minutes=m)), offsets),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(inputs, max_size=40))
def test_each_alert_at_most_once_and_every_visit_closed_by_the_end(steps: list[V.Input]) -> None:
    ticks = sorted((s for s in steps if isinstance(s, V.Tick)), key=lambda t: t.now)
    others = [s for s in steps if not isinstance(s, V.Tick)]
    plan, effects = run(PLAN, *others, *ticks, V.EndOfNight(T0 + timedelta(hours=8)))
    for kind in (V.LateVisit, V.ContactTask, V.NonArrival, V.Missed):
        ids = [e.visit_id for e in effects if isinstance(e, kind)]
        assert len(ids) == len(set(ids)), kind
    for v in plan.values():
        assert v.status in V.TERMINAL or v.status is V.VisitStatus.CHECKED_IN
        if v.critical:
            assert not [
                e for e in effects if isinstance(e, V.ContactTask) and e.visit_id == v.visit_id
            ]
    # Schedule 3's identity holds for a closed night.
    closed = [v for v in plan.values() if v.status in V.TERMINAL]
    for row in V.schedule3(closed, ServiceUnit.VISIT, LONDON):
        mine = [v for v in closed if v.client == row.client]
        planned = sum(not v.extra for v in mine)
        assert row.actual == planned + row.extra - row.frustrated - row.cancelled - row.missed
