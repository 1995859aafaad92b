"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api_models import Health, Readiness
from gateway.api.deps import HealthDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """The process is alive and its loops are running."""
    return Health(status="ok")


@router.get(
    "/readyz",
    responses={503: {"model": Readiness, "description": "Not ready: the body says which part."}},
)
async def readyz(health: HealthDep, response: Response) -> Readiness:
    """Ready to take events: journal open and broker session up. The database is reported
    but does not decide readiness: events are safe in the journal while it is away."""
    body = health.readiness()
    if not body.ready:
        response.status_code = 503
    return body


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"description": "Prometheus text exposition format."}},
)
async def metrics(health: HealthDep) -> Response:
    """Prometheus text exposition."""
    return Response(health.metrics_text(), media_type=CONTENT_TYPE_LATEST)
