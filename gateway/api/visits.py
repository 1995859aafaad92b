"""Planned visits: a night's visits for the control room, its changes, and the carer's run.

Changes (cancel, move, contacted, extra) go through the journal like any operator action and
are applied by the engine; each is written to the audit trail with the operator's account.
Before journaling, the route asks the engine's own rule whether the change applies to the
night as held now: 409 with the reason if not. A ``request_id`` makes a retry harmless (202
``duplicate``). The carer page checks in and out of its run's visits through the same journal
and engine as the MQTT handset topic ``<root>/<scheme>/carers/<carer_id>/visits``.
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from pydantic import ValidationError

from api_models import Role
from api_models.visits import (
    CarerRun,
    CarerVisitAccepted,
    CarerVisitIn,
    ChangeStatus,
    NightVisits,
    VisitCancelIn,
    VisitChangeAccepted,
    VisitContactedIn,
    VisitExtraIn,
    VisitMoveIn,
)
from devices.decoders import RecordType
from devices.records import visit_key
from gateway.api.deps import AuthContext, AuthDep, InboxDep, LiveDep, known_scheme
from gateway.api.errors import errors
from gateway.api.ports import ControlInbox, LiveView
from gateway.api.security import OPERATIONS, allow, client_address
from gateway.auth.store import Session
from gateway.engine.model import VisitControlIn, VisitOp
from responders.protocol import VISIT_ID, HandsetVisit

router = APIRouter(tags=["visits"])
carer_router = APIRouter(prefix="/carer", tags=["carer page"])

Operator = Annotated[Session, allow(*OPERATIONS)]
Me = Annotated[Session, allow(Role.CARER)]
VisitPath = Annotated[str, PathParam(pattern=VISIT_ID)]
ANSWERS = errors(401, 403, 404, 409)


@router.get("/api/v1/visits/{scheme}", responses=errors(401, 403, 404))
async def night_visits(
    scheme: str,
    live: LiveDep,
    me: Operator,
    night: Annotated[date | None, Query(description="The night's local start date.")] = None,
) -> NightVisits:
    """A night's planned visits with their status: the live night by default (the night in
    progress until 07:00 local, then the coming one), or ``night`` if the gateway holds it
    (the one before, or one up to 28 days ahead). 404 for a scheme without a schedule or a
    night no longer held (its record is in ``visit_events``)."""
    known_scheme(live, scheme)
    got = live.night_visits(scheme, night)
    if got is None:
        raise HTTPException(404, f"no visits held for {scheme} on night {night or 'tonight'}")
    return got


async def change(
    request: Request,
    me: Session,
    live: LiveView,
    inbox: ControlInbox,
    auth: AuthContext,
    scheme: str,
    visit_id: str,
    op: VisitOp,
    request_id: uuid.UUID | None,
    night: date | None,
    **fields: Any,
) -> VisitChangeAccepted:
    """Check, journal, audit and answer one change to a night's visits."""
    known_scheme(live, scheme)
    now = live.clock().now
    own = {k: v for k, v in fields.items() if k != "note"}  # the engine never sees a note
    inp = VisitControlIn(scheme, op, visit_id, me.username, now, night, **own)
    plan = live.night_visits(scheme, night)
    if plan is None:
        raise HTTPException(404, f"no visits held for {scheme} on night {night or 'tonight'}")
    why = live.visit_check(inp)
    detail: dict[str, Any] = {"scheme": scheme, "night": plan.night.isoformat()}
    if request_id is not None:
        detail["request_id"] = str(request_id)
    for k in ("cancelled_by", "run", "client", "minutes"):
        if fields.get(k) is not None:
            detail[k] = fields[k]
    if fields.get("agreed_at") is not None:
        detail["agreed_at"] = fields["agreed_at"].isoformat()
    status = ChangeStatus.ACCEPTED
    if why == ChangeStatus.ALREADY.value:
        why, status = None, ChangeStatus.ALREADY
    elif why is None:
        body: dict[str, Any] = {
            "op": f"visit_{op.value}",
            "visit_id": visit_id,
            "night": plan.night,
            "by": me.username,
            **{k: v for k, v in fields.items() if k != "note_len"},
        }
        key = f"visitctl/{scheme}/{me.username}/{request_id}" if request_id else None
        try:
            new = await inbox.submit_control(scheme, body, key)
        except ValidationError as exc:
            raise HTTPException(422, exc.errors()[0]["msg"]) from exc
        status = ChangeStatus.ACCEPTED if new else ChangeStatus.DUPLICATE
    detail["answer"] = status.value if why is None else "refused"
    # A note may name the person: the audit trail says one was written, not what it says.
    await auth.audit.arecord(
        f"visit.{op.value}",
        username=me.username,
        role=me.role.value,
        target=f"{scheme}/{visit_id}",
        address=client_address(request),
        detail=detail,
    )
    if why is not None:
        code = 404 if why.startswith("no visit ") else 409
        raise HTTPException(code, why)
    return VisitChangeAccepted(status=status, op=op.value, visit_id=visit_id, night=plan.night)


