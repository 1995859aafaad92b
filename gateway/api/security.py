"""Who may see and do what: sessions, role rules on every route, and their audit.

Every route declares exactly one access rule (``allow``, ``public`` or ``docs_access``);
``create_app`` refuses to build an app with a route that has none, and the role x route test
checks each rule. A request carries a session either as ``Authorization: Bearer <token>`` (API
clients) or as the ``telecare_session`` cookie (browsers); both name the same server-side
session. Nothing else is accepted as a credential.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api_models import Role
from gateway.api.deps import AuthContext, AuthDep
from gateway.auth.audit import Outcome
from gateway.auth.store import Session, User

COOKIE = "telecare_session"
# Session tokens are token_urlsafe(32): 43 URL-safe characters. Anything else is refused before
# it reaches the store, so odd bytes in a header get a 401, never a 500.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{20,128}")
_BEARER_HINT = "sign in first: POST /api/v1/session, then send 'Authorization: Bearer <token>'"

ALL_ROLES = frozenset(Role)
OPERATIONS = frozenset({Role.CONTROL_ROOM, Role.MANAGER})


@dataclass(frozen=True, slots=True)
class Access:
    """A route's rule: which roles, or public, or docs (public outside production)."""

    roles: frozenset[Role]
    public: bool = False
    docs: bool = False


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": "Bearer"})


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    token: str | None
    if header is not None:
        kind, _, value = header.strip().partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            raise _unauthorised("only 'Authorization: Bearer <session token>' is accepted")
        token = value.strip()
    else:
        token = request.cookies.get(COOKIE)
        if token is None:
            return None
    if not _TOKEN.fullmatch(token):
        raise _unauthorised("that is not a session token; " + _BEARER_HINT)
    return token


async def current_session(request: Request, auth: AuthContext) -> Session:
    token = _presented_token(request)
    if token is None:
        raise _unauthorised(_BEARER_HINT)
    session = await asyncio.to_thread(auth.store.session, token)
    if session is None:
        raise _unauthorised("your session has ended or is not valid: sign in again")
    return session


def _marked(fn: Callable[..., Awaitable[Any]], access: Access) -> Any:
    fn.access = access  # type: ignore[attr-defined]
    return Depends(fn)


def allow(*roles: Role) -> Any:
    """A dependency: the caller's session, if its role is one of ``roles`` (else 401/403)."""
    allowed = frozenset(roles)
    needs = ", ".join(sorted(r.value for r in allowed))

    async def check(request: Request, auth: AuthDep) -> Session:
        session = await current_session(request, auth)
        if session.role not in allowed:
            await auth.audit.arecord(
                "access.denied",
                username=session.username,
                role=session.role.value,
                target=f"{request.method} {request.url.path}",
                outcome=Outcome.DENIED,
                address=client_address(request),
            )
            raise HTTPException(
                403, f"a {session.role.value} account may not do this (it needs: {needs})"
            )
        return session

    return _marked(check, Access(allowed))


def public() -> Any:
    """A dependency that lets anyone in: health probes, the sign-in routes, the carer page."""

    async def open_to_all() -> None:
        return None

    return _marked(open_to_all, Access(frozenset(), public=True))


def docs_access() -> Any:
    """API docs: open in development and test; any signed-in account in production."""

    async def check(request: Request, auth: AuthDep) -> None:
        if auth.production:
            await current_session(request, auth)

    return _marked(check, Access(ALL_ROLES, docs=True))


def access_rules(route: APIRoute) -> list[Access]:
    found: list[Access] = []

    def walk(dep: Dependant) -> None:
        rule = getattr(dep.call, "access", None)
        if isinstance(rule, Access):
            found.append(rule)
        for sub in dep.dependencies:
            walk(sub)

    walk(route.dependant)
    return found


def require_rules(routes: Iterable[APIRoute]) -> None:
    """Fail closed: an app with a route that has no rule (or two) is not built."""
    for route in routes:
        if len(access_rules(route)) != 1:
            methods = ",".join(sorted(route.methods or ()))
            raise RuntimeError(f"route {methods} {route.path} needs exactly one access rule")


async def check_secret(
    auth: AuthContext, request: Request, username: str, secret: str, action: str
) -> User | None:
    """The account if the secret is right, through the limiter; the same answer for an
    unknown user, a wrong secret and a disabled account. Raises 429 when limited."""
    address = client_address(request)
    wait = auth.limiter.retry_after(username, address)
    if wait is not None:
        await auth.audit.arecord(action, target=username, outcome=Outcome.LIMITED, address=address)
        seconds = max(1, math.ceil(wait))
        raise HTTPException(
            429,
            f"too many failed sign-ins: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
    user = await asyncio.to_thread(auth.store.verify, username, secret)
    if user is None:
        auth.limiter.failed(username, address)
        await auth.audit.arecord(action, target=username, outcome=Outcome.FAILED, address=address)
        return None
    auth.limiter.succeeded(username)
    return user


def set_session_cookie(response: Response, auth: AuthContext, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token,
        max_age=auth.session_ttl_s,
        httponly=True,
        samesite="strict",
        secure=auth.cookie_secure,
        path="/",
    )


def clear_session_cookie(response: Response, auth: AuthContext) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=auth.cookie_secure
    )


async def while_signed_in(
    stream: AsyncIterator[str], auth: AuthContext, session: Session
) -> AsyncIterator[str]:
    """A live stream that ends when its session does (logout, disabled user, expiry): checked
    before every message and every 15 s ping."""
    try:
        async for chunk in stream:
            if not await asyncio.to_thread(auth.store.is_live, session.id_hash):
                break
            yield chunk
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            await aclose()
