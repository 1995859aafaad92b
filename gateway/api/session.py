"""Signing in and out: a session per sign-in, as a bearer token and an HttpOnly cookie."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, Response

from api_models import LoginIn, SessionInfo, SessionOut, Status
from gateway.api.deps import AuthDep
from gateway.api.errors import errors
from gateway.api.security import (
    ALL_ROLES,
    allow,
    check_secret,
    clear_session_cookie,
    client_address,
    public,
    set_session_cookie,
)
from gateway.auth.store import Session

router = APIRouter(tags=["session"])

Me = Annotated[Session, allow(*ALL_ROLES)]

WRONG = "wrong user name or secret"


@router.post("/api/v1/session", dependencies=[public()], responses=errors(401, 429))
async def sign_in(body: LoginIn, request: Request, response: Response, auth: AuthDep) -> SessionOut:
    """Sign in with a user name and secret. Answers with a session token (send it as
    ``Authorization: Bearer <token>``) and sets the same session as an HttpOnly cookie.
    An unknown user, a wrong secret and a disabled account get the same 401; repeated
    failures get 429 with ``Retry-After``."""
    user = await check_secret(auth, request, body.username, body.password, "session.sign_in")
    if user is None:
        raise HTTPException(401, WRONG)
    address = client_address(request)
    token, expires = await asyncio.to_thread(auth.store.open_session, user.username, address)
    set_session_cookie(response, auth, token)
    await auth.audit.arecord(
        "session.sign_in", username=user.username, role=user.role.value, address=address
    )
    return SessionOut(token=token, username=user.username, role=user.role, expires_at=expires)


@router.get("/api/v1/session", responses=errors(401))
async def whoami(me: Me) -> SessionInfo:
    """Who this session belongs to, and when it ends."""
    return SessionInfo(
        username=me.username,
        role=me.role,
        scheme=me.scheme,
        carer_id=me.carer_id,
        expires_at=me.expires_at,
    )


@router.delete("/api/v1/session", responses=errors(401))
async def sign_out(me: Me, request: Request, response: Response, auth: AuthDep) -> Status:
    """End this session now (the token and the cookie stop working at once)."""
    await asyncio.to_thread(auth.store.end_session, me.id_hash)
    clear_session_cookie(response, auth)
    await auth.audit.arecord(
        "session.sign_out",
        username=me.username,
        role=me.role.value,
        address=client_address(request),
    )
    return Status(status="signed out")
