"""The reports API and page against a real gateway: the hand-computed month comes back exactly
(JSON and CSV), only managers and commissioners get in, a commissioner sees no names, notes or
carer identities, small cells are withheld on request, and every export is audited."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from api_models import Role
from devices.scheme import load_scheme
from tests.conftest import SCHEME, GatewayEnv, wait_for
from tests.reports.lifecycle import insert, insert_disturbances
from tests.reports.test_figures import MARCH

pytestmark = pytest.mark.integration

HZC = "hazelhurst-court"
MONTH = {"period": "month", "on": "2026-03-01"}


def _migrated(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        try:
            row = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE name = '005_reports.sql'"
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            return False
        return row is not None


@pytest.fixture
def month(gateway: GatewayEnv, role_clients: dict[Role, httpx.Client]) -> dict[Role, httpx.Client]:
    """A running gateway whose database holds the hand-made March (as Hazelhurst Court)."""
    wait_for(lambda: _migrated(gateway.dsn), 30, what="the gateway's migrations")
    insert(gateway.dsn, [replace(s, scheme=HZC) for s in MARCH if s.scheme == "s1"])
    insert_disturbances(
        gateway.dsn,
        HZC,
        [("cw-05", "2026-03-13", t) for t in (MARCH[0].received,) * 3],
    )
    return role_clients


def _all(body: dict[str, object]) -> dict[str, object]:
    groups = body["groups"]
    assert isinstance(groups, list)
    return next(g for g in groups if g["dimension"] == "all")


def test_reports_give_the_hand_computed_month_to_the_right_roles(
    month: dict[Role, httpx.Client], gateway: GatewayEnv
) -> None:
    url = f"/api/v1/reports/{HZC}/response"
    for role in (Role.MANAGER, Role.COMMISSIONER):
        r = month[role].get(url, params=MONTH)
        assert r.status_code == 200, r.text
        everything = _all(r.json())
        assert (everything["alarms"], everything["counted"]) == (14, 11)
        assert [(w["met"], w["of"], w["pct"]) for w in everything["answer_within"]] == [
            (7, 11, 63.64),
            (10, 11, 90.91),
        ]
        assert [(w["met"], w["of"], w["pct"]) for w in everything["attend_within"]] == [
            (6, 11, 54.55),
            (8, 11, 72.73),
        ]
        accept = everything["accept"]
        assert (accept["p50"], accept["p90"], accept["p95"], accept["max"]) == (50, 180, 181, 181)
    for role in (Role.CONTROL_ROOM, Role.CARER, Role.ADMIN):
        assert month[role].get(url, params=MONTH).status_code == 403, role
    anonymous = httpx.Client(base_url=gateway.process.url, timeout=10)
    assert anonymous.get(url, params=MONTH).status_code == 401
    assert anonymous.get("/reports").status_code == 401

    as_csv = month[Role.COMMISSIONER].get(url, params={**MONTH, "format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    overall = next(r for r in csv.DictReader(io.StringIO(as_csv.text)) if r["dimension"] == "all")
    assert (overall["answer_tier1_met"], overall["answer_tier1_of"]) == ("7", "11")
    assert (overall["attend_tier2_pct"], overall["accept_p50_s"]) == ("72.73", "50.0")

    # small cells: the single test call and the P0 fire are withheld
    small = month[Role.COMMISSIONER].get(url, params={**MONTH, "suppress_small": "true"}).json()
    assert small["head"]["suppressed"] is True
    assert _all(small)["test_calls"] is None and _all(small)["counted"] == 11
    p0 = next(g for g in small["groups"] if g["dimension"] == "priority" and g["value"] == "P0")
    assert p0["alarms"] is None and p0["accept"]["p50"] is None

    # bad scope: an unknown scheme and a period before any record are 404, a bad day 422
    c = month[Role.MANAGER]
    assert c.get("/api/v1/reports/no-such-scheme/response").status_code == 404
    assert c.get(url, params={"on": "1960-01-01"}).status_code == 404
    assert c.get(url, params={"on": "2026-02-30"}).status_code == 422
    assert c.get(url, params={"period": "custom", "days": 0}).status_code == 422

    # every export is on the audit trail, with who asked
    def exports() -> list[dict[str, object]]:
        rows = c.get("/api/v1/audit", params={"action": "reports.export"}).json()
        return [e for e in rows if e["username"] == "test-commissioner"]

    done = wait_for(lambda: len(exports()) >= 3 and exports(), 30, what="audited exports")
    assert all(e["target"].startswith(f"response {HZC}") for e in done)


def test_a_commissioner_sees_no_names_notes_or_carers(month: dict[Role, httpx.Client]) -> None:
    commissioner, manager = month[Role.COMMISSIONER], month[Role.MANAGER]
    # routes with residents' names, care notes or carers' whereabouts are refused
    for path in ("/api/v1/alarms", "/api/v1/carers", "/api/v1/events", "/api/v1/audit"):
        assert commissioner.get(path).status_code == 403, path
    alarm = str(MARCH[0].alarm_id)
    assert commissioner.get(f"/api/v1/alarms/{alarm}").status_code == 403
    # the KPI pack names the waking night but not the carer, for a commissioner
    q = {"period": "quarter", "on": "2026-03-01"}
    theirs = commissioner.get(f"/api/v1/reports/{HZC}/kpi", params=q).json()
    ours = manager.get(f"/api/v1/reports/{HZC}/kpi", params=q).json()
    assert [n["carer_id"] for n in theirs["waking_nights"]] == [None]
    assert [n["carer_id"] for n in ours["waking_nights"]] == ["cw-05"]
    scheme = load_scheme(SCHEME)
    secret = [r.display_name for r in scheme.residents] + [c.display_name for c in scheme.carers]
    secret += [r.care_notes for r in scheme.residents if len(r.care_notes) > 12]
    secret += [c.id for c in scheme.carers] + ["private note"]
    for kind in ("response", "kpi", "notifiable", "visits"):
        for fmt in ("json", "csv"):
            r = commissioner.get(f"/api/v1/reports/{HZC}/{kind}", params={**q, "format": fmt})
            assert r.status_code == 200, (kind, fmt, r.text)
            leaked = [x for x in secret if x in r.text]
            assert not leaked, f"{kind} {fmt} shows {leaked[:3]}"
    page = commissioner.get("/reports", params=MONTH)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not [x for x in secret if x in page.text]
    drawn = dict(re.findall(r'data-chart="([\w-]+)" data-points="(\d+)"', page.text))
    assert set(drawn) == {"distribution", "weekly-trend", "within-target", "night-day"}
    assert all(int(n) > 0 for n in drawn.values()), drawn


def test_schedule3_route(month: dict[Role, httpx.Client], gateway: GatewayEnv) -> None:
    """``/schedule3``: whole weeks from a Monday, CSV or JSON, readers only, audited."""
    agreed = datetime(2026, 3, 3, 23, 30, tzinfo=UTC)  # Tuesday night, week of 2 March
    plan = {"service": "Home care", "level": "Night - single", "minutes": 20}
    rows = [
        (agreed - timedelta(hours=11), "planned", None, plan),
        (agreed + timedelta(minutes=20), "checked_in", "cw-01", {}),
        (agreed + timedelta(minutes=45), "checked_out", "cw-01", {}),
    ]
    with psycopg.connect(gateway.dsn) as conn:
        for i, (at, step, carer, detail) in enumerate(rows):
            conn.execute(
                "INSERT INTO visit_events (at, scheme, night, visit_id, run, client_ref, step,"
                " carer_id, agreed_at, detail, gateway_id, journal_seq)"
                " VALUES (%s, %s, '2026-03-03', 'v1', 'run-1', 'LBL-EC-6582', %s, %s, %s,"
                " %s::jsonb, 'gw-x', %s)",
                (at, HZC, step, carer, agreed, json.dumps(detail), i + 1),
            )
    url = f"/api/v1/reports/{HZC}/schedule3"
    q = {"start": "2026-03-02", "weeks": 4}
    c = month[Role.COMMISSIONER]
    body = c.get(url, params=q).json()
    assert body["weeks"] == 4 and body["head"]["period"]["last_day"] == "2026-03-29"
    assert body["punctuality"]["late_15_to_30"] == 1
    r = c.get(url, params={**q, "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    (row,) = list(csv.DictReader(io.StringIO(r.text)))
    assert (row["Client Reference"], row["Week Start"], row["End Date"]) == (
        "LBL-EC-6582",
        "2026-03-02",
        "2026-03-08",
    )
    assert (row["Actual Quantity"], row["Number of Visits"], row["Call Duration (minutes)"]) == (
        "1",
        "1",
        "25",
    )
    assert c.get(url, params={"start": "2026-03-04"}).status_code == 404  # a Wednesday
    assert c.get(url, params={**q, "weeks": 0}).status_code == 422
    assert month[Role.CONTROL_ROOM].get(url, params=q).status_code == 403
    m = month[Role.MANAGER]
    wait_for(
        lambda: any(
            e["target"].startswith(f"schedule3 {HZC}")
            for e in m.get("/api/v1/audit", params={"action": "reports.export"}).json()
        ),
        30,
        what="the schedule 3 export on the audit trail",
    )
