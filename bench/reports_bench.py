"""Time the commissioners' figures on a large record: 1,000,000 alarms across 50 schemes.

    .venv/bin/python bench/reports_bench.py [--alarms 1000000] [--schemes 50] [--keep]

Makes a fresh database on the development server (TELECARE_DB__DSN's server), applies the
migrations, writes the alarms' lifecycles with one INSERT ... SELECT over generate_series
(five steps each: raised, offered, accepted, arrived, resolved; a tenth cancelled instead),
spread over 2026, then times, for one scheme, a month's response figures and the quarterly
KPI pack, each cold (first run) and warm (best of three). Prints the figures as JSON; the
results are recorded in docs/performance.md. Drops the database unless --keep.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import date
from datetime import time as dtime
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg

from gateway import storage
from gateway.config import Settings
from gateway.reports import figures
from gateway.reports.scope import PeriodKind, Scope, period
from gateway.reports.targets import DEFAULT_TARGETS

# Each alarm i: scheme s-(i % schemes), raised at a deterministic point of 2026, answered
# 5-204 s later, on site 60-3059 s after that, resolved 5 minutes after arrival.
GENERATE = """
INSERT INTO alarm_events (at, alarm_id, scheme, step, priority, carer_id, occurred_at,
                          received_at, detail, gateway_id, journal_seq)
SELECT a.t0 + make_interval(secs => s.off), a.alarm_id, a.scheme, s.step, a.priority,
       CASE WHEN s.step = 'raised' THEN NULL ELSE 'cw-01' END,
       a.t0 + make_interval(secs => s.off), a.t0 + make_interval(secs => s.off),
       CASE s.step WHEN 'raised' THEN jsonb_build_object('kind', a.kind)
                   WHEN 'resolved' THEN jsonb_build_object('outcome', a.outcome)
                   ELSE '{}'::jsonb END,
       'bench', a.i * 5 + s.n
  FROM (SELECT i,
               md5(i::text)::uuid AS alarm_id,
               's-' || (i %% %(schemes)s) AS scheme,
               (ARRAY['P1','P1','P1','P2','P0'])[1 + i %% 5] AS priority,
               (ARRAY['pendant_press','fall_detected','door_open','pendant_press','callout'])
                   [1 + (i / 7) %% 5] AS kind,
               (ARRAY['assisted','assisted','fall_injury_ambulance','hospital_admission',
                      'unable_to_gain_access','false_alarm'])[1 + (i / 3) %% 6] AS outcome,
               timestamptz '2026-01-01 00:00:00+00'
                   + make_interval(secs => (i::bigint * 7919) %% 31536000) AS t0,
               5 + (i * 37) %% 200 AS acc,
               60 + (i * 101) %% 3000 AS arr,
               i %% 10 = 9 AS cancelled
          FROM generate_series(0, %(alarms)s - 1) AS i) AS a
 CROSS JOIN LATERAL (VALUES
       (1, 'raised', 0),
       (2, 'offered', 1),
       (3, CASE WHEN a.cancelled THEN 'cancelled' ELSE 'accepted' END, a.acc),
       (4, CASE WHEN a.cancelled THEN NULL ELSE 'arrived' END, a.acc + a.arr),
       (5, CASE WHEN a.cancelled THEN NULL ELSE 'resolved' END, a.acc + a.arr + 300))
       AS s(n, step, off)
 WHERE s.step IS NOT NULL
"""


def scope(kind: PeriodKind, on: date) -> Scope:
    return Scope(
        scheme_id="s-7",
        scheme_name="bench scheme 7",
        tz=ZoneInfo("Europe/London"),
        night_start=dtime(23),
        night_end=dtime(7),
        period=period(kind, on),
        targets=DEFAULT_TARGETS,
    )


async def timed(dsn: str, what: str, fn: Any, sc: Scope) -> dict[str, Any]:
    runs = []
    for _ in range(4):
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            t = time.perf_counter()
            result = await fn(conn, sc)
            runs.append(time.perf_counter() - t)
    return {
        "what": what,
        "cold_s": round(runs[0], 3),
        "warm_best_s": round(min(runs[1:]), 3),
        "alarms_in_scope": getattr(result, "alarms", None)
        or next(g.alarms for g in result.groups if g.dimension == "all"),
    }


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alarms", type=int, default=1_000_000)
    ap.add_argument("--schemes", type=int, default=50)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    admin = Settings().db.dsn.get_secret_value()
    name = f"telecare_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    out: dict[str, Any] = {"database": name, "alarms": args.alarms, "schemes": args.schemes}
    try:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            await storage.migrate(conn)
            t = time.perf_counter()
            await conn.execute(GENERATE, {"alarms": args.alarms, "schemes": args.schemes})
            await conn.execute("ANALYZE alarm_events")
            out["generate_s"] = round(time.perf_counter() - t, 1)
            cur = await conn.execute("SELECT count(*) FROM alarm_events")
            row = await cur.fetchone()
            out["alarm_event_rows"] = row[0] if row else 0
        out["month_response"] = await timed(
            dsn,
            "response, one scheme, March",
            figures.response,
            scope(PeriodKind.MONTH, date(2026, 3, 1)),
        )
        out["quarter_kpi"] = await timed(
            dsn,
            "KPI pack, one scheme, Q1",
            figures.kpi_pack,
            scope(PeriodKind.QUARTER, date(2026, 1, 1)),
        )
        out["quarter_response"] = await timed(
            dsn,
            "response, one scheme, Q1",
            figures.response,
            scope(PeriodKind.QUARTER, date(2026, 1, 1)),
        )
    finally:
        if not args.keep:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
