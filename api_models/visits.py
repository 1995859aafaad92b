"""Planned visits: one night's visits for the control room (``/api/v1/visits/...``), its
changes (cancel, move, contacted, extra), and a carer's run for the carer page.

Clients are named by the Council's client reference, never by name, except on the carer's own
run (``RunVisit``), which says where to go as an offer does.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, Field

from api_models.common import Shape
from devices.storable import StoredText
from responders.protocol import VISIT_ID, FrustratedReason, VisitAction


class VisitView(Shape):
    visit_id: str
    run: str
    client: str = Field(description="The client reference (pseudonymous), never a name.")
    agreed_at: datetime
    window_min: int
    minutes: int
    double: bool
    critical: bool
    service: str
    level: str
    extra: bool = False
    status: str = Field(
        description="planned, checked_in, checked_out, frustrated, cancelled or missed."
    )
    checked_in_at: datetime | None = None
    checked_out_at: datetime | None = None
    carer: str | None = Field(default=None, description="Who checked in.")
    late_alerted: bool = False
    contact_raised: bool = False
    contacted_at: datetime | None = None
    non_arrival_opened: bool = False
    late_notice: bool = False
    reason: str | None = None
    pulled_away: str | None = Field(default=None, description="The alarm that took the carer.")


class NightVisits(Shape):
    scheme: str
    night: date = Field(description="The local date the night starts (noon to noon).")
    ended: bool = Field(description="07:00 local has passed: open visits were missed.")
    visits: list[VisitView]


class _Change(Shape):
    request_id: uuid.UUID | None = Field(
        default=None, description="Idempotency key: a retry with the same id is applied once."
    )
    night: date | None = Field(
        default=None,
        description="The night to change (its local start date); default the live night.",
    )


class VisitCancelIn(_Change):
    by: Literal["person", "council"]
    reason: StoredText = Field(default="", max_length=200)


class VisitMoveIn(_Change):
    agreed_at: AwareDatetime = Field(description="The new agreed time, with its UTC offset.")


class VisitContactedIn(_Change):
    note: StoredText = Field(default="", max_length=1000)


class VisitExtraIn(_Change):
    visit_id: str = Field(pattern=VISIT_ID)
    run: str = Field(pattern=VISIT_ID)
    client: str = Field(min_length=1, max_length=64, description="A resident's client_ref.")
    agreed_at: AwareDatetime
    minutes: int = Field(ge=1, le=480)
    double: bool = False
    service: StoredText = Field(min_length=1, max_length=120)
    level: StoredText = Field(min_length=1, max_length=120)
    window_min: int = Field(default=30, ge=1, le=240)
    critical: bool = False


class ChangeStatus(StrEnum):
    ACCEPTED = "accepted"  # journaled; the engine applies it next
    DUPLICATE = "duplicate"  # a retry of a request_id already journaled
    ALREADY = "already"  # the night is already where you wanted it: nothing was queued


class VisitChangeAccepted(Shape):
    status: ChangeStatus
    op: str
    visit_id: str
    night: date


# ---- the carer page -----------------------------------------------------------------------


class CarerVisitIn(Shape):
    """A check-in, check-out, frustrated visit or contact from the carer page."""

    visit_action_id: uuid.UUID | None = Field(
        default=None, description="Chosen by the page so a retry is recognised as the same tap."
    )
    action: VisitAction
    visit_id: str = Field(pattern=VISIT_ID)
    reason: FrustratedReason | None = None
    note: str = Field(default="", max_length=1000)


class CarerVisitAccepted(Shape):
    visit_action_id: str


class RunVisit(Shape):
    visit_id: str
    agreed_at: datetime
    window_min: int
    minutes: int
    double: bool
    critical: bool
    status: str
    late: bool = Field(description="Still planned after its agreed time.")
    resident_name: str | None = None
    flat: str | None = None
    block: str | None = None


class CarerRun(Shape):
    scheme: str
    carer_id: str
    run: str | None = Field(description="The run this carer is on; None: no run tonight.")
    night: date | None
    visits: list[RunVisit]
