"""The journal's record: one discriminated union of the protocol's models, one TypeAdapter.

Every input the gateway accepts (a device event, a Careline call-out, a carer's action or
presence, a control-room instruction) is journaled as one of these models, tagged by
``record_type``. The journal writes and reads them only through :data:`RECORDS`; the engine's
input conversion, the shipper's column lists and the API read their attributes, so adding a
field is one change that mypy checks, not a dict key repeated across files.

The record models extend the wire models (so every wire check still applies) with the tag and
what the gateway knows from the topic (the carer a handset message came from).
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from devices.events import CarelineCallout, DeviceEvent
from devices.storable import StoredText, StoredTime
from responders.protocol import (
    VISIT_ID,
    CarerStatus,
    HandsetAction,
    HandsetPresence,
    HandsetVisit,
    OutcomeCode,
)

CARER_ID = r"^[A-Za-z0-9._-]{1,64}$"
DEVICE_ID = r"^[A-Za-z0-9._-]{1,64}$"


class RecordType(StrEnum):
    EVENT = "event"
    CALLOUT = "callout"
    ACTION = "action"
    PRESENCE = "presence"
    VISIT = "visit"  # a carer's check-in/out of a planned visit (handset or page)
    CONTROL = "control"  # control-room overrides entered through the API


class EventRecord(DeviceEvent):
    record_type: Literal[RecordType.EVENT] = RecordType.EVENT


class CalloutRecord(CarelineCallout):
    record_type: Literal[RecordType.CALLOUT] = RecordType.CALLOUT


class ActionRecord(HandsetAction):
    record_type: Literal[RecordType.ACTION] = RecordType.ACTION
    carer_id: str = Field(pattern=CARER_ID, description="From the topic or the signed-in page.")


class PresenceRecord(HandsetPresence):
    record_type: Literal[RecordType.PRESENCE] = RecordType.PRESENCE
    carer_id: str = Field(pattern=CARER_ID)


class VisitRecord(HandsetVisit):
    record_type: Literal[RecordType.VISIT] = RecordType.VISIT
    carer_id: str = Field(pattern=CARER_ID, description="From the topic or the signed-in page.")


class ControlOp(StrEnum):
    CARER_STATUS = "carer_status"
    DEVICE_MODE = "device_mode"
    PROMOTE = "promote"
    # An operator's action on an alarm (``AlarmControl``); the engine's ``OperatorOp``.
    ASSIGN = "assign"
    ESCALATE = "escalate"
    ACCEPT = "accept"
    ARRIVED = "arrived"
    RESOLVE = "resolve"
    NOTE = "note"
    ACKNOWLEDGE = "acknowledge"
    SILENCE = "silence"
    CLEAR_FAULT = "clear_fault"  # a device's technical fault seen to (``FaultControl``)
    # An operator's change to one night's planned visits (``VisitControl``).
    VISIT_CANCEL = "visit_cancel"
    VISIT_MOVE = "visit_move"
    VISIT_CONTACTED = "visit_contacted"
    VISIT_EXTRA = "visit_extra"


class _Control(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    record_type: Literal[RecordType.CONTROL] = RecordType.CONTROL
    at: StoredTime = Field(description="When the control room asked (scheme time).")
    by: StoredText = Field(
        default="control-room", max_length=64, description="Who asked: the API's caller."
    )


class CarerStatusControl(_Control):
    """Mark a carer on break, unavailable, or available again."""

    op: Literal[ControlOp.CARER_STATUS] = ControlOp.CARER_STATUS
    carer_id: str = Field(pattern=CARER_ID)
    status: CarerStatus


class DeviceModeControl(_Control):
    """Put a device in test/maintenance mode until a time; ``until=None`` ends it."""

    op: Literal[ControlOp.DEVICE_MODE] = ControlOp.DEVICE_MODE
    device_id: str = Field(pattern=DEVICE_ID)
    until: StoredTime | None = None


class PromoteControl(_Control):
    """Turn a test call (a device in a test window) into a real alarm."""

    op: Literal[ControlOp.PROMOTE] = ControlOp.PROMOTE
    alarm_id: UUID


class OperatorControl(_Control):
    """An operator's action the engine takes as an ``OperatorIn``-like input: the engine's
    ``gateway.engine.operator.from_record`` converts every subclass."""


class AlarmControl(OperatorControl):
    """An operator's action on one alarm: assign, escalate, accept or mark arrived for a
    carer, resolve, note, acknowledge or silence its alerts."""

    op: Literal[
        ControlOp.ASSIGN,
        ControlOp.ESCALATE,
        ControlOp.ACCEPT,
        ControlOp.ARRIVED,
        ControlOp.RESOLVE,
        ControlOp.NOTE,
        ControlOp.ACKNOWLEDGE,
        ControlOp.SILENCE,
    ]
    alarm_id: UUID
    carers: tuple[Annotated[str, Field(pattern=CARER_ID)], ...] = Field(default=(), max_length=2)
    outcome: OutcomeCode | None = None
    note: StoredText = Field(default="", max_length=1000)
    until: StoredTime | None = None


class FaultControl(OperatorControl):
    """A device's technical fault (low battery, tamper...) seen to: off the fault queue."""

    op: Literal[ControlOp.CLEAR_FAULT] = ControlOp.CLEAR_FAULT
    device_id: str = Field(pattern=DEVICE_ID)
    code: str = Field(pattern=r"^[a-z_]{1,32}$")


