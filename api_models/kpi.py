"""The control room's KPI strip, computed by the gateway from the record (TimescaleDB)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api_models.common import Shape


class KpiFigures(Shape):
    """Alarms raised in one window, and how fast they were answered."""

    window: str = Field(description="'tonight' (the scheme's night window) or 'today'.")
    start: datetime
    end: datetime
    alarms: int = 0
    accepted: int = 0
    arrived: int = 0
    accept_median_s: float | None = None
    accept_p90_s: float | None = None
    arrive_median_s: float | None = None
    arrive_p90_s: float | None = None
    judged: int = Field(
        default=0, description="Alarms whose on-site target has been met or missed so far."
    )
    within_target_pct: float | None = Field(
        default=None, description="Of the judged alarms, the share with a carer on site in time."
    )


class SchemeKpi(Shape):
    """``GET /api/v1/kpi``: one scheme's figures for tonight and today."""

    scheme: str
    now: datetime
    tonight: KpiFigures
    today: KpiFigures
    hourly: tuple[int, ...] = Field(
        default=(), description="Alarms raised per hour over the last hours, oldest first."
    )
    hourly_start: datetime | None = None
    targets_s: dict[str, int] = Field(
        default_factory=dict, description="On-site target per priority, in seconds."
    )
