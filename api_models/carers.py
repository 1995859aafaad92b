"""Carers as the control room sees them, and the control room's status override."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from api_models.common import Shape


class CarerStatusName(StrEnum):
    AVAILABLE = "available"
    ON_BREAK = "on_break"
    UNAVAILABLE = "unavailable"


class Position(Shape):
    flat: str | None = None
    block: str | None = None
    x: float | None = None
    y: float | None = None
    floor: int = 0


class Carer(Shape):
    """One row of ``GET /api/v1/carers``."""

    scheme: str
    carer_id: str
    display_name: str | None = None
    on_shift: tuple[str, ...] = ()
    logged_in: bool = False
    status: str = "available"
    handset_seen: datetime | None = None
    position: Position = Position()
    busy_with: str | None = None
    routable: bool = False
    reason: str = ""
    disturbances_tonight: int = Field(
        default=0, description="Alarms attended tonight on a sleep-in (more than 2: waking night)."
    )

    @property
    def key(self) -> str:
        return f"{self.scheme}/{self.carer_id}"


class CarerStatusIn(Shape):
    """``POST /api/v1/carers/{scheme}/{carer}/status``."""

    status: CarerStatusName