class VisitControl(_Control):
    """An operator's change to tonight's visits: cancel (by the person or the Council), move
    to a new agreed time, record that the person was contacted, or add an extra visit."""

    op: Literal[
        ControlOp.VISIT_CANCEL,
        ControlOp.VISIT_MOVE,
        ControlOp.VISIT_CONTACTED,
        ControlOp.VISIT_EXTRA,
    ]
    visit_id: str = Field(pattern=VISIT_ID)
    night: date | None = Field(
        default=None, description="The night (its local start date); None: the live night."
    )
    cancelled_by: Literal["person", "council"] | None = None
    reason: StoredText = Field(default="", max_length=200)
    note: StoredText = Field(default="", max_length=1000)
    agreed_at: StoredTime | None = None
    # An extra visit's plan (``visit_extra`` only).
    run: str | None = Field(default=None, pattern=VISIT_ID)
    client: StoredText | None = Field(default=None, max_length=64)
    minutes: int | None = Field(default=None, ge=1, le=480)
    window_min: int = Field(default=30, ge=1, le=240)
    double: bool = False
    critical: bool = False
    service: StoredText = Field(default="", max_length=120)
    level: StoredText = Field(default="", max_length=120)


ControlRecord = Annotated[
    CarerStatusControl
    | DeviceModeControl
    | PromoteControl
    | AlarmControl
    | FaultControl
    | VisitControl,
    Field(discriminator="op"),
]

Record = Annotated[
    EventRecord | CalloutRecord | ActionRecord | PresenceRecord | VisitRecord | ControlRecord,
    Field(discriminator="record_type"),
]

# The single adapter every journal write and read goes through.
RECORDS: TypeAdapter[Record] = TypeAdapter(Record)


def event_key(scheme: str, device_id: str, event_id: object) -> str:
    """De-duplication is per device: another device reusing an event id is a new event."""
    return f"{scheme}/{device_id}/{event_id}"


def visit_key(scheme: str, carer_id: str, visit_action_id: object) -> str:
    """A visit action's idempotency key: per carer, like an action's."""
    return f"{scheme}/{carer_id}/visit/{visit_action_id}"


def record_key(scheme: str, record: Record) -> str:
    """The journal's idempotency key of a record (unique per record type)."""
    match record:
        case EventRecord():
            return event_key(scheme, record.device_id, record.event_id)
        case CalloutRecord():
            return f"{scheme}/{record.callout_id}"
        case ActionRecord():
            return f"{scheme}/{record.carer_id}/{record.action_id}"
        case PresenceRecord():
            return f"{scheme}/{record.carer_id}/{record.presence_id}"
        case VisitRecord():
            return visit_key(scheme, record.carer_id, record.visit_action_id)
        case (
            CarerStatusControl()
            | DeviceModeControl()
            | PromoteControl()
            | OperatorControl()
            | VisitControl()
        ):
            raise ValueError("control records are keyed by the caller (each one is new)")
