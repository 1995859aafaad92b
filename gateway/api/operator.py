"""The control room's actions on an alarm: assign or reassign, escalate now, accept or mark
arrived for a carer who phoned in, resolve, note, acknowledge or silence its alerts.

Each goes through the journal like any input and is applied by the engine; each is written to
the audit trail with the operator's account. Before journaling, the route asks the engine's
own rule (``gateway.engine.operator``) whether the action still applies: 409 with the reason
if the alarm has moved on, 202 ``already`` if it is already where the operator wants it. A
``request_id`` makes a retry harmless (202 ``duplicate``). If the alarm moves on between the
answer and the engine applying it, the engine refuses it and tells the control room.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import ValidationError

from api_models import (
    ActionRequest,
    ActionStatus,
    AssignIn,
    NoteIn,
    OnBehalfIn,
    OperatorAccepted,
    ResolveIn,
    SilenceIn,
)
from gateway.api.deps import AuthDep, InboxDep, LiveDep
from gateway.api.errors import errors
from gateway.api.params import AlarmPath
from gateway.api.security import OPERATIONS, allow, client_address
from gateway.auth.store import Session
from gateway.engine.model import OperatorIn, OperatorOp, Outcome
from gateway.engine.operator import Answer

router = APIRouter(tags=["alarm actions"])

Operator = Annotated[Session, allow(*OPERATIONS)]
ANSWERS = errors(401, 403, 404, 409)


@dataclass
class OperatorCall:
    """Who is acting and the services an action goes through (one dependency per route)."""

    request: Request
    me: Operator
    live: LiveDep
    inbox: InboxDep
    auth: AuthDep


Call = Annotated[OperatorCall, Depends()]


async def act(
    call: OperatorCall, alarm_id: UUID, op: OperatorOp, request_id: UUID | None, **fields: Any
) -> OperatorAccepted:
    """Check, journal, audit and answer one operator action."""
    request, me, live, inbox, auth = call.request, call.me, call.live, call.inbox, call.auth
    a = live.alarm(str(alarm_id))
    if a is None:
        raise HTTPException(404, f"no alarm {alarm_id}")
    inp = OperatorIn(a.scheme, str(alarm_id), op, me.username, **fields)
    verdict = live.operator_check(inp)
    detail: dict[str, Any] = {"scheme": a.scheme, "answer": verdict.answer.value}
    if inp.carers:
        detail["carers"] = list(inp.carers)
    if inp.outcome is not None:
        detail["outcome"] = inp.outcome.value
    if inp.until is not None:
        detail["until"] = inp.until.isoformat()
    if request_id is not None:
        detail["request_id"] = str(request_id)
    status = ActionStatus.ALREADY
    if verdict.answer is Answer.APPLY:
        body: dict[str, Any] = {
            "op": op.value,
            "alarm_id": str(alarm_id),
            "by": me.username,
            "carers": list(inp.carers),
            "outcome": inp.outcome.value if inp.outcome else None,
            "note": inp.note,
            "until": inp.until,
        }
        # One key per account and request id: another operator's id never collides.
        key = f"control/{a.scheme}/{me.username}/{request_id}" if request_id else None
        try:
            new = await inbox.submit_control(a.scheme, body, key)
        except ValidationError as exc:
            raise HTTPException(422, exc.errors()[0]["msg"]) from exc
        status = ActionStatus.ACCEPTED if new else ActionStatus.DUPLICATE
        detail["answer"] = status.value
    # Notes may name the resident: the audit trail says a note was added, not what it says.
    await auth.audit.arecord(
        f"alarm.{op.value}",
        username=me.username,
        role=me.role.value,
        target=str(alarm_id),
        address=client_address(request),
        detail=detail,
    )
    if verdict.answer is Answer.REFUSED:
        raise HTTPException(409, verdict.reason)
    return OperatorAccepted(
        status=status, op=op.value, alarm_id=str(alarm_id), detail=verdict.reason
    )


@router.post("/api/v1/alarms/{alarm_id}/assign", status_code=202, responses=ANSWERS)
async def assign(
    alarm_id: AlarmPath,
    body: AssignIn,
    call: Call,
) -> OperatorAccepted:
    """Assign or reassign the alarm to one carer, or a pair (making it double-handed).
    Everyone else's offer or acceptance is withdrawn and they are told; the chosen carers
    get an offer on their handset that times out like any other. 409 once a carer has
    arrived, for a test call, or for a closed alarm."""
    return await act(
        call, alarm_id, OperatorOp.ASSIGN, body.request_id,
        carers=tuple(body.carers),
    )  # fmt: skip


@router.post("/api/v1/alarms/{alarm_id}/escalate", status_code=202, responses=ANSWERS)
async def escalate(
    alarm_id: AlarmPath,
    call: Call,
    body: ActionRequest | None = None,
) -> OperatorAccepted:
    """Escalate now: offer to everyone on shift and tell the on-call senior, without waiting
    for the offer to time out. 409 once a carer has accepted (reassign instead)."""
    rid = body.request_id if body else None
    return await act(call, alarm_id, OperatorOp.ESCALATE, rid)


@router.post("/api/v1/alarms/{alarm_id}/accept", status_code=202, responses=ANSWERS)
async def accept(
    alarm_id: AlarmPath,
    body: OnBehalfIn,
    call: Call,
) -> OperatorAccepted:
    """Accept on a carer's behalf (they phoned in): they must hold a live offer for it."""
    return await act(
        call, alarm_id, OperatorOp.ACCEPT, body.request_id,
        carers=(body.carer_id,),
    )  # fmt: skip


