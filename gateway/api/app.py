"""The FastAPI application: one router per resource, the narrow interfaces on ``app.state``."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

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
    records,
    session,
    users,
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
    carers.router,
    devices.router,
    alerts.router,
    users.router,
    audit.router,
    carer_page.router,
)


def route_table() -> list[APIRoute]:
    """Every route the gateway serves, with its full path and dependencies (for the access
    check below and the role x route test)."""
    return [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)]


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
    return app
