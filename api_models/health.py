"""Liveness, readiness, the scheme clock and the ingest figures."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api_models.common import Shape


class Health(Shape):
    """``GET /healthz``."""

    status: str = "ok"


class StreamStatus(Shape):
    """One journal stream's way into TimescaleDB (``records``, ``dead_letters``,
    ``engine_log``)."""

    head: int = 0  # highest journal sequence written
    shipped: int = 0  # highest sequence in the database (shipped or quarantined)
    lag_rows: int = 0
    oldest_unshipped_at: datetime | None = None  # the gateway's stamp on the oldest row waiting
    quarantined: int = 0  # rows the database refused, set aside in ship_quarantine
    last_error: str | None = None  # the last row refusal or stall on this stream
    last_error_at: datetime | None = None


class ShipperStatus(Shape):
    """The shipper as a whole: is the database reachable, and each stream's state."""

    database_up: bool = False
    database_error: str | None = None  # why it is unreachable; None while it is up
    lag_seconds: float = 0.0  # age of the oldest device record not yet in the database
    streams: dict[str, StreamStatus] = Field(default_factory=dict)


class Readiness(Shape):
    """``GET /readyz`` (the body is the same on 200 and 503)."""

    ready: bool = False
    journal: bool = False
    engine: bool = False
    mqtt: bool = False
    database: bool = False
    database_error: str | None = None
    shipping: dict[str, StreamStatus] = Field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        """Rows the database refused and the gateway set aside (the rest still ships)."""
        return sum(s.quarantined for s in self.shipping.values())

    @property
    def unshipped(self) -> int:
        """Journal rows not yet in the database, over every stream."""
        return sum(s.lag_rows for s in self.shipping.values())


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
    shipping: ShipperStatus = Field(default_factory=ShipperStatus)
    schemes: list[str]
