"""The gateway API's shapes as the control room reads them.

They are the gateway's own response models (``api_models``), not a copy: a shape changed on
the gateway is changed here. Unknown fields are ignored, so a newer gateway can add fields
without breaking a running control room.
"""

from __future__ import annotations

from api_models import (
    PRIORITY_RANK,
    Alarm,
    AlarmDetail,
    Alert,
    Candidate,
    Carer,
    ClockReading,
    Deadline,
    Decision,
    DecisionRecord,
    DeviceHealth,
    DeviceHealthBoard,
    DeviceProblem,
    KpiFigures,
    Offer,
    OperatorAccepted,
    Position,
    Readiness,
    SchemeKpi,
    SessionInfo,
    TimelineRow,
)

__all__ = [
    "PRIORITY_RANK",
    "Alarm",
    "AlarmDetail",
    "Alert",
    "Candidate",
    "Carer",
    "ClockReading",
    "Deadline",
    "Decision",
    "DecisionRecord",
    "DeviceHealth",
    "DeviceHealthBoard",
    "DeviceProblem",
    "KpiFigures",
    "Offer",
    "OperatorAccepted",
    "Position",
    "Readiness",
    "SchemeKpi",
    "SessionInfo",
    "TimelineRow",
]
