"""Accounts (admin only): list, add, disable, enable, reset. Every change is audited."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request

from api_models import Role, UserIn, UserOut, UserReset
from gateway.api.deps import AuthDep, LiveDep
from gateway.api.errors import errors
from gateway.api.security import allow, client_address
from gateway.auth.store import Session, User, UserError, carer_username

router = APIRouter(tags=["users"])

Admin = Annotated[Session, allow(Role.ADMIN)]


def user_out(u: User) -> UserOut:
    return UserOut(
        username=u.username,
        role=u.role,
        scheme=u.scheme,
        carer_id=u.carer_id,
        disabled=u.disabled,
        created_at=u.created_at,
        updated_at=u.updated_at,
    )


@router.get("/api/v1/users", responses=errors(401, 403))
async def list_users(me: Admin, auth: AuthDep) -> list[UserOut]:
    """Every account, with its role and whether it is disabled (never a secret)."""
    return [user_out(u) for u in await asyncio.to_thread(auth.store.users)]


@router.post("/api/v1/users", status_code=201, responses=errors(401, 403, 409))
async def add_user(
    body: UserIn, me: Admin, request: Request, auth: AuthDep, live: LiveDep
) -> UserReset:
    """Create an account; its secret is generated and shown once in this answer. A carer's
    user name is ``<scheme>/<carer id>`` and the carer must be in a scheme served here."""
    username = body.username
    if body.role is Role.CARER:
        scheme = live.scheme(body.scheme or "")
        if scheme is None or body.carer_id is None or scheme.carer(body.carer_id) is None:
            raise HTTPException(422, "a carer account needs a carer of a scheme served here")
        username = carer_username(scheme.id, body.carer_id)
    try:
        secret = await asyncio.to_thread(
            auth.store.add, username, body.role, body.scheme, body.carer_id
        )
    except UserError as exc:
        status = 409 if "already exists" in str(exc) else 422
        raise HTTPException(status, str(exc)) from exc
    await _audit(auth, me, request, "users.add", username, {"role": body.role.value})
    return UserReset(username=username, role=body.role, secret=secret)


async def _change(
    auth: AuthDep, me: Session, request: Request, username: str, disabled: bool
) -> UserOut:
    if disabled and username == me.username:
        raise HTTPException(409, "you cannot disable your own account")
    try:
        await asyncio.to_thread(auth.store.set_disabled, username, disabled)
    except UserError as exc:
        raise HTTPException(404, str(exc)) from exc
    action = "users.disable" if disabled else "users.enable"
    await _audit(auth, me, request, action, username, {})
    user = await asyncio.to_thread(auth.store.get, username)
    assert user is not None
    return user_out(user)


@router.post("/api/v1/users/{username:path}/disable", responses=errors(401, 403, 404, 409))
async def disable_user(username: str, me: Admin, request: Request, auth: AuthDep) -> UserOut:
    """Disable an account: every session of it ends at once, and it cannot sign in."""
    return await _change(auth, me, request, username, True)


@router.post("/api/v1/users/{username:path}/enable", responses=errors(401, 403, 404))
async def enable_user(username: str, me: Admin, request: Request, auth: AuthDep) -> UserOut:
    """Enable a disabled account again (its old sessions stay ended)."""
    return await _change(auth, me, request, username, False)


@router.post("/api/v1/users/{username:path}/reset", responses=errors(401, 403, 404))
async def reset_user(username: str, me: Admin, request: Request, auth: AuthDep) -> UserReset:
    """A new secret for an account, shown once; its sessions end."""
    try:
        secret = await asyncio.to_thread(auth.store.reset, username)
    except UserError as exc:
        raise HTTPException(404, str(exc)) from exc
    user = await asyncio.to_thread(auth.store.get, username)
    assert user is not None
    await _audit(auth, me, request, "users.reset", username, {})
    return UserReset(username=username, role=user.role, secret=secret)


async def _audit(
    auth: AuthDep, me: Session, request: Request, action: str, target: str, detail: dict[str, str]
) -> None:
    await auth.audit.arecord(
        action,
        username=me.username,
        role=me.role.value,
        target=target,
        address=client_address(request),
        detail=detail,
    )
