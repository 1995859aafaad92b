"""The FastAPI application: one router per resource, the narrow interfaces on ``app.state``."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.api import (
    alarms,
    alerts,
    audit,
    carer_page,
    carers,
    clock,
    devices,
    docs,
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


def create_app(deps: ApiDeps) -> FastAPI:
    # The docs routes are our own (docs.py), so they sit behind the same rules as the rest.
    app = FastAPI(
        title="Telecare gateway", version="0.1.0", docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.deps = deps
    for router in ROUTERS:
        app.include_router(router)
    require_rules(app)
    return app
