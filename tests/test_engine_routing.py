"""Routing choices on the Hazelhurst Court example (table-driven), and the decision record."""

from __future__ import annotations

import pytest

from devices.events import Priority
from gateway.engine.model import ActionKind, RecordDecision
from tests.engine_helpers import HZC, Driver, device_in, offers, resident_with


def test_same_floor_beats_the_other_block() -> None:
    d = Driver()
    d.login("cw-01", "B-043")  # other block, same floor number
    d.login("cw-02", "A-011")  # same block and floor as A-013
    [offer] = offers(d.event(device_in("A-013")))
    assert offer.carer_id == "cw-02"


@pytest.mark.parametrize(
    ("cw01_at", "cw02_at", "alarm_flat", "expected"),
    [
        ("A-012", "B-042", "A-013", "cw-01"),  # neighbour on the walkway
        ("A-003", "A-023", "A-013", "cw-01"),  # one floor down beats two floors up
        ("B-031", "A-030", "A-001", "cw-01"),  # the link (62 m) beats 72 m and two floors
        ("B-060", "A-011", "A-001", "cw-02"),  # one floor up beats the far end of block B
        ("A-001", "B-031", "B-040", "cw-02"),  # ground floor, other end of block B
    ],
)
def test_nearest_by_travel_time(cw01_at: str, cw02_at: str, alarm_flat: str, expected: str) -> None:
    d = Driver()
    d.login("cw-01", cw01_at)
    d.login("cw-02", cw02_at)
    [offer] = offers(d.event(device_in(alarm_flat)))
    assert offer.carer_id == expected


def test_busy_carer_is_skipped() -> None:
    d = Driver()
    d.login("cw-01", "A-012")
    d.login("cw-02", "B-050")
    [first] = offers(d.event(device_in("A-013")))
    assert first.carer_id == "cw-01"
    d.act("cw-01", ActionKind.ACCEPT, first.alarm_id, first.offer_id)
    [second] = offers(d.event(device_in("A-014")))
    assert second.carer_id == "cw-02"
    decision = [c for c in d.log if isinstance(c, RecordDecision)][-1].record
    cw01 = next(c for c in decision["candidates"] if c["carer"] == "cw-01")
    assert cw01["eligible"] is False and "busy with P1" in cw01["reason"]


def test_p1_preempts_a_p3() -> None:
    d = Driver()
    d.login("cw-01", "A-012")
    # A resident cancels a press after it was accepted: the alarm drops to P3 (welfare check).
    [first] = offers(d.event(device_in("A-013")))
    d.act("cw-01", ActionKind.ACCEPT, first.alarm_id, first.offer_id)
    d.event(device_in("A-013"), "cancel")
    assert d.state.alarms[first.alarm_id].priority is Priority.P3
    [urgent] = offers(d.event(device_in("A-015")))
    assert urgent.carer_id == "cw-01"
    d.act("cw-01", ActionKind.ACCEPT, urgent.alarm_id, urgent.offer_id)
    old = d.state.alarms[first.alarm_id]
    assert "cw-01" not in old.accepted_by and old.is_open  # the P3 goes back to be offered


def test_double_handed_fall_gets_a_pair() -> None:
    d = Driver()
    d.login("cw-01", "A-012")
    d.login("cw-02", "B-050")
    resident = resident_with("double_handed")
    sent = offers(d.event(device_in(resident.flat)))
    assert {o.carer_id for o in sent} == {"cw-01", "cw-02"}
    assert {o.role for o in sent} == {"primary", "second"}
    assert all(o.payload["double_handed"] for o in sent)
    a = sent[0].alarm_id
    d.act(
        "cw-01",
        ActionKind.ACCEPT,
        a,
        sent[0].offer_id if sent[0].carer_id == "cw-01" else sent[1].offer_id,
    )
    assert d.state.alarms[a].state.value == "offered"  # still needs the second carer
    other = next(o for o in sent if o.carer_id == "cw-02")
    d.act("cw-02", ActionKind.ACCEPT, a, other.offer_id)
    assert d.state.alarms[a].state.value == "accepted"
    assert d.state.alarms[a].accepted_by == ("cw-01", "cw-02")


def test_logged_out_carer_is_never_chosen_even_when_nearest() -> None:
    d = Driver()
    d.login("cw-01", "A-013")
    d.login("cw-02", "B-060")
    d.feed(
        __import__("gateway.engine.model", fromlist=["PresenceIn"]).PresenceIn(
            HZC.id, "cw-01", "logout"
        )
    )
    [offer] = offers(d.event(device_in("A-013")))
    assert offer.carer_id == "cw-02"


def test_decision_record_explains_every_carer() -> None:
    d = Driver()
    d.login("cw-01", "A-012")
    d.event(device_in("A-013"))
    record = next(c for c in d.log if isinstance(c, RecordDecision)).record
    reasons = {c["carer"]: c["reason"] for c in record["candidates"]}
    assert set(reasons) == {c.id for c in HZC.carers}
    assert reasons["cw-01"] == "eligible"
    assert reasons["cw-02"] == "logged out"
    assert any(r == "off shift" for r in reasons.values())
    assert record["chosen"] == ["cw-01"]
    chosen = next(c for c in record["candidates"] if c["carer"] == "cw-01")
    assert chosen["travel_s"] > 0 and "A-012" in chosen["route"]
