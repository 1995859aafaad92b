"""Devices: test/maintenance mode."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, HTTPException

from api_models import MaintenanceAccepted, MaintenanceIn
from gateway.api.deps import InboxDep, LiveDep
from gateway.api.errors import errors
from gateway.api.params import DevicePath, SchemePath
from gateway.api.security import control

router = APIRouter(tags=["devices"])


@router.post(
    "/api/v1/devices/{scheme}/{device_id}/maintenance",
    status_code=202,
    dependencies=[Depends(control)],
    responses=errors(401, 404),
)
async def set_maintenance(
    scheme: SchemePath, device_id: DevicePath, body: MaintenanceIn, live: LiveDep, inbox: InboxDep
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
        },
    )
    return MaintenanceAccepted(until=until)
