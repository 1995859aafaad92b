"""Payloads of the live streams (server-sent events)."""

from __future__ import annotations

from datetime import datetime

from api_models.common import Shape


class Alert(Shape):
    """One ``event: alert`` from ``GET /api/v1/alerts/stream``.

    ``type`` is alert, on_call, edt, follow_up, technical or delivery_failed; only ``alert``
    carries a priority and code, ``technical`` carries a code and device, ``on_call`` the carer
    told; ``delivery_failed`` (a publish the broker refused or never acknowledged, see
    docs/protocol.md) carries a code, priority, carer and alarm.
    """

    type: str = "alert"
    message: str = ""
    scheme: str | None = None
    at: datetime | None = None
    priority: str | None = None
    code: str | None = None
    alarm_id: str | None = None
    carer_id: str | None = None
    device_id: str | None = None
    kind: str | None = None
    cleared: bool | None = None
