"""Carers: presence, status and routability; the control room's status override."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request

from api_models import Accepted, Carer, CarerStatusIn
from gateway.api.deps import AuthDep, InboxDep, LiveDep
from gateway.api.errors import errors
from gateway.api.params import CarerPath, SchemePath
from gateway.api.security import OPERATIONS, allow, client_address
from gateway.auth.store import Session

router = APIRouter(tags=["carers"])


@router.get("/api/v1/carers", dependencies=[allow(*OPERATIONS)], responses=errors(401, 403))
async def carers(live: LiveDep) -> list[Carer]:
    """Every carer with presence, status, what they are busy with and whether routable."""
    return live.carers()


@router.post(
    "/api/v1/carers/{scheme}/{carer_id}/status",
    status_code=202,
    responses=errors(401, 403, 404),
)
async def set_carer_status(
    scheme: SchemePath,
    carer_id: CarerPath,
    body: CarerStatusIn,
    live: LiveDep,
    inbox: InboxDep,
    auth: AuthDep,
    request: Request,
    me: Annotated[Session, allow(*OPERATIONS)],
) -> Accepted:
    """Control room override: mark a carer on break, unavailable, or available again."""
    s = live.scheme(scheme)
    if s is None or s.carer(carer_id) is None:
        raise HTTPException(404, f"no carer {carer_id!r} in scheme {scheme!r}")
    await inbox.submit_control(
        scheme,
        {
            "op": "carer_status",
            "carer_id": carer_id,
            "status": body.status.value,
            "by": me.username,
        },
    )
    await auth.audit.arecord(
        "carer.status",
        username=me.username,
        role=me.role.value,
        target=f"{scheme}/{carer_id}",
        address=client_address(request),
        detail={"status": body.status.value},
    )
    return Accepted()