@router.post("/api/v1/visits/{scheme}/{visit_id}/cancel", status_code=202, responses=ANSWERS)
async def cancel(
    scheme: str,
    visit_id: VisitPath,
    body: VisitCancelIn,
    request: Request,
    me: Operator,
    live: LiveDep,
    inbox: InboxDep,
    auth: AuthDep,
) -> VisitChangeAccepted:
    """Cancel a planned visit, for the person or the Council. The Council's notice after noon
    on the working day before the visit's day is marked late notice (Thurrock 6.4.3); the
    person cancelling after the agreed time makes the visit frustrated. A cancelled visit is
    never missed. 409 once the visit has begun or closed."""
    return await change(
        request, me, live, inbox, auth, scheme, visit_id, VisitOp.CANCEL, body.request_id,
        body.night, cancelled_by=body.by, reason=body.reason,
    )  # fmt: skip


@router.post("/api/v1/visits/{scheme}/{visit_id}/move", status_code=202, responses=ANSWERS)
async def move(
    scheme: str,
    visit_id: VisitPath,
    body: VisitMoveIn,
    request: Request,
    me: Operator,
    live: LiveDep,
    inbox: InboxDep,
    auth: AuthDep,
) -> VisitChangeAccepted:
    """Give a planned visit a new agreed time; its late and contact rules start afresh from
    it. 409 once the visit has begun or closed."""
    return await change(
        request, me, live, inbox, auth, scheme, visit_id, VisitOp.MOVE, body.request_id,
        body.night, agreed_at=body.agreed_at,
    )  # fmt: skip


@router.post("/api/v1/visits/{scheme}/{visit_id}/contacted", status_code=202, responses=ANSWERS)
async def contacted(
    scheme: str,
    visit_id: VisitPath,
    body: VisitContactedIn,
    request: Request,
    me: Operator,
    live: LiveDep,
    inbox: InboxDep,
    auth: AuthDep,
) -> VisitChangeAccepted:
    """Record that the person was contacted about their late visit (Thurrock 6.6.1). 409 when
    no contact task is open for the visit."""
    return await change(
        request, me, live, inbox, auth, scheme, visit_id, VisitOp.CONTACTED, body.request_id,
        body.night, note=body.note, note_len=len(body.note),
    )  # fmt: skip


@router.post("/api/v1/visits/{scheme}/extra", status_code=202, responses=ANSWERS)
async def extra(
    scheme: str,
    body: VisitExtraIn,
    request: Request,
    me: Operator,
    live: LiveDep,
    inbox: InboxDep,
    auth: AuthDep,
) -> VisitChangeAccepted:
    """Add an extra visit to a night (schedule 3 counts it as extra). 409 if the id is taken,
    the run is on no rota line or the client is unknown."""
    s = live.scheme(scheme)
    if s is not None:
        if body.run not in {x.run for x in s.rota if x.run}:
            raise HTTPException(409, f"no rota line has run {body.run}")
        if s.resident(body.client) is None:
            raise HTTPException(409, f"no resident has client_ref {body.client}")
    return await change(
        request, me, live, inbox, auth, scheme, body.visit_id, VisitOp.EXTRA, body.request_id,
        body.night, run=body.run, client=body.client, agreed_at=body.agreed_at,
        minutes=body.minutes, double=body.double, service=body.service, level=body.level,
        window_min=body.window_min, critical=body.critical,
    )  # fmt: skip


# ---- the carer page ----------------------------------------------------------------------


def _ids(me: Session) -> tuple[str, str]:
    assert me.scheme is not None and me.carer_id is not None
    return me.scheme, me.carer_id


@carer_router.get("/api/run", responses=errors(401, 403))
async def run(me: Me, live: LiveDep) -> CarerRun:
    """This carer's run tonight: its visits in order, each with its status and whether it is
    late."""
    scheme, carer_id = _ids(me)
    if live.scheme(scheme) is None:
        raise HTTPException(403, f"scheme {scheme!r} is not served by this gateway")
    return live.carer_run(scheme, carer_id)


@carer_router.post("/api/visits", status_code=202, responses=errors(401, 403, 404))
async def post_visit(
    me: Me, body: CarerVisitIn, live: LiveDep, inbox: InboxDep
) -> CarerVisitAccepted:
    """Check in, check out, frustrated (with a reason) or contacted, for a visit tonight. The
    answer (``visit_result``) arrives on the stream, as on the handset's dispatch topic; a
    visit of another run is refused there (``not_on_run``)."""
    scheme, carer_id = _ids(me)
    tonight = live.night_visits(scheme, None)
    if tonight is None or all(v.visit_id != body.visit_id for v in tonight.visits):
        raise HTTPException(404, f"no visit {body.visit_id} tonight")
    try:
        fields = body.model_dump(exclude_none=True, exclude={"visit_action_id"})
        msg = HandsetVisit(
            visit_action_id=body.visit_action_id or uuid.uuid4(), at=live.clock().now, **fields
        )
    except ValidationError as exc:
        raise HTTPException(422, exc.errors()[0]["msg"]) from exc
    data = {**msg.model_dump(mode="json"), "carer_id": carer_id}
    key = visit_key(scheme, carer_id, msg.visit_action_id)
    await inbox.submit_carer(scheme, RecordType.VISIT, key, data)
    return CarerVisitAccepted(visit_action_id=str(msg.visit_action_id))
