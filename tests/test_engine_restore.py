"""After a restart the engine knows when each device was last heard from (from the journal)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from devices.decoders import Decoded
from devices.records import RECORDS
from gateway.clock import Clock
from gateway.config import Settings
from gateway.engine.shell import EngineService
from gateway.journal import Incoming, Journal
from gateway.metrics import Metrics
from gateway.registry import SchemeRegistry
from tests.engine_helpers import HZC


def test_last_contact_survives_a_restart(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.db")
    journal.open()
    heard_at = datetime.now(UTC) - timedelta(minutes=10)
    body = {
        "event_id": str(uuid.uuid4()),
        "device_id": "hzc-a-001-hub",
        "kind": "heartbeat",
        "occurred_at": heard_at.isoformat(),
    }
    rec = Decoded.of(HZC.id, RECORDS.validate_python({**body, "record_type": "event"}))
    journal.commit([Incoming("t", heard_at, records=[rec])])
    with ThreadPoolExecutor(1) as writer:
        engine = EngineService(
            Settings(), SchemeRegistry([HZC]), journal, writer, Metrics(), Clock()
        )
        engine._load()
    seen = engine.state.device_seen
    assert seen[f"{HZC.id}/hzc-a-001-hub"] == heard_at
    # A device never heard from starts its grace period now.
    assert seen[f"{HZC.id}/hzc-a-002-hub"] > heard_at + timedelta(minutes=9)
