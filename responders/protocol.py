"""The carer handset protocol (version 1): what a handset sends, and what it receives.

Handset -> gateway (QoS 1):
  ``<root>/<scheme>/carers/<carer_id>/actions``   :class:`HandsetAction`
  ``<root>/<scheme>/carers/<carer_id>/presence``  :class:`HandsetPresence`
Gateway -> handset (QoS 1):
  ``<root>/<scheme>/carers/<carer_id>/dispatch``  offers, cancellations, reminders, action results

Every action carries an ``action_id`` (UUID) chosen by the handset: sending it again is
harmless. An action on an offer that has moved on gets a rejection with a reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator


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
    alarm_id: str = Field(min_length=1, max_length=64)
    offer_id: str | None = Field(default=None, max_length=80)
    outcome: OutcomeCode | None = None
    note: str = Field(default="", max_length=1000)
    at: AwareDatetime

    @model_validator(mode="after")
    def _outcome_with_resolve(self) -> HandsetAction:
        if self.action is Action.RESOLVED and self.outcome is None:
            raise ValueError("resolved needs an outcome")
        return self


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
    at: AwareDatetime
    flat: str | None = Field(default=None, max_length=32, description="Check-in at a flat.")
    block: str | None = Field(default=None, max_length=32, description="Check-in at a block.")
    x: float | None = Field(default=None, description="Metres on the scheme grid.")
    y: float | None = None
    floor: int = 0
