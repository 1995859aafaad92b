"""The control room's actions on an alarm (``POST /api/v1/alarms/{id}/...``).

Every body may carry a ``request_id``: the same id sent twice (a retry after a lost answer)
is journaled once. Each answer says whether the action was queued for the engine, was a
retry of one already queued, or found the alarm already where the operator wanted it.
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID

from pydantic import Field

from api_models.common import Shape
from devices.storable import StoredText
from responders.models import Ident
from responders.protocol import OutcomeCode


class _Request(Shape):
    request_id: UUID | None = Field(
        default=None, description="Idempotency key: a retry with the same id is applied once."
    )


class ActionRequest(_Request):
    """Escalate now, or acknowledge: nothing but the optional ``request_id``."""


class AssignIn(_Request):
    carers: tuple[Ident, ...] = Field(
        min_length=1, max_length=2, description="One carer, or a pair for a double-handed call."
    )


class OnBehalfIn(_Request):
    carer_id: Ident = Field(description="The carer who phoned in.")


class ResolveIn(_Request):
    outcome: OutcomeCode
    note: StoredText = Field(default="", max_length=1000, description="Needed for 'other'.")


class NoteIn(_Request):
    note: StoredText = Field(min_length=1, max_length=1000)


class SilenceIn(_Request):
    minutes: int = Field(
        ge=0, le=12 * 60, description="Hold this alarm's repeat alerts this long; 0 ends it."
    )


class ActionStatus(StrEnum):
    ACCEPTED = "accepted"  # journaled; the engine applies it next
    DUPLICATE = "duplicate"  # a retry of a request_id already journaled: not applied twice
    ALREADY = "already"  # the alarm is already where you wanted it: nothing was queued


class OperatorAccepted(Shape):
    """The answer to an operator action (HTTP 202)."""

    status: ActionStatus
    op: str
    alarm_id: str
    detail: str = ""
