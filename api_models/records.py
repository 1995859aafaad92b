"""Rows read back from TimescaleDB: device events and dead letters."""

from __future__ import annotations

import uuid
from datetime import datetime

from api_models.common import Shape


class DeviceEventRow(Shape):
    """One row of ``GET /api/v1/events``."""

    received_at: datetime
    occurred_at: datetime
    event_id: uuid.UUID
    scheme: str
    device_id: str
    kind: str
    location: str | None = None
    battery_pct: int | None = None


class DeadLetterRow(Shape):
    """One row of ``GET /api/v1/dead-letters`` (the payload itself is never returned)."""

    received_at: datetime
    topic: str
    scheme: str | None = None
    reason: str
    detail: str | None = None
    payload_size: int
