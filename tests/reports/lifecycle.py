"""Hand-made alarm lifecycles, written as the shipper writes them (``alarm_events`` rows)."""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

_SEQ = itertools.count(1)


@dataclass
class Spec:
    """One alarm: its receipt time, then each step at so many seconds after it."""

    name: str
    received: datetime
    kind: str = "pendant_press"
    priority: str = "P1"
    scheme: str = "s1"
    steps: list[tuple[str, float]] = field(default_factory=list)
    outcome: str | None = None
    carer: str = "cw-01"
    test_call: bool = False

    @property
    def alarm_id(self) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"report-test/{self.name}")

    def at(self, step: str) -> datetime | None:
        for s, off in self.steps:
            if s == step:
                return self.received + timedelta(seconds=off)
        return None


def rows(spec: Spec) -> list[tuple[Any, ...]]:
    first = "test_call" if spec.test_call else "raised"
    # The engine stamps the raise a little after the receipt: figures count from the receipt.
    out = [
        (
            spec.received + timedelta(milliseconds=150),
            first,
            None,
            spec.received,
            {"kind": spec.kind, "reason": "test"},
        )
    ]
    for step, off in spec.steps:
        at = spec.received + timedelta(seconds=off)
        detail: dict[str, Any] = {}
        carer = spec.carer if step in ("offered", "accepted", "arrived", "resolved") else None
        if step == "resolved":
            detail = {"outcome": spec.outcome, "note": "private note"}
        out.append((at, step, carer, at, detail))
    return [
        (
            at,
            spec.alarm_id,
            spec.scheme,
            step,
            spec.priority,
            carer,
            received,
            received,
            json.dumps(detail),
            "gw-test",
            next(_SEQ),
        )
        for at, step, carer, received, detail in out
    ]


def insert(dsn: str, specs: list[Spec]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO alarm_events (at, alarm_id, scheme, step, priority, carer_id,"
            " occurred_at, received_at, detail, gateway_id, journal_seq)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [r for s in specs for r in rows(s)],
        )


def insert_raising_records(dsn: str, specs: list[Spec], devices: dict[str, str]) -> None:
    """The device event (or Careline call-out) behind each alarm, at its receipt time: the
    alarm's client is found through it. ``devices`` maps alarm name -> device id, or
    'callout:<client ref>' for a call-out."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        for s in specs:
            source = devices.get(s.name)
            if source is None:
                continue
            if source.startswith("callout:"):
                cur.execute(
                    "INSERT INTO careline_callouts (received_at, requested_at, callout_id,"
                    " scheme, resident_ref, reason, priority, operator, notes, gateway_id,"
                    " journal_seq) VALUES (%s, %s, %s, %s, %s, 'fell', %s, 'op', '', 'gw', %s)",
                    (s.received, s.received, s.name, s.scheme, source[8:], s.priority, 1),
                )
            else:
                cur.execute(
                    "INSERT INTO device_events (received_at, occurred_at, event_id, scheme,"
                    " device_id, kind, topic, gateway_id, journal_seq)"
                    " VALUES (%s, %s, %s, %s, %s, %s, 't', 'gw', %s)",
                    (s.received, s.received, uuid.uuid4(), s.scheme, source, s.kind, 1),
                )


def insert_disturbances(dsn: str, scheme: str, rows: list[tuple[str, str, datetime]]) -> None:
    """Sleep-in disturbances as the engine records them: (carer, night, at)."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        for carer, night, at in rows:
            cur.execute(
                "INSERT INTO alarm_events (at, alarm_id, scheme, step, priority, carer_id,"
                " detail, gateway_id, journal_seq)"
                " VALUES (%s, %s, %s, 'sleep_in_disturbance', 'P1', %s, %s, 'gw', %s)",
                (at, uuid.uuid4(), scheme, carer, json.dumps({"night": night}), next(_SEQ)),
            )


def insert_technical(dsn: str, scheme: str, rows: list[tuple[str, str, datetime]]) -> None:
    """Technical notifications as the engine records them: (device, code, at)."""
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        for device, code, at in rows:
            cur.execute(
                "INSERT INTO notifications (at, scheme, kind, code, target, message,"
                " gateway_id, journal_seq) VALUES (%s, %s, 'technical', %s, %s, 'm', 'gw', %s)",
                (at, scheme, code, device, next(_SEQ)),
            )
