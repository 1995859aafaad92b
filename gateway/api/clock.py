"""The scheme clock, so a simulator or handset can share it exactly."""

from __future__ import annotations

from fastapi import APIRouter

from api_models import ClockReading
from gateway.api.deps import LiveDep

router = APIRouter(tags=["clock"])


@router.get("/api/v1/clock")
async def clock(live: LiveDep) -> ClockReading:
    """The gateway's scheme clock: now, speed and anchor."""
    return live.clock()
