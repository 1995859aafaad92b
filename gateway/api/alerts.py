"""The control room's live alert stream (server-sent events)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import StreamingResponse

from api_models import Alert
from gateway.api.deps import AuthDep, LiveDep, QueriesDep, known_scheme
from gateway.api.errors import errors
from gateway.api.params import SchemeQuery
from gateway.api.ports import DatabaseUnavailable
from gateway.api.security import OPERATIONS, allow, while_signed_in
from gateway.auth.store import Session

router = APIRouter(tags=["alerts"])
SINCE_MAX = 4_102_444_800  # 2100-01-01: a time far past any scheme clock


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
    since: Annotated[
        float,
        Query(
            ge=0,
            le=SINCE_MAX,
            description="Alerts after this time: Unix seconds (UTC) on the scheme clock, as"
            " the alerts' own ``at`` times.",
        ),
    ],
    scheme: SchemeQuery = None,
    limit: Annotated[int, Query(ge=1, le=2000)] = 500,
) -> list[Alert]:
    """Alerts recorded at or after ``since``, oldest first, in the stream's shape: what a control
    room missed while its stream was down. From TimescaleDB, so the last few seconds may not
    be there yet (``/readyz`` says how much is still to ship); ask again once it has shipped
    and drop what you already have (delivery failures are on the stream only)."""
    known_scheme(live, scheme)
    after = datetime.fromtimestamp(since, UTC)
    try:
        return await queries.alerts(after, scheme, limit)
    except DatabaseUnavailable as exc:
        raise HTTPException(503, f"database unavailable: {exc}") from exc
