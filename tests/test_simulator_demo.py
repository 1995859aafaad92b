"""The first run: ``telecare simulate list``, and the demo's hints, which must name the carers
on shift in the live gateway's scheme time and say how to sign in."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from gateway.cli import app
from simulator.demo import LiveNight, hint_lines
from simulator.gateway_proc import GatewayChild
from simulator.scenario import SCENARIO_DIR

LONDON = ZoneInfo("Europe/London")


def _night(carers: list[dict[str, object]], alarms: list[dict[str, object]]) -> LiveNight:
    return LiveNight(
        url="http://127.0.0.1:8470",
        credentials="var/demo/live/gw/dev-credentials.json",
        control_user="dev-control",
        auth_store="var/demo/live/gw/auth.sqlite3",
        speed=20.0,
        scheme_now=datetime(2026, 11, 24, 23, 47, tzinfo=UTC),
        carers=carers,
        alarms=alarms,
    )


NIGHT_CARERS: list[dict[str, object]] = [
    {"carer_id": "cw-01", "display_name": "A", "on_shift": ["waking_night"], "logged_in": True},
    {
        "carer_id": "cw-02",
        "display_name": "B",
        "on_shift": ["waking_night"],
        "logged_in": True,
        "busy_with": "x",
    },
    {"carer_id": "cw-03", "display_name": "C", "on_shift": [], "logged_in": False},
    {"carer_id": "cw-10", "display_name": "D", "on_shift": ["on_call"], "logged_in": False},
]


def test_hints_name_only_carers_on_shift_and_how_to_sign_in() -> None:
    alarms: list[dict[str, object]] = [
        {"alarm_id": "1", "state": "accepted", "accepted_by": ["cw-02"]},
        {"alarm_id": "2", "state": "offered", "accepted_by": []},
    ]
    text = "\n".join(hint_lines(_night(NIGHT_CARERS, alarms), LONDON, "hazelhurst-court"))
    assert "23:47" in text  # scheme time, in the scheme's zone
    assert "open alarms now: 2 (1 with a carer on them)" in text
    assert "cw-01" in text and "cw-02" in text and "cw-10" in text
    assert "cw-03" not in text  # off shift: never offered as someone to look for
    assert "busy with an alarm" in text
    # Sign-in: the TUI with the live gateway's credentials, and the carer page for someone on
    # shift whose handset the simulator is not playing (the on-call senior).
    assert "--credentials var/demo/live/gw/dev-credentials.json" in text
    assert "dev-control" in text
    assert "issue-tokens --carer cw-10" in text
    assert "sign in as hazelhurst-court / cw-10" in text


def test_hints_say_so_when_nobody_is_on_shift() -> None:
    off = [dict(c, on_shift=[]) for c in NIGHT_CARERS]
    text = "\n".join(hint_lines(_night(off, []), LONDON, "hazelhurst-court"))
    assert "nobody is on shift" in text
    assert "cw-01" not in text.split("How to sign in:")[0]


def test_telecare_simulate_list_names_every_scenario() -> None:
    result = CliRunner().invoke(app, ["simulate", "list"])
    assert result.exit_code == 0, result.output
    names = sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml"))
    assert len(names) >= 5
    for name in names:
        assert name in result.output
    assert "hazelhurst-court, from 23:00 for 8 h" in result.output


def test_a_kept_gateway_lives_in_its_state_dir_on_its_port(tmp_path: Path) -> None:
    child = GatewayChild(
        [Path("examples/hazelhurst-court.yaml")],
        20.0,
        datetime(2026, 11, 24, 23, 0, tzinfo=UTC),
        0.0,
        state_dir=tmp_path / "live",
        http_port=18470,
    )
    env = child.env()
    assert child.url == "http://127.0.0.1:18470" and env["TELECARE_HTTP__PORT"] == "18470"
    assert child.workdir.parent == (tmp_path / "live").resolve()
    assert Path(env["TELECARE_JOURNAL__PATH"]).parent == child.workdir
    d = child.describe()
    assert d["credentials"] == str(child.workdir / "dev-credentials.json")
    assert d["auth_store"] == env["TELECARE_AUTH__STORE"]


def test_a_scheme_copy_declares_the_scenarios_hub_interval(tmp_path: Path) -> None:
    from devices.scheme import load_scheme
    from simulator.gateway_proc import with_hub_interval
    from simulator.schedule import hubs

    original = Path("examples/hazelhurst-court.yaml")
    (copy,) = with_hub_interval([original], 900, tmp_path)
    before, after = load_scheme(original), load_scheme(copy)
    assert len(hubs(after)) == len(hubs(before)) == 60
    assert {h.expected_heartbeat_s for h in hubs(after)} == {900}
    assert {h.expected_heartbeat_s for h in hubs(before)} == {60}
    # Nothing else changes: the same devices, residents and rota.
    assert [d.device_id for d in after.devices] == [d.device_id for d in before.devices]
    assert [c.id for c in after.carers] == [c.id for c in before.carers]


def test_the_gateway_gets_a_lead_that_covers_its_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from simulator import runner

    monkeypatch.setattr(runner, "STARTUPS", [])
    monkeypatch.setattr(runner, "cpu_share", lambda: 1.0)
    assert runner.start_lead(4.0) == 4.0  # a quiet machine: the base lead
    monkeypatch.setattr(runner, "cpu_share", lambda: 0.25)
    assert runner.start_lead(4.0) == 16.0  # a quarter of a CPU: four times as long
    monkeypatch.setattr(runner, "STARTUPS", [2.0, 14.0, 3.0])
    assert runner.start_lead(4.0) == 21.0  # 1.5 x the slowest recent start
    monkeypatch.setattr(runner, "STARTUPS", [90.0])
    assert runner.start_lead(4.0) == runner.LEAD_CAP_REAL_S


def test_cpu_share_is_a_fraction() -> None:
    from simulator.runner import cpu_share

    assert 0.05 <= cpu_share(0.05) <= 1.0
