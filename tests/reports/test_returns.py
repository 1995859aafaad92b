"""The councils' returns: the quarterly KPI pack, notifiable events with the next-working-day
rule (across the Easter bank holidays), Thurrock's per-client weekly visits, and the CSVs."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import psycopg
import pytest

from gateway.reports import csvout, figures
from gateway.reports.scope import (
    PeriodKind,
    Scope,
    is_working_day,
    next_working_day,
    period,
)
from gateway.reports.targets import DEFAULT_TARGETS
from tests.reports.lifecycle import (
    Spec,
    insert,
    insert_disturbances,
    insert_raising_records,
    insert_technical,
)
from tests.reports.test_figures import MARCH, std

LONDON = ZoneInfo("Europe/London")


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def scope(kind: PeriodKind, on: date, until: date | None = None, **kw: object) -> Scope:
    return Scope(
        scheme_id="s1",
        scheme_name="Scheme one",
        tz=LONDON,
        night_start=time(23),
        night_end=time(7),
        period=period(kind, on, until),
        targets=DEFAULT_TARGETS,
        **kw,  # type: ignore[arg-type]
    )


def test_next_working_day_knows_the_english_bank_holidays() -> None:
    # Easter 2026: Good Friday 3 April and Easter Monday 6 April.
    assert next_working_day(date(2026, 4, 2)) == date(2026, 4, 7)  # Thursday
    assert next_working_day(date(2026, 4, 4)) == date(2026, 4, 7)  # Saturday
    assert next_working_day(date(2026, 4, 7)) == date(2026, 4, 8)
    assert next_working_day(date(2026, 5, 22)) == date(2026, 5, 26)  # spring bank holiday
    # Christmas 2026: Boxing Day is a Saturday, so Monday 28 is the substitute holiday.
    assert next_working_day(date(2026, 12, 24)) == date(2026, 12, 29)
    assert not is_working_day(date(2026, 12, 28))
    assert is_working_day(date(2026, 3, 30))


pytestmark = pytest.mark.integration


async def test_quarterly_kpi_pack(report_db: str) -> None:
    insert(report_db, MARCH)
    insert_disturbances(
        report_db,
        "s1",
        [
            # cw-05 woken three times on the night of 13 March: a waking night
            ("cw-05", "2026-03-13", utc(2026, 3, 13, 23, 10)),
            ("cw-05", "2026-03-13", utc(2026, 3, 14, 1, 0)),
            ("cw-05", "2026-03-13", utc(2026, 3, 14, 4, 0)),
            # twice on the 14th: not
            ("cw-05", "2026-03-14", utc(2026, 3, 14, 23, 10)),
            ("cw-05", "2026-03-14", utc(2026, 3, 15, 2, 0)),
            # the night of 31 March runs into April: still the quarter's
            ("cw-06", "2026-03-31", utc(2026, 3, 31, 22, 30)),
            ("cw-06", "2026-03-31", utc(2026, 3, 31, 23, 30)),
            ("cw-06", "2026-03-31", utc(2026, 4, 1, 1, 0)),
            # the night of 31 December belongs to the previous quarter
            ("cw-06", "2025-12-31", utc(2026, 1, 1, 0, 30)),
            ("cw-06", "2025-12-31", utc(2026, 1, 1, 1, 30)),
            ("cw-06", "2025-12-31", utc(2026, 1, 1, 2, 30)),
        ],
    )
    t0 = utc(2026, 2, 10, 9)
    insert_technical(
        report_db,
        "s1",
        [
            ("d1", "power_fail", t0),
            ("d1", "power_fail", utc(2026, 2, 10, 9, 1)),  # a repeat: the same episode
            ("d1", "power_fail_cleared", utc(2026, 2, 10, 9, 10)),
            ("d2", "no_contact", utc(2026, 3, 1, 12)),
            ("d2", "no_contact_cleared", utc(2026, 3, 1, 13)),
            ("d3", "low_battery", utc(2026, 3, 20, 8)),  # not yet mended
        ],
    )
    async with await psycopg.AsyncConnection.connect(report_db) as conn:
        pack = await figures.kpi_pack(conn, scope(PeriodKind.QUARTER, date(2026, 2, 1)))
        hidden = await figures.kpi_pack(
            conn, scope(PeriodKind.QUARTER, date(2026, 2, 1)), carers=False
        )
    # Q1 holds March's 14 alarms and a13 (28 February): 15, of which a8 is a test call.
    assert pack.alarms == 14
    assert (pack.falls, pack.falls_with_ambulance) == (1, 1)  # a3
    assert (pack.hospital_admissions, pack.ambulance) == (1, 2)  # a4; a3 + a4
    assert pack.unable_to_gain_access == 1  # a5
    assert pack.emergency_callouts == 1  # a16: 1800 s from deploy to arrival
    assert [(w.met, w.of, w.pct) for w in pack.callouts_within] == [(1, 1, 100.0)] * 2
    by_kind = {k.kind: (k.alarms, k.counted) for k in pack.by_kind}
    # a1 a2 a4 a5 a6 a7 a9 a10 a11 a13 (a8 is a test call); a6 and a7 are not counted
    assert by_kind["pendant_press"] == (10, 8)
    assert [(n.night, n.carer_id, n.disturbances) for n in pack.waking_nights] == [
        (date(2026, 3, 13), "cw-05", 3),
        (date(2026, 3, 31), "cw-06", 3),
    ]
    assert all(n.carer_id is None for n in hidden.waking_nights)
    faults = {f.code: (f.faults, f.mended, f.mend_p50_s, f.mend_max_s) for f in pack.faults}
    assert faults == {
        "all": (3, 2, 600.0, 3600.0),
        "low_battery": (1, 0, None, None),
        "no_contact": (1, 1, 3600.0, 3600.0),
        "power_fail": (1, 1, 600.0, 600.0),
    }
    rows = list(csv.reader(io.StringIO(csvout.kpi_csv(pack))))
    assert rows[0] == ["scheme", "period", "first_day", "last_day", "section", "item", "value"]
    assert ["s1", "2026-Q1", "2026-01-01", "2026-03-31", "incidents", "falls", "1"] in rows


EASTER = [
    # Thursday 2 April 2026, 23:30 BST: hospital admission, due Tuesday 7 April
    std(
        "e1",
        utc(2026, 4, 2, 22, 30),
        30,
        300,
        resolve=1200,
        outcome="hospital_admission",
    ),
    # Saturday 4 April: unable to gain access, due Tuesday 7 April
    std("e2", utc(2026, 4, 4, 10), 30, 300, resolve=1200, outcome="unable_to_gain_access"),
    # Sunday 5 April: a fire (P0), the fire service called
    Spec(
        "e3",
        utc(2026, 4, 5, 3),
        kind="smoke",
        priority="P0",
        steps=[("escalated", 0), ("accepted", 10), ("arrived", 60), ("resolved", 900)],
        outcome="fire_service_called",
    ),
    # Tuesday 7 April: a Careline call-out, the client not at home (not returning)
    std("e4", utc(2026, 4, 7, 20), 30, 300, resolve=600, outcome="not_at_home", kind="callout"),
    # not notifiable: assisted, and a cancelled fire
    std("e5", utc(2026, 4, 3, 12), 30, 300, resolve=600),
    Spec(
        "e6",
        utc(2026, 4, 3, 13),
        kind="smoke",
        priority="P0",
        steps=[("escalated", 0), ("cancelled", 30)],
    ),
]


async def test_notifiable_events_are_due_the_next_working_day(report_db: str) -> None:
    insert(report_db, EASTER)
    insert_raising_records(
        report_db,
        EASTER,
        {"e1": "hzc-a-001-pendant", "e2": "hzc-a-002-pendant", "e4": "callout:LBL-EC-9999"},
    )
    sc = scope(
        PeriodKind.CUSTOM,
        date(2026, 4, 2),
        date(2026, 4, 7),
        clients={"hzc-a-001-pendant": "LBL-EC-6582", "hzc-a-002-pendant": "LBL-EC-2410"},
    )
    async with await psycopg.AsyncConnection.connect(report_db) as conn:
        listed = await figures.notifiable(conn, sc)
    got = [(e.category, e.client_ref, e.local_day, e.notify_by) for e in listed.events]
    assert got == [
        ("hospital_admission", "LBL-EC-6582", date(2026, 4, 2), date(2026, 4, 7)),
        ("unable_to_gain_access", "LBL-EC-2410", date(2026, 4, 4), date(2026, 4, 7)),
        ("major_incident", None, date(2026, 4, 5), date(2026, 4, 7)),
        ("not_returning", "LBL-EC-9999", date(2026, 4, 7), date(2026, 4, 8)),
    ]
    text = csvout.notifiable_csv(listed)
    assert "note" not in text.lower() and "private" not in text  # carers' notes never leave
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["notify_by"] == "2026-04-07" and rows[0]["client_ref"] == "LBL-EC-6582"


async def test_visits_per_client_per_week(report_db: str) -> None:
    specs = [
        std("v1", utc(2026, 3, 2, 23, 30), 30, 600, resolve=1800, kind="callout"),
        std("v2", utc(2026, 3, 4, 23, 30), 30, 300, resolve=600, kind="callout"),
        std("v3", utc(2026, 3, 5, 2), 30, 300, resolve=600, outcome="unable_to_gain_access"),
        std("v4", utc(2026, 3, 6, 2), 30, None, kind="callout"),  # never arrived: missed
        Spec("v5", utc(2026, 3, 7, 2), kind="callout", steps=[("cancelled", 10)]),
        # Sunday 8 March 23:30 GMT is still the week of 2 March; Monday 9 March starts another
        std("v6", utc(2026, 3, 8, 23, 30), 30, 60, resolve=360, kind="callout"),
        std("v7", utc(2026, 3, 9, 0, 30), 30, 60, resolve=360, kind="callout"),
    ]
    specs = [replace(s, scheme="s1") for s in specs]
    insert(report_db, specs)
    insert_raising_records(
        report_db,
        specs,
        {
            "v1": "callout:TH-1",
            "v2": "callout:TH-1",
            "v3": "pend-2",
            "v4": "callout:TH-1",
            "v5": "callout:TH-1",
            "v6": "callout:TH-1",
            "v7": "callout:TH-1",
        },
    )
    sc = scope(PeriodKind.MONTH, date(2026, 3, 1), clients={"pend-2": "TH-2"})
    async with await psycopg.AsyncConnection.connect(report_db) as conn:
        ret = await figures.visits(conn, sc)
    got = [
        (r.client_ref, r.week_start, r.actual, r.frustrated, r.cancelled, r.missed, r.visits)
        for r in ret.rows
    ]
    assert got == [
        ("TH-1", date(2026, 3, 2), 3, 0, 1, 1, 3),  # v1 v2 v6 actual; v5 cancelled; v4 missed
        ("TH-1", date(2026, 3, 9), 1, 0, 0, 0, 1),  # v7
        ("TH-2", date(2026, 3, 2), 0, 1, 0, 0, 1),  # v3 frustrated
    ]
    # call duration: v1 arrived at 601 s, resolved at 1800 s; v2 301 -> 600; v6 61 -> 360
    assert ret.rows[0].duration_s == (1800 - 601) + (600 - 301) + (360 - 61)
    rows = list(csv.reader(io.StringIO(csvout.visits_csv(ret))))
    assert rows[0][:4] == ["Service", "Service Level Type", "Client Reference", "Start Date"]
    assert rows[1][2:6] == ["TH-1", "2026-03-02", "3", "0"]
