"""Liveness, readiness, the scheme clock and the ingest figures."""

from __future__ import annotations

from datetime import datetime

from api_models.common import Shape


class Health(Shape):
    """``GET /healthz``."""

    status: str = "ok"


class Readiness(Shape):
    """``GET /readyz`` (the body is the same on 200 and 503)."""

    ready: bool = False
    journal: bool = False
    engine: bool = False
    mqtt: bool = False
    database: bool = False
    database_error: str | None = None


class ClockReading(Shape):
    """``GET /api/v1/clock``: scheme time now, how fast it runs and where it is anchored."""

    now: datetime
    speed: float = 1.0
    anchor_real: float | None = None
    anchor_scheme: datetime | None = None


class IngestStats(Shape):
    """``GET /api/v1/ingest``: journal heads, what has been shipped, the schemes served."""

    gateway_id: str
    journal_epoch: str
    journal_head: dict[str, int]
    shipped: dict[str, int]
    schemes: list[str]
