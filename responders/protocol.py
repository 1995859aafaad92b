"""The carer handset protocol (version 1): what a handset sends, and what it receives.

Handset -> gateway (QoS 1):
  ``<root>/<scheme>/carers/<carer_id>/actions``   :class:`HandsetAction`
  ``<root>/<scheme>/carers/<carer_id>/presence``  :class:`HandsetPresence`
  ``<root>/<scheme>/carers/<carer_id>/visits``    :class:`HandsetVisit` (planned visits)
Gateway -> handset (QoS 1):
  ``<root>/<scheme>/carers/<carer_id>/dispatch``  offers, cancellations, reminders, action results,
                                                  visit results

Every action carries an ``action_id`` (UUID) chosen by the handset: sending it again is
harmless. An action on an offer that has moved on gets a rejection with a reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.storable import FiniteFloat, StoredText, StoredTime


class Action(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    ARRIVED = "arrived"
    RESOLVED = "resolved"


class OutcomeCode(StrEnum):
    ASSISTED = "assisted"
    FALL_NO_INJURY_LIFTED = "fall_no_injury_lifted"
    FALL_INJURY_AMBULANCE = "fall_injury_ambulance"
    HOSPITAL_ADMISSION = "hospital_admission"
    FALSE_ALARM = "false_alarm"
    NOT_AT_HOME = "not_at_home"
    UNABLE_TO_GAIN_ACCESS = "unable_to_gain_access"
    FIRE_SERVICE_CALLED = "fire_service_called"
    OTHER = "other"


class HandsetAction(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    action_id: UUID
    action: Action
    alarm_id: StoredText = Field(min_length=1, max_length=64)
    offer_id: StoredText | None = Field(default=None, max_length=80)
    outcome: OutcomeCode | None = None
    note: StoredText = Field(default="", max_length=1000)
    at: StoredTime

    @model_validator(mode="after")
    def _outcome_with_resolve(self) -> HandsetAction:
        if self.action is Action.RESOLVED and self.outcome is None:
            raise ValueError("resolved needs an outcome")
        return self


class CarerStatus(StrEnum):
    """What the control room says about a carer (a break, unavailable), beside presence."""

    AVAILABLE = "available"
    ON_BREAK = "on_break"
    UNAVAILABLE = "unavailable"


class PresenceKind(StrEnum):
    LOGIN = "login"
    LOGOUT = "logout"
    HEARTBEAT = "heartbeat"


class HandsetPresence(BaseModel):
    """Login, logout or heartbeat; any of them may carry the carer's position."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    presence_id: UUID
    what: PresenceKind
    at: StoredTime
    flat: StoredText | None = Field(default=None, max_length=32, description="Check-in at a flat.")
    block: StoredText | None = Field(
        default=None, max_length=32, description="Check-in at a block."
    )
    x: FiniteFloat | None = Field(default=None, description="Metres on the scheme grid.")
    y: FiniteFloat | None = None
    floor: int = Field(default=0, ge=-100, le=1000)


class VisitAction(StrEnum):
    """What a carer does about a planned visit (docs/visits.md)."""

    CHECK_IN = "check_in"
    CHECK_OUT = "check_out"
    FRUSTRATED = "frustrated"
    CONTACTED = "contacted"  # the person was contacted about a late visit (Thurrock 6.6.1)


class FrustratedReason(StrEnum):
    NO_ACCESS = "no_access"
    NOT_AT_HOME = "not_at_home"
    TURNED_AWAY = "turned_away"


VISIT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


class HandsetVisit(BaseModel):
    """A check-in, check-out, frustrated visit or contact made, for one planned visit.

    ``visit_action_id`` is the idempotency key (per carer), like an action's ``action_id``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    visit_action_id: UUID
    action: VisitAction
    visit_id: str = Field(pattern=VISIT_ID)
    reason: FrustratedReason | None = None
    note: StoredText = Field(default="", max_length=1000)
    at: StoredTime

    @model_validator(mode="after")
    def _reason_with_frustrated(self) -> HandsetVisit:
        if self.action is VisitAction.FRUSTRATED and self.reason is None:
            raise ValueError("frustrated needs a reason: no_access, not_at_home or turned_away")
        if self.action is not VisitAction.FRUSTRATED and self.reason is not None:
            raise ValueError("a reason goes only with frustrated")
        return self
