"""Path and query parameters with their real types, so the OpenAPI document says what the
routes accept: the same id rules as the scheme files (devices/scheme.py, devices/registry.py,
responders/models.py), and UUIDs where ids are UUIDs. A value outside them is a 422 before any
route code runs."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import Path, Query

from devices.registry import IDENT as DEVICE_ID
from devices.scheme import SCHEME_ID
from responders.models import IDENT as CARER_ID

SchemePath = Annotated[
    str, Path(pattern=SCHEME_ID, description="Scheme id, as in its scheme file.")
]
DevicePath = Annotated[str, Path(pattern=DEVICE_ID, description="Device id within the scheme.")]
CarerPath = Annotated[str, Path(pattern=CARER_ID, description="Carer id within the scheme.")]
AlarmPath = Annotated[UUID, Path(description="Alarm id.")]
SchemeQuery = Annotated[
    str | None, Query(pattern=SCHEME_ID, description="Only this scheme (default: all).")
]
