"""``telecare db migrate``, retention, and ``telecare report`` against a real database: the
CLI's figures are the same numbers as the hand-computed month."""

from __future__ import annotations

import csv
import io
import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from gateway import storage
from gateway.auth.store import UserStore
from gateway.cli import app
from tests.reports.lifecycle import insert
from tests.reports.test_figures import MARCH

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HAZELHURST = REPO / "examples" / "hazelhurst-court.yaml"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database: str) -> Path:
    for k in list(__import__("os").environ):
        if k.startswith("TELECARE_"):
            monkeypatch.delenv(k)
    monkeypatch.setenv("TELECARE_DB__DSN", database)
    monkeypatch.setenv("TELECARE_SCHEMES", f'["{HAZELHURST}"]')
    monkeypatch.setenv("TELECARE_AUTH__STORE", str(tmp_path / "auth.sqlite3"))
    return tmp_path


def test_db_migrate_applies_each_migration_once(cli_env: Path, database: str) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["db", "migrate"])
    assert first.exit_code == 0, first.output
    for name in storage.MIGRATIONS:
        assert f"applied {name}" in first.output
    again = runner.invoke(app, ["db", "migrate"])
    assert again.exit_code == 0, again.output
    assert "applied" not in again.output.replace("schema current", "")
    assert f"{len(storage.MIGRATIONS)} migrations" in again.output
    with psycopg.connect(database) as conn:
        n = conn.execute("SELECT count(*) FROM report_targets").fetchone()
        assert n == (0,)


def test_retention_keeps_heartbeats_90_days_and_records_8_years(
    cli_env: Path, database: str
) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0
    now = datetime.now(UTC)
    days = 86400.0

    def ago(d: float) -> datetime:
        return datetime.fromtimestamp(now.timestamp() - d * days, UTC)

    with psycopg.connect(database, autocommit=True) as conn:
        for kind, age in (("heartbeat", 91), ("heartbeat", 89), ("pendant_press", 91)):
            conn.execute(
                "INSERT INTO device_events (received_at, occurred_at, event_id, scheme,"
                " device_id, kind, topic, gateway_id, journal_seq)"
                " VALUES (%s, %s, %s, 's', 'd', %s, 't', 'gw', 1)",
                (ago(age), ago(age), uuid.uuid4(), kind),
            )
        for age in (8 * 366, 8 * 365 - 10):
            conn.execute(
                "INSERT INTO alarm_events (at, alarm_id, scheme, step, priority, gateway_id,"
                " journal_seq) VALUES (%s, %s, 's', 'raised', 'P1', 'gw', 1)",
                (ago(age), uuid.uuid4()),
            )
    result = runner.invoke(app, ["db", "retention"])
    assert result.exit_code == 0, result.output
    deleted = json.loads(result.output)
    assert deleted["device_events (heartbeats)"] == 1
    assert deleted["alarm_events"] == 1
    with psycopg.connect(database) as conn:
        kinds = conn.execute("SELECT kind FROM device_events ORDER BY kind").fetchall()
        assert kinds == [("heartbeat",), ("pendant_press",)]
        assert conn.execute("SELECT count(*) FROM alarm_events").fetchone() == (1,)


def test_report_cli_gives_the_hand_computed_figures(cli_env: Path, database: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0
    insert(database, [replace(s, scheme="hazelhurst-court") for s in MARCH if s.scheme == "s1"])
    args = ["report", "show", "response", "--period", "month", "--on", "2026-03-01"]
    out = runner.invoke(app, [*args, "--format", "json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    everything = next(g for g in report["groups"] if g["dimension"] == "all")
    assert (everything["alarms"], everything["counted"]) == (14, 11)
    assert [(w["met"], w["of"], w["pct"]) for w in everything["answer_within"]] == [
        (7, 11, 63.64),
        (10, 11, 90.91),
    ]
    assert (everything["accept"]["p50"], everything["accept"]["p90"]) == (50.0, 180.0)

    as_csv = runner.invoke(app, [*args, "--format", "csv"])
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    overall = next(r for r in rows if r["dimension"] == "all")
    assert (overall["answer_tier1_met"], overall["answer_tier1_pct"]) == ("7", "63.64")
    assert overall["period"] == "2026-03"

    table = runner.invoke(app, args)
    assert table.exit_code == 0 and "63.64" in table.stdout

    # a quarter shows its progress on stderr, and the figures on stdout
    quarter = runner.invoke(app, ["report", "show", "kpi", "--on", "2026-02-01"])
    assert quarter.exit_code == 0, quarter.output
    assert json.loads(quarter.stdout)["alarms"] == 14

    # every export is on the audit trail (the CLI's outbox, copied by a running gateway)
    store = UserStore(cli_env / "auth.sqlite3")
    entries = [json.loads(e) for _, e in store.outbox_batch(100)]
    exports = [e for e in entries if e["action"] == "reports.export"]
    assert len(exports) == 4
    assert exports[0]["target"] == "response hazelhurst-court 2026-03"


def test_report_cli_refuses_a_bad_period(cli_env: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        app,
        [
            "report",
            "show",
            "response",
            "--period",
            "custom",
            "--on",
            "2026-03-05",
            "--until",
            "2026-03-01",
        ],
    )
    assert out.exit_code == 2
    assert "ends" in out.output


def test_a_target_override_changes_only_its_priority(cli_env: Path, database: str) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0
    insert(database, [replace(s, scheme="hazelhurst-court") for s in MARCH if s.scheme == "s1"])
    set_it = runner.invoke(
        app,
        [
            "report",
            "targets",
            "--scheme-id",
            "hazelhurst-court",
            "--priority",
            "P1",
            "--measure",
            "answer",
            "--tier",
            "1",
            "--within-s",
            "30",
            "--goal-pct",
            "95",
        ],
    )
    assert set_it.exit_code == 0, set_it.output
    assert "30" in set_it.stdout
    out = runner.invoke(
        app, ["report", "show", "response", "--on", "2026-03-01", "--format", "json"]
    )
    report = json.loads(out.stdout)
    p1 = next(
        t
        for t in report["targets"]
        if t["priority"] == "P1" and t["measure"] == "answer" and t["tier"] == 1
    )
    assert (p1["within_s"], p1["goal_pct"]) == (30, 95.0)
    # P1 within 30 s: a1 (30 s) and a10 (20 s); P2's a14 (50 s) and P0's a15 (15 s) keep 60 s.
    everything = next(g for g in report["groups"] if g["dimension"] == "all")
    assert (everything["answer_within"][0]["met"], everything["answer_within"][0]["of"]) == (4, 11)
    bad = runner.invoke(app, ["report", "targets", "--scheme-id", "x", "--priority", "P9"])
    assert bad.exit_code == 2


def test_report_schedule3_from_the_cli(cli_env: Path, database: str) -> None:
    """``telecare report schedule3``: the Thurrock return for four weeks from a Monday, its
    schedule found beside the scheme file; a start that is not a Monday is refused."""
    from devices.scheme import load_scheme
    from devices.visits import ServiceUnit, load_schedule
    from gateway.engine import visits as ev
    from tests.reports.test_schedule3 import (
        SCHEME_FILE,
        START,
        expected,
        got,
        in_period,
        parse,
        seeded_period,
        write,
    )

    runner = CliRunner()
    assert runner.invoke(app, ["db", "migrate"]).exit_code == 0
    scheme = load_scheme(SCHEME_FILE)
    schedule = load_schedule(SCHEME_FILE.with_name("thurrock-ooh.visits.yaml"), scheme)
    nights = seeded_period(schedule, ev.Rules(15, 30, scheme.tz))
    write(database, nights)
    out = cli_env / "thurrock.csv"
    args = ["report", "schedule3", "--scheme", str(SCHEME_FILE), "--start", START.isoformat()]
    r = runner.invoke(app, [*args, "-o", str(out)])
    assert r.exit_code == 0, r.output
    rows = parse(out.read_text(encoding="utf-8"))
    assert got(rows) == expected(in_period(nights, scheme.tz), ServiceUnit.VISIT, scheme.tz)
    j = runner.invoke(app, [*args, "-f", "json"])
    assert j.exit_code == 0 and json.loads(j.stdout)["weeks"] == 4
    bad = runner.invoke(app, [*args[:-1], "2026-11-04"])
    assert bad.exit_code == 2 and "Monday" in bad.output
