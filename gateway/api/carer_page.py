"""The carer web page and its API under ``/carer``: sign-in, live dispatch (SSE), actions,
presence.

A carer signs in with their scheme, carer id and token (``telecare carers issue-tokens``); the
page then holds an HttpOnly cookie and sees only their own offers and alarms. Actions and
presence go through the same journal and engine as the MQTT handset protocol, so a page and a
handset are interchangeable and every tap is on record.
"""

from __future__ import annotations

import uuid
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Cookie, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import ValidationError

from api_models import (
    ActionAccepted,
    ActionIn,
    CarerLoginIn,
    CarerPageState,
    CarerSignedIn,
    PresenceIn,
    Status,
)
from devices.decoders import RecordType
from gateway.api.deps import InboxDep, LiveDep, api_deps
from gateway.api.errors import errors
from gateway.api.ports import ControlInbox, LiveView
from responders.credentials import CredentialStore
from responders.protocol import HandsetAction, HandsetPresence, PresenceKind

COOKIE = "telecare_carer"

router = APIRouter(prefix="/carer", tags=["carer page"])


def _creds(request: Request, reload: bool = False) -> CredentialStore:
    state = request.app.state
    if reload or getattr(state, "carer_creds", None) is None:
        state.carer_creds = CredentialStore.load(api_deps(request).settings.carer_auth.file)
    creds: CredentialStore = state.carer_creds
    return creds


def who(
    request: Request, live: LiveDep, telecare_carer: Annotated[str | None, Cookie()] = None
) -> tuple[str, str]:
    if not telecare_carer or ":" not in telecare_carer:
        raise HTTPException(401, "sign in first")
    ident, token = telecare_carer.rsplit(":", 1)
    scheme, _, carer_id = ident.partition("/")
    if live.scheme(scheme) is None or not _creds(request).verify(scheme, carer_id, token):
        raise HTTPException(401, "your sign-in is no longer valid; sign in again")
    return scheme, carer_id


Me = Annotated[tuple[str, str], Depends(who)]


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


@router.get("", response_class=HTMLResponse)
async def page() -> str:
    """The carer web page (HTML; sign-in, offers, actions)."""
    return resources.files("responders.web").joinpath("carer.html").read_text()


@router.post("/api/login", responses=errors(401))
async def login(
    body: CarerLoginIn, request: Request, response: Response, live: LiveDep, inbox: InboxDep
) -> CarerSignedIn:
    """Sign in (checks the token) and start the shift on this device."""
    creds = _creds(request, reload=True)  # pick up newly issued tokens
    settings = api_deps(request).settings
    scheme = live.scheme(body.scheme)
    if scheme is None or scheme.carer(body.carer_id) is None:
        raise HTTPException(401, "unknown scheme or carer id")
    if not creds.verify(body.scheme, body.carer_id, body.token):
        raise HTTPException(401, "wrong token")
    response.set_cookie(
        COOKIE,
        f"{body.scheme}/{body.carer_id}:{body.token}",
        httponly=True,
        samesite="strict",
        secure=settings.carer_auth.cookie_secure,
        path="/carer",
    )
    await _presence(live, inbox, body.scheme, body.carer_id, PresenceKind.LOGIN, None)
    carer = scheme.carer(body.carer_id)
    return CarerSignedIn(
        scheme=body.scheme,
        carer_id=body.carer_id,
        display_name=carer.display_name if carer else body.carer_id,
    )


@router.post("/api/logout", responses=errors(401))
async def logout(me: Me, response: Response, live: LiveDep, inbox: InboxDep) -> Status:
    await _presence(live, inbox, me[0], me[1], PresenceKind.LOGOUT, None)
    response.delete_cookie(COOKIE, path="/carer")
    return Status(status="signed out")


@router.post("/api/presence", status_code=202, responses=errors(401))
async def post_presence(me: Me, body: PresenceIn, live: LiveDep, inbox: InboxDep) -> Status:
    """Heartbeat (the page sends one every 30 s) or a check-in at a flat."""
    if body.flat is not None:
        scheme = live.scheme(me[0])
        if scheme is None or scheme.flat(body.flat) is None:
            raise HTTPException(422, f"no flat {body.flat!r} in {me[0]}")
    await _presence(live, inbox, me[0], me[1], body.what, body.flat)
    return Status(status="accepted")


@router.post("/api/actions", status_code=202, responses=errors(401))
async def post_action(me: Me, body: ActionIn, live: LiveDep, inbox: InboxDep) -> ActionAccepted:
    """Accept, decline, arrived or resolved; the result arrives on the stream."""
    try:
        fields = body.model_dump(exclude_none=True, exclude={"action_id"})
        msg = HandsetAction(action_id=body.action_id or uuid.uuid4(), at=live.clock().now, **fields)
    except ValidationError as exc:
        raise HTTPException(422, exc.errors()[0]["msg"]) from exc
    data = {**msg.model_dump(mode="json"), "carer_id": me[1]}
    await inbox.submit_carer(me[0], RecordType.ACTION, f"{me[0]}/{me[1]}/{msg.action_id}", data)
    return ActionAccepted(action_id=str(msg.action_id))


@router.get("/api/state", responses=errors(401))
async def state(me: Me, live: LiveDep) -> CarerPageState:
    """Everything this carer should see now: live offers and alarms they hold."""
    return live.carer_page(me[0], me[1])


@router.get(
    "/api/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Dispatch as SSE."},
        **errors(401),
    },
)
async def stream(me: Me, live: LiveDep) -> StreamingResponse:
    """Server-sent events: this carer's dispatch messages as they happen."""
    return StreamingResponse(
        live.stream(f"{me[0]}/{me[1]}", "dispatch"),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
