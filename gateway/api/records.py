"""What has been ingested and recorded: journal figures, device events, dead letters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api_models import DeadLetterRow, DeviceEventRow, IngestStats
from gateway.api.deps import HealthDep, LiveDep, QueriesDep, known_scheme
from gateway.api.errors import errors
from gateway.api.params import SchemeQuery
from gateway.api.ports import DatabaseUnavailable

router = APIRouter(tags=["records"])

Limit = Annotated[int, Query(ge=1, le=1000, description="Rows to return, newest first.")]


@router.get("/api/v1/ingest")
async def ingest_stats(health: HealthDep) -> IngestStats:
    """Journal heads, what has been shipped, and the schemes served."""
    return health.ingest_stats()


@router.get("/api/v1/events", responses=errors(404, 503))
async def events(
    live: LiveDep, queries: QueriesDep, limit: Limit = 50, scheme: SchemeQuery = None
) -> list[DeviceEventRow]:
    """Recent device events this gateway recorded in TimescaleDB (the system of record)."""
    known_scheme(live, scheme)
    try:
        return await queries.events(scheme, limit)
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc


@router.get("/api/v1/dead-letters", responses=errors(503))
async def dead_letters(queries: QueriesDep, limit: Limit = 50) -> list[DeadLetterRow]:
    """Recent dead letters with their reasons (payloads are not returned)."""
    try:
        return await queries.dead_letters(limit)
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc
