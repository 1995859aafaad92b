"""The gateway API's shapes as the control room reads them (pydantic at the boundary).

Each model mirrors one JSON shape from ``gateway/http.py``; unknown fields are ignored so the
gateway can add fields without breaking a running control room.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PRIORITY_RANK = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class StreamShipping(_Shape):
    """One journal stream's way into the database (``/readyz`` ``shipping``)."""

    lag_rows: int = 0
    quarantined: int = 0
    last_error: str | None = None


class Readiness(_Shape):
    """``GET /readyz`` (the body is the same on 200 and 503)."""

    ready: bool = False
    journal: bool = False
    engine: bool = False
    mqtt: bool = False
    database: bool = False
    database_error: str | None = None
    shipping: dict[str, StreamShipping] = Field(default_factory=dict)

    @property
    def quarantined(self) -> int:
        """Rows the database refused and the gateway set aside (the rest still ships)."""
        return sum(s.quarantined for s in self.shipping.values())

    @property
    def unshipped(self) -> int:
        return sum(s.lag_rows for s in self.shipping.values())


class ClockReading(_Shape):
    """``GET /api/v1/clock``: scheme time now and how fast it runs."""

    now: datetime
    speed: float = 1.0


class Offer(_Shape):
    carer_id: str
    offer_id: str
    role: str
    sent_at: datetime


class Deadline(_Shape):
    due: datetime
    kind: str


class Alarm(_Shape):
    """One row of ``GET /api/v1/alarms?open=true``."""

    alarm_id: str
    scheme: str
    kind: str
    priority: str
    state: str
    opened_at: datetime
    resident_ref: str | None = None
    flat_id: str | None = None
    accepted_by: tuple[str, ...] = ()
    arrived_by: tuple[str, ...] = ()
    offers: tuple[Offer, ...] = ()
    deadline: Deadline | None = None
    count: int = 1
    welfare_check: bool = False
    double_handed: bool = False

    @property
    def rank(self) -> tuple[int, datetime]:
        """Control-room order: most urgent first, then oldest."""
        return (PRIORITY_RANK.get(self.priority, len(PRIORITY_RANK)), self.opened_at)


class Position(_Shape):
    flat: str | None = None
    block: str | None = None
    x: float | None = None
    y: float | None = None
    floor: int = 0


class Carer(_Shape):
    """One row of ``GET /api/v1/carers``."""

    scheme: str
    carer_id: str
    on_shift: tuple[str, ...] = ()
    logged_in: bool = False
    status: str = "available"
    handset_seen: datetime | None = None
    position: Position = Position()
    busy_with: str | None = None
    routable: bool = False
    reason: str = ""

    @property
    def key(self) -> str:
        return f"{self.scheme}/{self.carer_id}"


class TimelineRow(_Shape):
    at: datetime
    step: str
    priority: str
    carer_id: str | None = None
    occurred_at: datetime | None = None
    received_at: datetime | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class Candidate(_Shape):
    carer: str
    eligible: bool
    reason: str = ""
    travel_s: float | None = None
    route: str = ""
    preempts: str | None = None


class DecisionRecord(_Shape):
    """A routing decision: a numbered offer step with candidates, or ``"escalate"``."""

    model_config = ConfigDict(frozen=True, extra="allow")

    step: int | str
    rule: str = ""
    priority: str | None = None
    needed: int | None = None
    candidates: tuple[Candidate, ...] = ()
    chosen: tuple[str, ...] = ()
    offered_to_all: tuple[str, ...] | None = None


class Decision(_Shape):
    at: datetime
    record: DecisionRecord


class AlarmDetail(_Shape):
    """``GET /api/v1/alarms/{id}``: live state (None once closed), timeline and decisions."""

    alarm: Alarm | None = None
    timeline: tuple[TimelineRow, ...] = ()
    decisions: tuple[Decision, ...] = ()


class Alert(_Shape):
    """One ``event: alert`` from ``GET /api/v1/alerts/stream``.

    ``type`` is alert, on_call, edt, follow_up or technical; only ``alert`` carries a priority
    and code, ``technical`` carries a code and device, ``on_call`` the carer told.
    """

    type: str = "alert"
    message: str = ""
    scheme: str | None = None
    at: datetime | None = None
    priority: str | None = None
    code: str | None = None
    alarm_id: str | None = None
    carer_id: str | None = None
    device_id: str | None = None
    kind: str | None = None
    cleared: bool | None = None