@router.post("/api/v1/alarms/{alarm_id}/arrived", status_code=202, responses=ANSWERS)
async def arrived(
    alarm_id: AlarmPath,
    body: OnBehalfIn,
    call: Call,
) -> OperatorAccepted:
    """Mark a carer arrived on their behalf: they must have accepted it."""
    return await act(
        call, alarm_id, OperatorOp.ARRIVED, body.request_id,
        carers=(body.carer_id,),
    )  # fmt: skip


@router.post("/api/v1/alarms/{alarm_id}/resolve", status_code=202, responses=ANSWERS)
async def resolve(
    alarm_id: AlarmPath,
    body: ResolveIn,
    call: Call,
) -> OperatorAccepted:
    """Resolve with an outcome and a note (a note is needed for 'other'); a test call can be
    resolved too. Carers holding it are told. "unable to gain access" starts the no-response
    follow-up, as from a handset."""
    if body.outcome.value == "other" and not body.note.strip():
        raise HTTPException(422, "outcome 'other' needs a note")
    return await act(
        call, alarm_id, OperatorOp.RESOLVE, body.request_id,
        outcome=Outcome(body.outcome.value), note=body.note,
    )  # fmt: skip


@router.post("/api/v1/alarms/{alarm_id}/notes", status_code=202, responses=ANSWERS)
async def add_note(
    alarm_id: AlarmPath,
    body: NoteIn,
    call: Call,
) -> OperatorAccepted:
    """Add a note to the alarm's timeline (while the gateway still holds it)."""
    if not body.note.strip():
        raise HTTPException(422, "a note needs some text")
    return await act(
        call, alarm_id, OperatorOp.NOTE, body.request_id,
        note=body.note,
    )  # fmt: skip


@router.post("/api/v1/alarms/{alarm_id}/acknowledge", status_code=202, responses=ANSWERS)
async def acknowledge(
    alarm_id: AlarmPath,
    call: Call,
    body: ActionRequest | None = None,
) -> OperatorAccepted:
    """Acknowledge the alarm's alerts: their repeats are held while it stays in its present
    state. The first alert of any new trouble (say, no arrival after an accept) still comes;
    carers' offers and the escalation go on."""
    rid = body.request_id if body else None
    return await act(call, alarm_id, OperatorOp.ACKNOWLEDGE, rid)


@router.post("/api/v1/alarms/{alarm_id}/silence", status_code=202, responses=ANSWERS)
async def silence(
    alarm_id: AlarmPath,
    body: SilenceIn,
    call: Call,
) -> OperatorAccepted:
    """Silence the alarm's repeat alerts for some minutes (at most 12 hours); 0 ends it.
    The first alert of each kind still comes; carers' offers and the escalation go on."""
    until = call.live.clock().now + timedelta(minutes=body.minutes) if body.minutes else None
    return await act(
        call, alarm_id, OperatorOp.SILENCE, body.request_id,
        until=until,
    )  # fmt: skip
