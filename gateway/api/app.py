"""The FastAPI application: one router per resource, the narrow interfaces on ``app.state``."""

from __future__ import annotations

from fastapi import FastAPI

from gateway.api import alarms, alerts, carer_page, carers, clock, devices, errors, health, records
from gateway.api.deps import ApiDeps

ROUTERS = (
    health.router,
    clock.router,
    records.router,
    alarms.router,
    carers.router,
    devices.router,
    alerts.router,
    carer_page.router,
)


def create_app(deps: ApiDeps) -> FastAPI:
    app = FastAPI(title="Telecare gateway", version="0.1.0")
    app.state.deps = deps
    errors.install(app)
    for router in ROUTERS:
        app.include_router(router)
    return app
