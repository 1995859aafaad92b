"""The carer web page and its API under ``/carer``: sign-in, live dispatch (SSE), actions,
presence.

A carer signs in with their scheme, carer id and token (``telecare carers issue-tokens`` or
``telecare users add``); the page then holds an HttpOnly session cookie (an opaque session id,
never the token) and sees only their own offers and alarms. Actions and presence go through the
same journal and engine as the MQTT handset protocol, so a page and a handset are
interchangeable and every tap is on record.
"""

from __future__ import annotations

import asyncio
import uuid
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import ValidationError

from api_models import (
    ActionAccepted,
    ActionIn,
    CarerLoginIn,
    CarerPageState,
    CarerSignedIn,
    PresenceIn,
    Role,
    Status,
)
from devices.decoders import RecordType
from gateway.api.alarms import involves
from gateway.api.deps import AuthDep, InboxDep, LiveDep
from gateway.api.errors import errors
from gateway.api.ports import ControlInbox, LiveView
from gateway.api.security import (
    allow,
    check_secret,
    clear_session_cookie,
    client_address,
    public,
    set_session_cookie,
    while_signed_in,
)
from gateway.auth.store import Session, carer_username
from responders.protocol import HandsetAction, HandsetPresence, PresenceKind

router = APIRouter(prefix="/carer", tags=["carer page"])

Me = Annotated[Session, allow(Role.CARER)]

WRONG = "wrong scheme, carer id or token"


def _ids(me: Session) -> tuple[str, str]:
    # A carer account always has both (the store refuses one without them).
    assert me.scheme is not None and me.carer_id is not None
    return me.scheme, me.carer_id


async def _presence(
    live: LiveView,
    inbox: ControlInbox,
    scheme: str,
    carer_id: str,
    what: PresenceKind,
    flat: str | None,
) -> None:
    msg = HandsetPresence(presence_id=uuid.uuid4(), what=what, at=live.clock().now, flat=flat)
    body = {**msg.model_dump(mode="json"), "carer_id": carer_id}
    await inbox.submit_carer(
        scheme, RecordType.PRESENCE, f"{scheme}/{carer_id}/{msg.presence_id}", body
    )


@router.get("", response_class=HTMLResponse, dependencies=[public()])
async def page() -> str:
    """The carer web page (HTML; sign-in, offers, actions)."""
    return resources.files("responders.web").joinpath("carer.html").read_text()


@router.post("/api/login", dependencies=[public()], responses=errors(401, 429))
async def login(
    body: CarerLoginIn,
    request: Request,
    response: Response,
    live: LiveDep,
    inbox: InboxDep,
    auth: AuthDep,
) -> CarerSignedIn:
    """Sign in (checks the token) and start the shift on this device. An unknown scheme or
    carer and a wrong token get the same 401; repeated failures get 429."""
    username = carer_username(body.scheme, body.carer_id)
    user = await check_secret(auth, request, username, body.token, "carer.sign_in")
    scheme = live.scheme(body.scheme)
    carer = scheme.carer(body.carer_id) if scheme else None
    if user is None or user.role is not Role.CARER or carer is None:
        raise HTTPException(401, WRONG)
    address = client_address(request)
    token, _expires = await asyncio.to_thread(auth.store.open_session, username, address)
    set_session_cookie(response, auth, token)
    await auth.audit.arecord("carer.sign_in", username=username, role="carer", address=address)
    await _presence(live, inbox, body.scheme, body.carer_id, PresenceKind.LOGIN, None)
    return CarerSignedIn(
        scheme=body.scheme, carer_id=body.carer_id, display_name=carer.display_name
    )


@router.post("/api/logout", responses=errors(401, 403))
async def logout(
    me: Me, request: Request, response: Response, live: LiveDep, inbox: InboxDep, auth: AuthDep
) -> Status:
    """End the shift on this device and the session (the cookie stops working at once)."""
    scheme, carer_id = _ids(me)
    await _presence(live, inbox, scheme, carer_id, PresenceKind.LOGOUT, None)
    await asyncio.to_thread(auth.store.end_session, me.id_hash)
    clear_session_cookie(response, auth)
    await auth.audit.arecord(
        "carer.sign_out", username=me.username, role="carer", address=client_address(request)
    )
    return Status(status="signed out")


@router.post("/api/presence", status_code=202, responses=errors(401, 403))
async def post_presence(me: Me, body: PresenceIn, live: LiveDep, inbox: InboxDep) -> Status:
    """Heartbeat (the page sends one every 30 s) or a check-in at a flat."""
    scheme_id, carer_id = _ids(me)
    if body.flat is not None:
        scheme = live.scheme(scheme_id)
        if scheme is None or scheme.flat(body.flat) is None:
            raise HTTPException(422, f"no flat {body.flat!r} in {scheme_id}")
    await _presence(live, inbox, scheme_id, carer_id, body.what, body.flat)
    return Status(status="accepted")


@router.post("/api/actions", status_code=202, responses=errors(401, 403))
async def post_action(me: Me, body: ActionIn, live: LiveDep, inbox: InboxDep) -> ActionAccepted:
    """Accept, decline, arrived or resolved; the result arrives on the stream. An alarm this
    carer was never offered is refused here (403); anything else goes to the engine, which
    answers a stale or withdrawn offer on the stream."""
    scheme, carer_id = _ids(me)
    alarm = live.alarm(body.alarm_id)
    if alarm is not None and not involves(alarm, scheme, carer_id):
        raise HTTPException(403, "this alarm was not offered to you and you do not hold it")
    try:
        fields = body.model_dump(exclude_none=True, exclude={"action_id"})
        msg = HandsetAction(action_id=body.action_id or uuid.uuid4(), at=live.clock().now, **fields)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors()[0]["msg"]) from exc
    data = {**msg.model_dump(mode="json"), "carer_id": carer_id}
    await inbox.submit_carer(
        scheme, RecordType.ACTION, f"{scheme}/{carer_id}/{msg.action_id}", data
    )
    return ActionAccepted(action_id=str(msg.action_id))


@router.get("/api/state", responses=errors(401, 403))
async def state(me: Me, live: LiveDep) -> CarerPageState:
    """Everything this carer should see now: live offers and alarms they hold."""
    scheme, carer_id = _ids(me)
    if live.scheme(scheme) is None:
        raise HTTPException(403, f"scheme {scheme!r} is not served by this gateway")
    return live.carer_page(scheme, carer_id)


@router.get(
    "/api/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Dispatch as SSE."},
        **errors(401, 403),
    },
)
async def stream(me: Me, live: LiveDep, auth: AuthDep) -> StreamingResponse:
    """Server-sent events: this carer's dispatch messages as they happen; ends with the
    session."""
    scheme, carer_id = _ids(me)
    return StreamingResponse(
        while_signed_in(live.stream(f"{scheme}/{carer_id}", "dispatch"), auth, me),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
