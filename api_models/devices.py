"""Device test/maintenance mode."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api_models.common import Shape


class MaintenanceIn(Shape):
    minutes: int | None = Field(
        default=None, ge=0, le=7 * 24 * 60, description="0 ends it; default: the policy's."
    )


class MaintenanceAccepted(Shape):
    status: str = "accepted"
    until: datetime | None = None
