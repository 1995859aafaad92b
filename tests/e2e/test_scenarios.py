"""Scenarios end to end: real Mosquitto, a spawned gateway on a fast clock, TimescaleDB.

Each run spawns its own gateway (fresh topic roots, journal, gateway id) against a fresh
database, plays the scenario, and judges it from the database. Each stays under 2 minutes.
"""

from __future__ import annotations

import json

import pytest

from simulator.runner import RunOptions, run
from simulator.scenario import load_scenario
from tests.conftest import Services

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("name", ["hazelhurst-night", "thurrock-ooh", "bad-devices"])
def test_scenario_passes(name: str, services: Services, database: str) -> None:
    scn = load_scenario(name)
    opts = RunOptions(dsn=database, mqtt_host=services.mqtt_host, mqtt_port=services.mqtt_port)
    v = run(scn, opts)
    summary = json.dumps({k: v[k] for k in ("checks", "lost_detail", "duplicate_detail")})
    assert v["passed"], summary
    assert v["lost"] == 0 and v["duplicate_pages"] == 0, summary
    assert v["double_recorded_events"] == 0
    # The verdict comes from the database: every alarm the simulator raised is there.
    assert v["alarms_known"] == v["alarms_raised"] > 0
    assert v["accepted"] == v["arrived"] == v["resolved"] == v["alarms_opened"]
    assert v["real_seconds"] < 120, f"{name} took {v['real_seconds']} s"
    if name == "bad-devices":
        assert v["dead_letters_db"] == v["dead_letters_sent"]
        assert sum(v["dead_letters_sent"].values()) > 0
    if name == "thurrock-ooh":
        assert v["handsets"].get("visits_done", 0) >= 40
