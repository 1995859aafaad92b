"""Devices: test/maintenance mode, and the device-health queue (technical faults)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request

from api_models import (
    Accepted,
    DeviceHealthBoard,
    MaintenanceAccepted,
    MaintenanceIn,
    ProblemKind,
)
from gateway.api.deps import AuthDep, InboxDep, LiveDep, known_scheme
from gateway.api.errors import errors
from gateway.api.params import DevicePath, SchemePath, SchemeQuery
from gateway.api.security import OPERATIONS, allow, client_address
from gateway.auth.store import Session

router = APIRouter(tags=["devices"])


@router.post(
    "/api/v1/devices/{scheme}/{device_id}/maintenance",
    status_code=202,
    responses=errors(401, 403, 404),
)
async def set_maintenance(
    scheme: SchemePath,
    device_id: DevicePath,
    body: MaintenanceIn,
    live: LiveDep,
    inbox: InboxDep,
    auth: AuthDep,
    request: Request,
    me: Annotated[Session, allow(*OPERATIONS)],
) -> MaintenanceAccepted:
    """Put a device in test/maintenance mode (it will not page) for some minutes; 0 ends it."""
    s = live.scheme(scheme)
    if s is None or s.device(device_id) is None:
        raise HTTPException(404, f"no device {device_id!r} in scheme {scheme!r}")
    minutes = body.minutes
    if minutes is None:
        minutes = live.maintenance_default_minutes(scheme)
    until = live.clock().now + timedelta(minutes=minutes) if minutes else None
    await inbox.submit_control(
        scheme,
        {
            "op": "device_mode",
            "device_id": device_id,
            "until": until.isoformat() if until else None,
            "by": me.username,
        },
    )
    await auth.audit.arecord(
        "device.maintenance",
        username=me.username,
        role=me.role.value,
        target=f"{scheme}/{device_id}",
        address=client_address(request),
        detail={"minutes": minutes, "until": until.isoformat() if until else None},
    )
    return MaintenanceAccepted(until=until)


@router.get(
    "/api/v1/devices/health", dependencies=[allow(*OPERATIONS)], responses=errors(401, 403, 404)
)
async def device_health(live: LiveDep, scheme: SchemeQuery = None) -> DeviceHealthBoard:
    """The technical-fault queue, apart from alarms: devices offline (missed heartbeats), with
    a power or link failure, tampered, on low battery, or in a test window, each with since
    when. Most urgent problem first, then the oldest. Live, from the engine's memory."""
    known_scheme(live, scheme)
    return live.device_health(scheme)


CLEARABLE = (
    ProblemKind.LOW_BATTERY,
    ProblemKind.TAMPER,
    ProblemKind.POWER_FAIL,
    ProblemKind.LINK_FAIL,
)


@router.post(
    "/api/v1/devices/{scheme}/{device_id}/faults/{kind}/clear",
    status_code=202,
    responses=errors(401, 403, 404, 409),
)
async def clear_fault(
    scheme: SchemePath,
    device_id: DevicePath,
    kind: ProblemKind,
    live: LiveDep,
    inbox: InboxDep,
    auth: AuthDep,
    request: Request,
    me: Annotated[Session, allow(*OPERATIONS)],
) -> Accepted:
    """A technical fault has been seen to (battery changed, case closed): off the queue.
    409 for a problem that clears itself (offline, test window) or a fault not open now."""
    s = live.scheme(scheme)
    if s is None or s.device(device_id) is None:
        raise HTTPException(404, f"no device {device_id!r} in scheme {scheme!r}")
    if kind not in CLEARABLE:
        raise HTTPException(409, f"{kind.value} clears itself when the device is heard again")
    board = live.device_health(scheme)
    row = next((d for d in board.devices if d.device_id == device_id), None)
    if row is None or all(p.kind is not kind for p in row.problems):
        raise HTTPException(409, f"device {device_id} has no open {kind.value} fault")
    await inbox.submit_control(
        scheme,
        {"op": "clear_fault", "device_id": device_id, "code": kind.value, "by": me.username},
    )
    await auth.audit.arecord(
        "device.clear_fault",
        username=me.username,
        role=me.role.value,
        target=f"{scheme}/{device_id}",
        address=client_address(request),
        detail={"kind": kind.value},
    )
    return Accepted()
