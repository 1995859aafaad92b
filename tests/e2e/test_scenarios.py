"""Scenarios end to end: a spawned gateway on a fast clock, real Mosquitto (the e2e tests' own,
see conftest.py) and TimescaleDB.

Each run spawns its own gateway (fresh topic roots, journal, gateway id) against a fresh
database, plays the scenario, and judges it from the database. The verdict separates the
product from the machine: a run the machine starved (timing checks not judged) is run once more
at half the speed; if that is starved too, the test fails with a message about the machine.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from simulator.runner import RunOptions, run, run_with_rerun
from simulator.scenario import load_scenario
from tests.conftest import Services

pytestmark = pytest.mark.integration


# Speeds that keep each run well under two minutes of real time (an 8-hour night at x400 is
# 72 s of play). Run time is reported, not asserted: this machine is shared and noisy.
SPEEDS = {"hazelhurst-night": 400.0, "thurrock-ooh": 400.0, "bad-devices": 300.0}


def _opts(database: str, port: int, **kw: Any) -> RunOptions:
    return RunOptions(dsn=database, mqtt_host="127.0.0.1", mqtt_port=port, **kw)


def _summary(v: dict[str, Any]) -> str:
    keys = ("outcome", "checks", "lost_detail", "duplicate_detail", "lifecycle_detail", "run")
    keys += ("first_attempt",)
    return json.dumps({k: v.get(k) for k in keys}, default=str, indent=1)[:6000]


def judged(v: dict[str, Any]) -> None:
    """Fail the test for the right reason: the machine (exit 2) or the product (exit 1)."""
    if v["exit_code"] == 2:
        pytest.fail(v.get("machine_message") or f"run not valid: {v['run']['problems']}")
    assert v["exit_code"] == 0, _summary(v)


@pytest.mark.parametrize("name", ["hazelhurst-night", "thurrock-ooh", "bad-devices"])
def test_scenario_passes(
    name: str,
    services: Services,
    sim_broker: int,
    database: str,
    record_property: pytest.RecordProperty,
) -> None:
    scn = load_scenario(name)
    v = run_with_rerun(scn, _opts(database, sim_broker, speed=SPEEDS[name]))
    print(f"{name}: {_summary(v)}")
    judged(v)
    summary = _summary(v)
    assert all(c["status"] == "pass" for c in v["product_checks"]), summary
    assert all(c["status"] == "pass" for c in v["timing_checks"]), summary
    assert v["lost"] == 0 and v["duplicate_pages"] == 0, summary
    assert v["double_recorded_events"] == 0
    # The verdict comes from the database: every alarm the simulator raised is there.
    assert v["alarms_known"] == v["alarms_raised"] > 0
    assert v["accepted"] == v["arrived"] == v["resolved"] == v["alarms_opened"]
    record_property("real_seconds", v["real_seconds"])
    record_property("speed", v["speed"])
    print(f"{name}: x{v['speed']:g}, {v['real_seconds']} s real; {v['run']['summary']}")
    if name == "bad-devices":
        assert v["dead_letters_db"] == v["dead_letters_sent"]
        assert sum(v["dead_letters_sent"].values()) > 0
    if name == "thurrock-ooh":
        # The visits were played through the gateway and judged from visit_events.
        checks = {c["check"]: c["status"] for c in v["product_checks"] + v["timing_checks"]}
        for check in VISIT_CHECKS:
            assert checks.get(check) == "pass", (check, summary)
        assert v["visits_planned"] == 49 and v["visits_steps"].get("planned") == 49, summary
        assert v["handsets"].get("visits_made", 0) >= 30, v["handsets"]
        assert v["visits_steps"].get("cancelled") == 2  # the two the control room cancelled
        assert v["visits_late_by_bar"] > 0 and v["visits_steps"].get("late_alert", 0) > 0


VISIT_CHECKS = (
    "visits planned",
    "late visits alerted",
    "contact tasks raised",
    "critical misses opened an alarm",
    "missed at end of night",
    "runs turned up",
    "late alerts in time",
    "non-arrival alarms in time",
    "call-outs on site within target",
)


def test_a_run_that_never_turns_up_fails_for_the_right_reason(
    services: Services, sim_broker: int, database: str
) -> None:
    """run-2's pair never check in (docs/scenarios.md, "Planned visits"): the product alerts
    every one of its late visits, raises the contact tasks and the non-arrival alarm for its
    critical visit, and the verdict fails (exit 1) on "runs turned up" and on nothing else."""
    scn = load_scenario("thurrock-run-no-show")
    v = run_with_rerun(scn, _opts(database, sim_broker, speed=400.0))
    print(f"no-show: {_summary(v)}")
    if v["exit_code"] == 2:
        pytest.fail(v.get("machine_message") or f"run not valid: {v['run']['problems']}")
    assert v["exit_code"] == 1, _summary(v)
    failed = [c for c in v["product_checks"] + v["timing_checks"] if c["status"] != "pass"]
    assert [c["check"] for c in failed] == ["runs turned up"], _summary(v)
    assert failed[0]["got"]["first"] == [
        {"run": "run-2", "visits_due": v["visits_not_made_by_run"]["run-2"]}
    ]
    assert v["visits_not_made_by_run"]["run-2"] >= 6
    # The product noticed: run-2's visits alerted, and its critical visit's alarm raised.
    assert v["non_arrival_alarms"] >= 1
    assert v["handsets"].get("visits_no_show", 0) > 0
    assert v["lost"] == 0 and v["duplicate_pages"] == 0


def _without_block(scheme_path: Path, prefix: str, out: Path) -> Path:
    """A copy of a scheme file without the devices whose ids start with ``prefix``."""
    data = yaml.safe_load(scheme_path.read_text())
    before = len(data["devices"])
    data["devices"] = [d for d in data["devices"] if not d["device_id"].startswith(prefix)]
    assert len(data["devices"]) < before
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def test_loss_is_caught(services: Services, sim_broker: int, database: str, tmp_path: Path) -> None:
    """The verdict still catches loss, whatever the machine: a gateway that does not know one
    block's devices dead-letters their alarms, and the run must fail on lost alarms (exit 1),
    and block A's alarms are still known."""
    scn = load_scenario("bad-devices")
    partial = _without_block(scn.scheme_path(), "hzc-b-", tmp_path / "no-block-b.yaml")
    v = run(scn, _opts(database, sim_broker, gateway_schemes=[partial]))
    assert v["exit_code"] == 1, _summary(v)
    lost = next(c for c in v["product_checks"] if c["check"] == "lost alarms")
    assert lost["status"] == "fail", _summary(v)
    assert v["lost"] > 0
    assert v["lost"] < v["alarms_raised"], "alarms from block A must still be known"
    print(f"loss caught: {v['lost']} of {v['alarms_raised']} lost; {v['run']['summary']}")
    # The lost ones are block B's: the gateway dead-lettered their events as unknown devices.
    assert v["dead_letters_db"].get("unknown_device", 0) > v["dead_letters_sent"].get(
        "unknown_device", 0
    )
