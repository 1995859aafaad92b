"""The carer web page's API (``/carer/api/...``): sign-in, state, actions, presence."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from api_models.common import Shape
from responders.protocol import Action, OutcomeCode, PresenceKind


class CarerLoginIn(Shape):
    scheme: str = Field(min_length=1, max_length=64)
    carer_id: str = Field(min_length=1, max_length=64)
    token: str = Field(min_length=4, max_length=200, description="Issued token or PIN.")


class CarerSignedIn(Shape):
    scheme: str
    carer_id: str
    display_name: str


class ActionIn(Shape):
    action_id: uuid.UUID | None = Field(
        default=None, description="Chosen by the page so a retry is recognised as the same tap."
    )
    action: Action
    alarm_id: str = Field(min_length=1, max_length=64)
    offer_id: str | None = Field(default=None, max_length=80)
    outcome: OutcomeCode | None = None
    note: str = Field(default="", max_length=1000)


class ActionAccepted(Shape):
    action_id: str


class PresenceIn(Shape):
    what: PresenceKind
    flat: str | None = Field(default=None, max_length=32)


class AlarmForCarer(Shape):
    """What a carer needs for one alarm (no other residents, no client reference)."""

    offer_id: str
    alarm_id: str
    priority: str
    kind: str
    role: str
    resident_name: str | None = None
    flat: str | None = None
    flat_id: str | None = None
    block: str | None = None
    floor: int | None = None
    care_note: str = ""
    raised_at: datetime
    double_handed: bool = False
    welfare_check: bool = False
    count: int = 1


class DispatchOffer(AlarmForCarer):
    """A live offer to this carer."""

    type: str = "offer"


class HeldAlarm(AlarmForCarer):
    """An alarm this carer has accepted."""

    state: str
    arrived: bool = False


class CarerPageState(Shape):
    """``GET /carer/api/state``: everything this carer should see now."""

    carer_id: str
    display_name: str
    scheme: str
    now: datetime
    logged_in: bool
    on_shift: list[str]
    offers: list[DispatchOffer]
    alarms: list[HeldAlarm]
    disturbances_tonight: int
    waking_night: bool
