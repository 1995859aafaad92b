"""Alarms as the engine holds them, their timeline and their routing decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from api_models.common import Shape

PRIORITY_RANK = {"P0": 0, "P1": 1, "P2": 2, "P3": 3}


class Offer(Shape):
    offer_id: str
    carer_id: str
    sent_at: datetime
    role: str = Field(description="primary, second (double-handed) or all (escalated).")


class Deadline(Shape):
    due: datetime
    kind: str
    epoch: int = 0


class Alarm(Shape):
    """One alarm held by the engine (``GET /api/v1/alarms``)."""

    alarm_id: str
    scheme: str
    kind: str = Field(description="The event kind, or 'callout'.")
    priority: str
    state: str
    opened_at: datetime
    received_at: datetime | None = None
    last_at: datetime | None = None
    resident_ref: str | None = None
    flat_id: str | None = None
    device_id: str | None = None
    callout_id: str | None = None
    double_handed: bool = False
    alert_control_room: bool = False
    welfare_check: bool = False
    count: int = 1
    offers: tuple[Offer, ...] = ()
    offers_sent: int = 0
    tried: tuple[str, ...] = ()
    accepted_by: tuple[str, ...] = ()
    arrived_by: tuple[str, ...] = ()
    deadline: Deadline | None = None
    epoch: int = 0
    outcome: str | None = None
    note: str = ""
    reason: str = ""
    silenced_until: datetime | None = Field(
        default=None, description="Repeat alerts held until then (the control room silenced it)."
    )
    acked_by: str | None = Field(default=None, description="Who acknowledged its alerts.")
    acked_state: str | None = Field(
        default=None, description="The state it was acknowledged in: repeats held while in it."
    )

    @property
    def rank(self) -> tuple[int, datetime]:
        """Control-room order: most urgent first, then oldest."""
        return (PRIORITY_RANK.get(self.priority, len(PRIORITY_RANK)), self.opened_at)


class TimelineRow(Shape):
    at: datetime
    step: str
    priority: str
    carer_id: str | None = None
    occurred_at: datetime | None = None
    received_at: datetime | None = None
    detail: dict[str, Any] = Field(default_factory=dict)


class Candidate(Shape):
    carer: str
    eligible: bool
    reason: str = ""
    travel_s: float | None = None
    route: str = ""
    preempts: str | None = None


class DecisionRecord(Shape):
    """A routing decision: a numbered offer step with candidates, or ``"escalate"``."""

    model_config = ConfigDict(frozen=True, extra="allow")

    step: int | str
    rule: str = ""
    priority: str | None = None
    needed: int | None = None
    candidates: tuple[Candidate, ...] = ()
    chosen: tuple[str, ...] = ()
    offered_to_all: tuple[str, ...] | None = None


class Decision(Shape):
    at: datetime
    record: DecisionRecord


class AlarmDetail(Shape):
    """``GET /api/v1/alarms/{id}``: live state (None once closed), timeline and decisions."""

    alarm: Alarm | None = None
    timeline: tuple[TimelineRow, ...] = ()
    decisions: tuple[Decision, ...] = ()
