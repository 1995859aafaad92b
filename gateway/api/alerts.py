"""The control room's live alert stream (server-sent events)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from gateway.api.deps import LiveDep, known_scheme
from gateway.api.errors import errors
from gateway.api.params import SchemeQuery

router = APIRouter(tags=["alerts"])


@router.get(
    "/api/v1/alerts/stream",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "Alerts as SSE."},
        **errors(404),
    },
)
async def alert_stream(live: LiveDep, scheme: SchemeQuery = None) -> StreamingResponse:
    """Server-sent events: control-room alerts as they happen (all schemes by default).
    Each ``event: alert`` carries an ``Alert``; ``ping`` every 15 s."""
    known_scheme(live, scheme)
    key = f"control/{scheme}" if scheme else "control/*"
    return StreamingResponse(live.stream(key, "alert"), media_type="text/event-stream")
