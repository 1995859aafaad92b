"""The control room's live alert stream (server-sent events)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from api_models import Alert
from devices.storable import StoredTime
from gateway.api.deps import AuthDep, LiveDep, QueriesDep, known_scheme
from gateway.api.errors import errors
from gateway.api.params import SchemeQuery
from gateway.api.ports import DatabaseUnavailable
from gateway.api.security import OPERATIONS, allow, while_signed_in
from gateway.auth.store import Session

router = APIRouter(tags=["alerts"])


@router.get(
    "/api/v1/alerts/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Alerts as SSE."},
        **errors(401, 403, 404),
    },
)
async def alert_stream(
    live: LiveDep,
    auth: AuthDep,
    me: Annotated[Session, allow(*OPERATIONS)],
    scheme: SchemeQuery = None,
) -> StreamingResponse:
    """Server-sent events: control-room alerts as they happen (all schemes by default).
    Each ``event: alert`` carries an ``Alert``; ``ping`` every 15 s. Ends with the session."""
    known_scheme(live, scheme)
    key = f"control/{scheme}" if scheme else "control/*"
    return StreamingResponse(
        while_signed_in(live.stream(key, "alert"), auth, me), media_type="text/event-stream"
    )


@router.get(
    "/api/v1/alerts", dependencies=[allow(*OPERATIONS)], responses=errors(401, 403, 404, 503)
)
async def recent_alerts(
    live: LiveDep,
    queries: QueriesDep,
    since: Annotated[StoredTime, Query(description="Alerts after this time (scheme time).")],
    scheme: SchemeQuery = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> list[Alert]:
    """Alerts recorded after ``since``, oldest first, in the stream's shape: what a control
    room missed while its stream was down. From TimescaleDB, so the last few seconds may not
    be there yet (``/readyz`` says how much is still to ship); ask again once it has shipped
    and drop what you already have (delivery failures are on the stream only)."""
    known_scheme(live, scheme)
    try:
        return await queries.alerts(since, scheme, limit)
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc
