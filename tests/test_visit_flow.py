"""Planned visits in the engine core (issue 13's "Done when"), on the Thurrock example plan.

The night of Tuesday 24 November 2026 (GMT, so local time is UTC): run-1 is ooh-01 + ooh-02,
run-2 ooh-03 + ooh-04, run-3 ooh-05 + ooh-06.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.events import EventKind, Priority
from devices.scheme import SchemeError, load_scheme
from devices.visits import load_schedule, load_schedules, schedule_beside
from gateway.engine import persist, visit_flow
from gateway.engine import visits as V
from gateway.engine.core import Core, EngineState
from gateway.engine.model import (
    ActionIn,
    ActionKind,
    CalloutIn,
    Command,
    Input,
    NotifyControlRoom,
    PresenceIn,
    RecordDecision,
    RecordTransition,
    RecordVisit,
    SendOffer,
    TickIn,
    VisitActionIn,
    VisitControlIn,
    VisitOp,
    VisitResult,
    to_json,
)

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "thurrock-ooh.yaml"
THR = load_scheme(EXAMPLE)
PLAN = load_schedule(schedule_beside(EXAMPLE), THR)
NIGHT = date(2026, 11, 24)
TZ = THR.tz
CARERS = [f"ooh-0{i}" for i in range(1, 7)]


def at(hh: int, mm: int = 0) -> datetime:
    return V.agreed_at(NIGHT, time(hh, mm), TZ)


class Night:
    """Drives the core through a Thurrock night with a fake clock."""

    def __init__(self, start: datetime | None = None, *, login: bool = True) -> None:
        start = start or at(22, 30)
        self.core = Core({THR.id: THR}, schedules={THR.id: PLAN})
        self.now = start
        self.state: EngineState = self.core.initial_state(start)
        self.log: list[Command] = []
        if login:
            for c in CARERS:
                self.feed(PresenceIn(THR.id, c, "login"))

    def feed(self, inp: Input) -> list[Command]:
        self.state, cmds = self.core.step(self.state, inp, self.now)
        self.log.extend(cmds)
        return cmds

    def until(self, when: datetime) -> list[Command]:
        """Tick once a minute up to ``when`` (handsets kept alive), all commands returned."""
        out: list[Command] = []
        while self.now < when:
            self.now = min(when, self.now + timedelta(minutes=1))
            for c in CARERS:
                if self.state.carers[f"{THR.id}/{c}"].logged_in:
                    self.feed(PresenceIn(THR.id, c, "heartbeat"))
            out += self.feed(TickIn())
        return out

    def visit(self, carer: str, action: str, visit_id: str, **kw: Any) -> list[Command]:
        return self.feed(
            VisitActionIn(THR.id, carer, str(uuid.uuid4()), action, visit_id, self.now, **kw)
        )

    def plan(self) -> V.NightPlan:
        return self.state.visit_plans[V.plan_key(THR.id, NIGHT)]


def alerts(cmds: list[Command], code: str) -> list[NotifyControlRoom]:
    return [c for c in cmds if isinstance(c, NotifyControlRoom) and c.code == code]


def rows_of(cmds: list[Command], step: str, visit_id: str | None = None) -> list[RecordVisit]:
    return rows(cmds, step, visit_id)


def rows(cmds: list[Command], step: str, visit_id: str | None = None) -> list[RecordVisit]:
    return [
        c
        for c in cmds
        if isinstance(c, RecordVisit)
        and c.step == step
        and (visit_id is None or c.visit_id == visit_id)
    ]


def test_the_plan_is_built_at_start_with_a_planned_row_per_visit() -> None:
    n = Night()
    n.until(at(22, 31))
    planned = rows(n.log, "planned")
    assert sorted(r.visit_id for r in planned) == sorted(PLAN.visits())
    assert all(r.night == NIGHT and r.client_ref.startswith("THR-") for r in planned)
    assert n.plan().visits["r1-02"].agreed_at == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    n.until(at(23, 0))
    assert len(rows(n.log, "planned")) == len(planned), "built once"


def test_a_late_visit_alerts_at_15_and_raises_the_contact_task_at_30() -> None:
    n = Night()
    before = n.until(at(1, 44))
    assert not alerts(before, "visit_late") or all(
        a.detail["visit_id"] != "r1-03" for a in alerts(before, "visit_late")
    )
    late = [a for a in alerts(n.until(at(1, 45)), "visit_late") if a.detail["visit_id"] == "r1-03"]
    assert len(late) == 1
    assert late[0].detail == {
        "visit_id": "r1-03",
        "run": "run-1",
        "client": "THR-4114",
        "agreed_at": at(1, 30).isoformat(),
    }
    assert rows(n.log, "late_alert", "r1-03")[0].detail["minutes_late"] == 15
    mid = n.until(at(1, 59))
    assert not [a for a in alerts(mid, "visit_contact_due") if a.detail["visit_id"] == "r1-03"]
    assert not [a for a in alerts(mid, "visit_late") if a.detail["visit_id"] == "r1-03"]
    due = n.until(at(2, 0))
    assert [a for a in alerts(due, "visit_contact_due") if a.detail["visit_id"] == "r1-03"]
    assert rows(n.log, "contact_due", "r1-03")
    # The handset records the contact; a second one is refused (no task open any more).
    got = n.visit("ooh-01", "contacted", "r1-03")
    assert [r.ok for r in got if isinstance(r, VisitResult)] == [True]
    assert rows(got, "contacted", "r1-03")[0].carer_id == "ooh-01"
    again = n.visit("ooh-02", "contacted", "r1-03")
    assert [r.ok for r in again if isinstance(r, VisitResult)] == [False]


def test_a_time_critical_miss_opens_a_non_arrival_alarm() -> None:
    n = Night()
    n.until(at(2, 14))
    assert not rows(n.log, "non_arrival")
    cmds = n.until(at(2, 15))  # r1-04: 02:00 with a 15-minute window
    [row] = rows(cmds, "non_arrival", "r1-04")
    assert row.alarm_id is not None
    alarm = n.state.alarms[row.alarm_id]
    assert alarm.kind == EventKind.CARER_NON_ARRIVAL.value
    assert alarm.priority is Priority.P1
    assert alarm.resident_ref == "THR-4121" and alarm.is_open
    [raised] = [
        c
        for c in cmds
        if isinstance(c, RecordTransition) and c.alarm_id == row.alarm_id and c.state == "raised"
    ]
    assert raised.detail["visit_id"] == "r1-04"
    assert [c for c in cmds if isinstance(c, SendOffer) and c.alarm_id == row.alarm_id]
    # Critical visits have no contact task (Thurrock 6.6.1 leaves time-specific visits out).
    assert not rows(n.log, "contact_due", "r1-04")
    n.until(at(2, 40))
    assert len(rows(n.log, "non_arrival", "r1-04")) == 1


def test_a_checked_in_run_is_skipped_for_p2_and_a_p1_pulls_it_off_the_visit() -> None:
    n = Night()
    n.until(at(1, 28))
    ok = n.visit("ooh-01", "check_in", "r1-03")
    assert [r.ok for r in ok if isinstance(r, VisitResult)] == [True]
    assert rows(ok, "checked_in", "r1-03")[0].detail["punctuality"] == "on_time"
    # The pair's second carer arriving too: one visit, already begun.
    second = n.visit("ooh-02", "check_in", "r1-03")
    assert [(r.ok, r.reason) for r in second if isinstance(r, VisitResult)] == [
        (True, "already checked in")
    ]
    # A P2 skips both carers of run-1, and the decision record says why.
    p2 = n.feed(CalloutIn(THR.id, "co-p2", "THR-4114", Priority.P2, "welfare", n.now, n.now, "edt"))
    decision = next(c for c in p2 if isinstance(c, RecordDecision) and "candidates" in c.record)
    cands = {c["carer"]: c for c in decision.record["candidates"]}
    assert cands["ooh-01"]["skipped"] == "on_visit r1-03"
    assert cands["ooh-02"]["skipped"] == "on_visit r1-03"
    assert not cands["ooh-01"]["eligible"]
    assert not {"ooh-01", "ooh-02"} & set(decision.record["chosen"])
    # Everyone else goes off for a break: a P1 now takes run-1 off its visit.
    for c in ("ooh-03", "ooh-04", "ooh-05", "ooh-06"):
        n.feed(PresenceIn(THR.id, c, "logout"))
    p1 = n.feed(CalloutIn(THR.id, "co-p1", "THR-4128", Priority.P1, "fallen", n.now, n.now, "edt"))
    offer = next(c for c in p1 if isinstance(c, SendOffer) and c.carer_id in ("ooh-01", "ooh-02"))
    took = n.feed(
        ActionIn(THR.id, offer.carer_id, ActionKind.ACCEPT, offer.alarm_id, offer.offer_id)
    )
    [pulled] = rows(took, "pulled_away", "r1-03")
    assert pulled.alarm_id == offer.alarm_id and pulled.carer_id == offer.carer_id
    assert alerts(took, "visit_pulled_away")[0].alarm_id == offer.alarm_id
    v = n.plan().visits["r1-03"]
    assert v.status is V.VisitStatus.PLANNED and v.pulled_away == offer.alarm_id
    # The visit goes late, with the reason and the alarm's id.
    late = [a for a in alerts(n.until(at(1, 46)), "visit_late") if a.detail["visit_id"] == "r1-03"]
    assert len(late) == 1 and late[0].alarm_id == offer.alarm_id
    assert offer.alarm_id in late[0].message
    [row] = rows(n.log, "late_alert", "r1-03")
    assert row.alarm_id == offer.alarm_id and offer.alarm_id in row.detail["reason"]


def test_a_council_cancellation_before_the_deadline_is_not_missed() -> None:
    # Monday 23 November, 11:00: the Council cancels Tuesday night's 23:15 visit in time.
    n = Night(datetime(2026, 11, 23, 11, 0, tzinfo=UTC), login=False)
    cmds = n.feed(
        VisitControlIn(
            THR.id, VisitOp.CANCEL, "r1-01", "ops-anna", n.now, night=NIGHT,
            cancelled_by="council", reason="in hospital",
        )
    )  # fmt: skip
    [row] = rows(cmds, "cancelled", "r1-01")
    assert row.detail["late_notice"] is False and row.detail["by"] == "ops-anna"
    assert row.night == NIGHT
    # A late-notice cancellation of another visit that night is still a cancellation.
    n.now = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
    later = n.feed(
        VisitControlIn(THR.id, VisitOp.CANCEL, "r2-01", "ops-anna", n.now, cancelled_by="council")
    )
    assert rows(later, "cancelled", "r2-01")[0].detail["late_notice"] is True
    n.now = at(22, 59)
    for c in CARERS:
        n.feed(PresenceIn(THR.id, c, "login"))
    n.until(at(7, 0))  # to the end of the night (07:00 Wednesday), no visit made
    missed = {r.visit_id for r in rows(n.log, "missed") if r.night == NIGHT}
    assert "r1-01" not in missed and "r2-01" not in missed
    assert "r1-02" in missed and len(missed) == len(PLAN.visits()) - 2
    assert not [a for a in alerts(n.log, "visit_late") if a.detail["visit_id"] == "r1-01"]
    assert n.plan().ended
    assert n.plan().visits["r1-01"].status is V.VisitStatus.CANCELLED


def test_a_carer_not_on_the_run_is_refused_and_nothing_changes() -> None:
    n = Night()
    n.until(at(23, 10))
    got = n.visit("ooh-03", "check_in", "r1-01")
    assert [(r.ok, r.reason) for r in got if isinstance(r, VisitResult)] == [(False, "not_on_run")]
    assert rows(got, "refused", "r1-01")
    assert n.plan().visits["r1-01"].status is V.VisitStatus.PLANNED
    out = n.visit("ooh-01", "check_out", "r1-01")
    assert [r.ok for r in out if isinstance(r, VisitResult)] == [False]


def test_check_in_out_and_frustrated_are_recorded() -> None:
    n = Night()
    n.until(at(23, 20))
    n.visit("ooh-01", "check_in", "r1-01")
    n.now = at(23, 48)
    out = n.visit("ooh-02", "check_out", "r1-01")
    assert rows(out, "checked_out", "r1-01")[0].detail["minutes"] == 28
    fr = n.visit("ooh-03", "frustrated", "r2-01", reason="not_at_home", note_len=12)
    assert rows(fr, "frustrated", "r2-01")[0].detail == {"reason": "not_at_home", "note_len": 12}
    assert n.plan().visits["r2-01"].status is V.VisitStatus.FRUSTRATED


def test_moves_and_extras_come_from_the_control_room() -> None:
    n = Night()
    n.until(at(23, 0))
    moved = n.feed(
        VisitControlIn(THR.id, VisitOp.MOVE, "r1-02", "ops-anna", n.now, agreed_at=at(1, 0))
    )
    assert rows(moved, "moved", "r1-02")[0].agreed_at == at(1, 0)
    extra = n.feed(
        VisitControlIn(
            THR.id, VisitOp.EXTRA, "x-01", "ops-anna", n.now, run="run-2", client="THR-4142",
            agreed_at=at(23, 40), minutes=20, service="Home care", level="Night - single",
        )
    )  # fmt: skip
    assert rows(extra, "extra", "x-01")
    assert n.plan().visits["x-01"].extra
    bad = n.feed(
        VisitControlIn(THR.id, VisitOp.MOVE, "nope", "ops-anna", n.now, agreed_at=at(1, 0))
    )
    assert alerts(bad, "visit_change_refused")
    late = n.until(at(0, 16))
    assert not [a for a in alerts(late, "visit_late") if a.detail["visit_id"] == "r1-02"]


def test_the_plan_survives_a_restart() -> None:
    n = Night()
    rows: dict[str, Any] = {}

    def persist_pass() -> None:
        # As the shell does after each pass: write the rows that changed.
        upserts, deletes = persist.changed_rows(n.state, n.state.take_dirty())
        rows.update({k: json.loads(v) for k, v in upserts.items()})
        for k in deletes:
            rows.pop(k, None)

    n.until(at(23, 20))
    persist_pass()
    n.visit("ooh-01", "check_in", "r1-01")
    persist_pass()
    assert f"visits:{THR.id}/{NIGHT.isoformat()}" in rows
    back, _ = persist.state_from_rows(rows, n.state.carers, n.state.device_seen)
    assert back.visit_plans == n.state.visit_plans
    assert back.visit_plans[V.plan_key(THR.id, NIGHT)].visits["r1-01"].carer == "ooh-01"
    assert persist.state_from_json(persist.state_to_json(n.state)).visit_plans == (
        n.state.visit_plans
    )
    for plan in n.state.visit_plans.values():
        assert persist.plan_from_json(to_json(plan)) == plan
    # A restarted core carries on: no second plan, no alert raised again.
    again = Night(at(23, 20), login=False)
    again.state = back
    cmds = again.until(at(23, 40))
    assert not rows_of(cmds, "planned")
    # After the night ends and the next has begun, last night's plan is dropped from memory
    # (its record is in visit_events) a night later, and its row deleted.
    n.until(at(7, 1))
    persist_pass()
    n.now = at(7, 1) + timedelta(days=2)
    n.feed(TickIn())
    persist_pass()
    assert f"visits:{THR.id}/{NIGHT.isoformat()}" not in rows


def test_a_checked_in_run_is_at_the_clients_home() -> None:
    n = Night()
    n.until(at(23, 15))
    n.visit("ooh-02", "check_in", "r1-01")
    flat = THR.resident("THR-4100").flat  # type: ignore[union-attr]
    for c in ("ooh-01", "ooh-02"):
        assert n.state.carers[f"{THR.id}/{c}"].position.flat == flat
    assert n.state.carers[f"{THR.id}/ooh-03"].position.flat != flat


# ---- properties ----------------------------------------------------------------------------

VISIT_IDS = sorted(PLAN.visits())
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("tick"), st.integers(1, 40)),
        # Mostly a carer of the visit's run (index 0 or 1 of its pair), sometimes anyone.
        st.tuples(
            st.sampled_from(["check_in", "check_in", "check_out", "frustrated", "contacted"]),
            st.integers(0, 7),
            st.sampled_from(VISIT_IDS),
        ),
        # A call for the client of a visit: the run at that home is the nearest.
        st.tuples(
            st.just("callout"),
            st.sampled_from([Priority.P1, Priority.P2, Priority.P3]),
            st.sampled_from(VISIT_IDS),
        ),
        st.tuples(st.just("accept"), st.integers(0, 5)),
    ),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_planned_work_is_counted_and_every_visit_closes(steps: list[tuple[Any, ...]]) -> None:
    """Whatever happens in a night: no P2/P3 offer goes to a carer whose run is on a visit,
    each alert is raised once per visit and agreed time, and by 07:00 no visit is open."""
    n = Night(at(23, 0))
    n.until(at(23, 5))
    offers: list[SendOffer] = []
    for i, step in enumerate(steps):
        busy_before = set(visit_flow.carers_on_visits(n.core, _tx(n), THR.id))
        if step[0] == "tick":
            cmds = n.until(n.now + timedelta(minutes=step[1]))
        elif step[0] == "callout":
            client = n.plan().visits[step[2]].client
            cmds = n.feed(
                CalloutIn(THR.id, f"co-{i}", client, step[1], "help", n.now, n.now, "edt")
            )
        elif step[0] == "accept":
            live = [o for o in offers if n.state.alarms.get(o.alarm_id) is not None]
            if not live:
                continue
            o = live[step[1] % len(live)]
            cmds = n.feed(ActionIn(THR.id, o.carer_id, ActionKind.ACCEPT, o.alarm_id, o.offer_id))
        else:
            kw = {"reason": "no_access"} if step[0] == "frustrated" else {}
            run = n.plan().visits[step[2]].run
            pair = sorted(s.carer for s in THR.rota if s.run == run)
            carer = pair[step[1]] if step[1] < len(pair) else CARERS[step[1] % len(CARERS)]
            cmds = n.visit(carer, step[0], step[2], **kw)
        busy_after = set(visit_flow.carers_on_visits(n.core, _tx(n), THR.id))
        for c in cmds:
            if not isinstance(c, SendOffer):
                continue
            offers.append(c)
            a = n.state.alarms[c.alarm_id]
            if a.priority in (Priority.P2, Priority.P3) and c.role != "all":
                assert c.carer_id not in busy_before & busy_after, (c, busy_before)
    n.until(at(7, 0))
    plan = n.plan()
    assert plan.ended
    assert all(v.status is not V.VisitStatus.PLANNED for v in plan.visits.values())
    for step_name in ("late_alert", "contact_due", "non_arrival", "missed"):
        seen = [(r.visit_id, r.agreed_at) for r in rows(n.log, step_name) if r.night == NIGHT]
        assert len(seen) == len(set(seen)), step_name


def _tx(n: Night) -> Any:
    from gateway.engine.core import _Tx

    return _Tx(n.state, n.now)


# ---- loading ---------------------------------------------------------------------------------


def test_schedules_load_beside_the_scheme_or_explicitly_and_a_bad_one_names_its_line(
    tmp_path: Path,
) -> None:
    schemes = {THR.id: THR}
    got = load_schedules({THR.id: EXAMPLE}, [], schemes)
    assert got[THR.id] == PLAN  # thurrock-ooh.visits.yaml beside thurrock-ooh.yaml
    text = schedule_beside(EXAMPLE).read_text()
    short = tmp_path / "short.yaml"
    short.write_text(text.replace("late_alert_min: 15", "late_alert_min: 10"))
    assert load_schedules({THR.id: EXAMPLE}, [short], schemes)[THR.id].late_alert_min == 10
    assert load_schedules({THR.id: tmp_path / "nothing-beside.yaml"}, [], schemes) == {}
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("client: THR-4114", "client: THR-9999"))
    with pytest.raises(SchemeError) as info:
        load_schedules({THR.id: EXAMPLE}, [bad], schemes)
    line = next(i for i, x in enumerate(bad.read_text().splitlines(), 1) if "THR-9999" in x)
    assert f"bad.yaml:{line}:" in str(info.value) and "THR-9999" in str(info.value)
    with pytest.raises(SchemeError, match="second schedule"):
        load_schedules({THR.id: EXAMPLE}, [short, short], schemes)


def test_lateness_is_judged_only_up_to_what_has_arrived() -> None:
    """A gateway behind on its input must not call a visit late whose check-in it holds."""
    n = Night()
    n.until(at(1, 40))
    # Ingest has got only to 01:42: at 01:50 on the clock, r1-03 (01:30) is not yet late.
    n.now = at(1, 50)
    for c in CARERS:
        n.feed(PresenceIn(THR.id, c, "heartbeat"))
    held = n.feed(TickIn(horizon=at(1, 42), behind="backlog"))
    assert not [a for a in alerts(held, "visit_late") if a.detail["visit_id"] == "r1-03"]
    # The check-in it was holding, received at 01:43, is applied now: late under 15 minutes.
    got = n.feed(VisitActionIn(THR.id, "ooh-01", "a-1", "check_in", "r1-03", at(1, 43)))
    assert rows(got, "checked_in", "r1-03")[0].detail["punctuality"] == "late_under_15"
    caught_up = n.until(at(2, 10))
    assert not [a for a in alerts(caught_up, "visit_late") if a.detail["visit_id"] == "r1-03"]


def test_a_check_in_received_before_seven_belongs_to_the_night_that_ended() -> None:
    n = Night(at(6, 0))
    n.until(at(6, 30))
    n.now = at(7, 0) + timedelta(minutes=2)  # applied after 07:00, received at 06:59
    got = n.feed(VisitActionIn(THR.id, "ooh-05", "a-2", "check_in", "r3-06", at(6, 59)))
    [row] = rows(got, "checked_in", "r3-06")
    assert row.night == NIGHT
    n.feed(TickIn())
    assert n.plan().ended
    assert n.plan().visits["r3-06"].status is V.VisitStatus.CHECKED_IN
    assert "r3-06" not in {r.visit_id for r in rows(n.log, "missed")}


def test_a_carer_ringing_ahead_records_the_contact_and_no_task_is_raised() -> None:
    n = Night()
    n.until(at(1, 40))
    early = n.visit("ooh-02", "contacted", "r1-03", note_len=20)
    assert [r.ok for r in early if isinstance(r, VisitResult)] == [True]
    assert rows(early, "contacted", "r1-03")[0].detail == {"by": "ooh-02", "note_len": 20}
    later = n.until(at(2, 5))
    assert [a for a in alerts(later, "visit_late") if a.detail["visit_id"] == "r1-03"]
    assert not [a for a in alerts(later, "visit_contact_due") if a.detail["visit_id"] == "r1-03"]
    again = n.visit("ooh-01", "contacted", "r1-03")
    assert [(r.ok, r.reason) for r in again if isinstance(r, VisitResult)] == [
        (False, "the contact is already recorded")
    ]
