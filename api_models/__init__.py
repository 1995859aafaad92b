"""The gateway HTTP API's shapes (pydantic), shared by the gateway and its clients.

The gateway declares these as the response models of its routes (so they are the OpenAPI
schema); the control-room TUI parses the same models. Neither side re-declares a shape. This
package imports nothing of the gateway, so clients can depend on it (see test_architecture).
Unknown fields are ignored when parsing, so a newer gateway never breaks an older client.
"""

from api_models.alarms import (
    PRIORITY_RANK,
    Alarm,
    AlarmDetail,
    Candidate,
    Deadline,
    Decision,
    DecisionRecord,
    Offer,
    TimelineRow,
)
from api_models.auth import (
    AuditEntry,
    LoginIn,
    Role,
    SessionInfo,
    SessionOut,
    UserIn,
    UserOut,
    UserReset,
)
from api_models.carer_page import (
    ActionAccepted,
    ActionIn,
    CarerLoginIn,
    CarerPageState,
    CarerSignedIn,
    DispatchOffer,
    HeldAlarm,
    PresenceIn,
)
from api_models.carers import Carer, CarerStatusIn, Position
from api_models.common import Accepted, Shape, Status
from api_models.credentials import Account, DevCredentials, load_dev_credentials
from api_models.devices import (
    DeviceHealth,
    DeviceHealthBoard,
    DeviceProblem,
    MaintenanceAccepted,
    MaintenanceIn,
    ProblemKind,
)
from api_models.health import (
    ClockReading,
    Health,
    IngestStats,
    Readiness,
    ShipperStatus,
    StreamStatus,
)
from api_models.kpi import KpiFigures, SchemeKpi
from api_models.operator import (
    ActionRequest,
    ActionStatus,
    AssignIn,
    NoteIn,
    OnBehalfIn,
    OperatorAccepted,
    ResolveIn,
    SilenceIn,
)
from api_models.records import DeadLetterRow, DeviceEventRow
from api_models.streams import Alert

__all__ = [
    "PRIORITY_RANK",
    "Accepted",
    "Account",
    "ActionAccepted",
    "ActionIn",
    "ActionRequest",
    "ActionStatus",
    "Alarm",
    "AlarmDetail",
    "Alert",
    "AssignIn",
    "AuditEntry",
    "Candidate",
    "Carer",
    "CarerLoginIn",
    "CarerPageState",
    "CarerSignedIn",
    "CarerStatusIn",
    "ClockReading",
    "DeadLetterRow",
    "Deadline",
    "Decision",
    "DecisionRecord",
    "DevCredentials",
    "DeviceEventRow",
    "DeviceHealth",
    "DeviceHealthBoard",
    "DeviceProblem",
    "DispatchOffer",
    "Health",
    "HeldAlarm",
    "IngestStats",
    "KpiFigures",
    "LoginIn",
    "MaintenanceAccepted",
    "MaintenanceIn",
    "NoteIn",
    "Offer",
    "OnBehalfIn",
    "OperatorAccepted",
    "Position",
    "PresenceIn",
    "ProblemKind",
    "Readiness",
    "ResolveIn",
    "Role",
    "SchemeKpi",
    "SessionInfo",
    "SessionOut",
    "Shape",
    "ShipperStatus",
    "SilenceIn",
    "Status",
    "StreamStatus",
    "TimelineRow",
    "UserIn",
    "UserOut",
    "UserReset",
    "load_dev_credentials",
]
