"""Carers: presence, status and routability; the control room's status override."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException

from api_models import Accepted, Carer, CarerStatusIn
from gateway.api.deps import InboxDep, LiveDep
from gateway.api.errors import errors
from gateway.api.params import CarerPath, SchemePath
from gateway.api.security import control

router = APIRouter(tags=["carers"])


@router.get("/api/v1/carers")
async def carers(live: LiveDep) -> list[Carer]:
    """Every carer with presence, status, what they are busy with and whether routable."""
    return live.carers()


@router.post(
    "/api/v1/carers/{scheme}/{carer_id}/status",
    status_code=202,
    dependencies=[Depends(control)],
    responses=errors(401, 404),
)
async def set_carer_status(
    scheme: SchemePath, carer_id: CarerPath, body: CarerStatusIn, live: LiveDep, inbox: InboxDep
) -> Accepted:
    """Control room override: mark a carer on break, unavailable, or available again."""
    s = live.scheme(scheme)
    if s is None or s.carer(carer_id) is None:
        raise HTTPException(404, f"no carer {carer_id!r} in scheme {scheme!r}")
    await inbox.submit_control(
        scheme, {"op": "carer_status", "carer_id": carer_id, "status": body.status.value}
    )
    return Accepted()
