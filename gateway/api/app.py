"""The FastAPI application: one router per resource, the narrow interfaces on ``app.state``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.api import (
    alarms,
    alerts,
    audit,
    carer_page,
    carers,
    clock,
    devices,
    docs,
    errors,
    health,
    kpi,
    operator,
    records,
    reports,
    session,
    users,
    visits,
)
from gateway.api.deps import ApiDeps
from gateway.api.security import require_rules

ROUTERS = (
    health.router,
    docs.router,
    session.router,
    clock.router,
    records.router,
    alarms.router,
    operator.router,
    carers.router,
    devices.router,
    kpi.router,
    alerts.router,
    users.router,
    audit.router,
    carer_page.router,
    reports.router,
    visits.router,
    visits.carer_router,
)


def route_table() -> list[APIRoute]:
    """Every route the gateway serves, with its full path and dependencies (for the access
    check below and the role x route test)."""
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


class AllowHeader:
    """A 405 names every method the path supports. Starlette names only those of the first
    route object that matched the path, and ``/api/v1/session`` and ``/api/v1/users`` have
    one route object per method."""

    def __init__(self, app: ASGIApp, routes: list[APIRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                path = scope["path"]
                methods = sorted(
                    {m for r in self.routes if r.path_regex.match(path) for m in r.methods or ()}
                )
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(methods).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)


def create_app(deps: ApiDeps) -> FastAPI:
    # The docs routes are our own (docs.py), so they sit behind the same rules as the rest.
    app = FastAPI(
        title="Telecare gateway", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.deps = deps
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    # Fail closed: every route has a rule, including any added on the app itself.
    require_rules([*route_table(), *(r for r in app.router.routes if isinstance(r, APIRoute))])
    app.add_middleware(AllowHeader, routes=route_table())
    return app
