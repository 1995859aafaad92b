"""Engine state, inputs and commands: plain frozen values, no I/O.

The core (``gateway.engine.core``) takes a state, one input and ``now`` and returns the new
state and a list of commands; the shell runs the commands. Everything here serialises to JSON
(``to_json``/``from_json``) so alarms and carers can be persisted and restored exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from devices.events import Priority
from responders.protocol import CarerStatus as CarerStatus  # one enum, shared with records
from responders.protocol import OutcomeCode


class AlarmState(StrEnum):
    RAISED = "raised"  # triaged; waiting (deferred bed exit) or about to be offered
    OFFERED = "offered"  # one carer (or a pair) has an offer and a timeout
    ESCALATED = "escalated"  # offered to everyone on shift; control room and senior told
    ACCEPTED = "accepted"
    ARRIVED = "arrived"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    # An alarm-kind event from a device in a test window: on the control room's board, never
    # offered to a carer, until an operator promotes it (then it is raised like any alarm).
    TEST_CALL = "test_call"


OPEN_STATES = frozenset(
    {
        AlarmState.RAISED,
        AlarmState.OFFERED,
        AlarmState.ESCALATED,
        AlarmState.ACCEPTED,
        AlarmState.ARRIVED,
    }
)


# The outcome codes are the handset protocol's own: one list, from the wire to the records.
Outcome = OutcomeCode


class DeadlineKind(StrEnum):
    DEFER = "defer"  # bed/chair exit: open only if not cleared by then
    OFFER_TIMEOUT = "offer_timeout"  # nobody accepted the current offer
    ESCALATION_REPEAT = "escalation_repeat"  # escalated and still unanswered: tell again
    ARRIVAL = "arrival"  # accepted but not arrived within travel time + margin
    ON_SITE = "on_site"  # arrived but not resolved: check in


class ActionKind(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    ARRIVED = "arrived"
    RESOLVED = "resolved"


PRIORITY_RANK = {Priority.P0: 0, Priority.P1: 1, Priority.P2: 2, Priority.P3: 3}


def higher(a: Priority, b: Priority) -> Priority:
    """The more urgent of two priorities."""
    return a if PRIORITY_RANK[a] <= PRIORITY_RANK[b] else b


@dataclass(frozen=True, slots=True)
class EscalationChain:
    """Snapshotted onto each alarm when it opens: editing the policy never changes it."""

    offer_timeout_s: int = 60
    max_individual_offers: int = 3
    escalation_repeat_s: int = 120
    arrival_margin_s: int = 120
    arrival_repeat_s: int = 300
    on_site_check_s: int = 3600
    advise_edt: bool = False


@dataclass(frozen=True, slots=True)
class Offer:
    offer_id: str
    carer_id: str
    sent_at: datetime
    role: str  # "primary", "second" (double-handed), "all" (escalated broadcast)


@dataclass(frozen=True, slots=True)
class Deadline:
    due: datetime
    epoch: int
    kind: DeadlineKind


@dataclass(frozen=True, slots=True)
class Alarm:
    alarm_id: str
    scheme: str
    kind: str  # the event kind, or "callout"
    priority: Priority
    state: AlarmState
    opened_at: datetime
    received_at: datetime
    last_at: datetime  # latest transition time; transitions never go backwards
    resident_ref: str | None = None
    flat_id: str | None = None
    device_id: str | None = None
    callout_id: str | None = None
    double_handed: bool = False
    alert_control_room: bool = False
    welfare_check: bool = False
    count: int = 1
    event_ids: tuple[str, ...] = ()
    chain: EscalationChain = EscalationChain()
    offers: tuple[Offer, ...] = ()  # live offers
    offers_sent: int = 0
    tried: tuple[str, ...] = ()  # carers who declined, timed out or were offered
    accepted_by: tuple[str, ...] = ()
    arrived_by: tuple[str, ...] = ()
    deadline: Deadline | None = None
    epoch: int = 0
    outcome: Outcome | None = None
    note: str = ""
    reason: str = ""
    # The control room's hold on its own alerts for this alarm (``OperatorIn``): repeats are
    # not sent to the control room while silenced, or while the alarm is still in the state an
    # operator acknowledged. Carers' offers and the escalation itself are never held.
    silenced_until: datetime | None = None
    acked_by: str | None = None
    acked_state: str | None = None
    nagged: int = 0  # repeat alerts sent in the current state (the first always goes)

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def on_board(self) -> bool:
        """Shown on the control room's board: open alarms and test calls."""
        return self.is_open or self.state is AlarmState.TEST_CALL


@dataclass(frozen=True, slots=True)
class Position:
    """Where a carer was last known to be (see ``gateway.engine.travel``)."""

    flat: str | None = None
    block: str | None = None
    x: float | None = None
    y: float | None = None
    floor: int = 0


@dataclass(frozen=True, slots=True)
class CarerState:
    carer_id: str
    scheme: str
    logged_in: bool = False
    handset_seen: datetime | None = None
    position: Position = Position()
    status: CarerStatus = CarerStatus.AVAILABLE
    busy_with: str | None = None


# ---- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EventIn:
    scheme: str
    event_id: str
    device_id: str
    kind: str
    occurred_at: datetime
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CalloutIn:
    scheme: str
    callout_id: str
    resident_ref: str
    priority: Priority
    reason: str
    requested_at: datetime
    received_at: datetime
    operator: str = "unknown"


@dataclass(frozen=True, slots=True)
class ActionIn:
    scheme: str
    carer_id: str
    action: ActionKind
    alarm_id: str
    offer_id: str | None = None
    outcome: Outcome | None = None
    note: str = ""
    action_id: str = ""


@dataclass(frozen=True, slots=True)
class PresenceIn:
    """Handset presence: login, logout, heartbeat (optionally with a position), status."""

    scheme: str
    carer_id: str
    what: str  # "login", "logout", "heartbeat", "status"
    position: Position | None = None
    status: CarerStatus | None = None


@dataclass(frozen=True, slots=True)
class DeviceModeIn:
    """Put a device in test/maintenance mode until a time (None ends it)."""

    scheme: str
    device_id: str
    until: datetime | None


@dataclass(frozen=True, slots=True)
class PromoteIn:
    """The control room turns a test call into a real alarm (one action)."""

    scheme: str
    alarm_id: str
    by: str = "control room"


class OperatorOp(StrEnum):
    """What an operator can do to an alarm from the control room (journaled, audited)."""

    ASSIGN = "assign"  # offer it to these carers (one, or a pair), withdrawing the others
    ESCALATE = "escalate"  # offer it to everyone on shift now, tell the on-call senior
    ACCEPT = "accept"  # a carer phoned in: accept their live offer for them
    ARRIVED = "arrived"  # a carer phoned in: mark them arrived
    RESOLVE = "resolve"  # close it with an outcome and a note
    NOTE = "note"  # add a note to its timeline
    ACKNOWLEDGE = "acknowledge"  # stop its repeated alerts while it stays in this state
    SILENCE = "silence"  # stop its repeated alerts until a time (None: unsilence)


@dataclass(frozen=True, slots=True)
class OperatorIn:
    """An operator's action on one alarm. ``by`` is the signed-in account that asked."""

    scheme: str
    alarm_id: str
    op: OperatorOp
    by: str
    carers: tuple[str, ...] = ()
    outcome: Outcome | None = None
    note: str = ""
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class FaultClearIn:
    """An operator says a device's technical fault has been seen to (battery changed...)."""

    scheme: str
    device_id: str
    code: str
    by: str


@dataclass(frozen=True, slots=True)
class TimerIn:
    alarm_id: str
    epoch: int


@dataclass(frozen=True, slots=True)
class TickIn:
    """Periodic: device supervision, handset silence, coverage checks.

    ``horizon`` is how far ingest has got (``gateway.engine.horizon``): silence is counted
    only up to it, so the gateway's own backlog never reads as a silent device. None: caught
    up (the horizon is now). ``behind`` says why the horizon lags, for the control room."""

    horizon: datetime | None = None
    behind: str | None = None


class VisitOp(StrEnum):
    """An operator's change to tonight's planned visits (journaled, audited)."""

    CANCEL = "cancel"
    MOVE = "move"
    CONTACTED = "contacted"
    EXTRA = "extra"


@dataclass(frozen=True, slots=True)
class VisitActionIn:
    """A carer's check-in, check-out, frustrated visit or contact made (handset or page).
    Only the note's length comes in: the visit record never holds a note's text."""

    scheme: str
    carer_id: str
    visit_action_id: str
    action: str  # responders.protocol.VisitAction
    visit_id: str
    at: datetime
    reason: str | None = None
    note_len: int = 0


@dataclass(frozen=True, slots=True)
class VisitControlIn:
    """An operator's change to one night's visits; ``by`` is the signed-in account."""

    scheme: str
    op: VisitOp
    visit_id: str
    by: str
    at: datetime
    night: date | None = None  # None: the live night (``visits.plan_night``)
    cancelled_by: str | None = None  # "person" | "council"
    reason: str = ""
    note_len: int = 0
    agreed_at: datetime | None = None
    run: str | None = None
    client: str | None = None
    minutes: int | None = None
    window_min: int = 30
    double: bool = False
    critical: bool = False
    service: str = ""
    level: str = ""


Input = (
    EventIn
    | CalloutIn
    | ActionIn
    | PresenceIn
    | DeviceModeIn
    | PromoteIn
    | OperatorIn
    | FaultClearIn
    | TimerIn
    | TickIn
    | VisitActionIn
    | VisitControlIn
)


# ---- commands -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendOffer:
    scheme: str
    carer_id: str
    alarm_id: str
    offer_id: str
    role: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CancelOffer:
    scheme: str
    carer_id: str
    alarm_id: str
    offer_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Remind:
    scheme: str
    carer_id: str
    alarm_id: str
    message: str


@dataclass(frozen=True, slots=True)
class NotifyControlRoom:
    scheme: str
    priority: Priority
    code: str
    message: str
    alarm_id: str | None = None
    # Extra fields of the alert's body (a visit alert's visit_id, run, client, agreed_at).
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NotifyOnCall:
    scheme: str
    carer_id: str | None  # None: nobody on call is rostered (the control room is told too)
    alarm_id: str
    message: str


@dataclass(frozen=True, slots=True)
class AdviseEdt:
    scheme: str
    alarm_id: str
    message: str


@dataclass(frozen=True, slots=True)
class FollowUpTask:
    scheme: str
    alarm_id: str
    kind: str
    message: str


@dataclass(frozen=True, slots=True)
class CarelineStatus:
    scheme: str
    callout_id: str
    alarm_id: str
    status: str
    at: datetime
    eta_s: int | None = None
    outcome: str | None = None


@dataclass(frozen=True, slots=True)
class ActionResult:
    scheme: str
    carer_id: str
    alarm_id: str
    action: str
    ok: bool
    reason: str
    offer_id: str | None = None
    action_id: str = ""


@dataclass(frozen=True, slots=True)
class ScheduleDeadline:
    alarm_id: str
    epoch: int
    due: datetime
    kind: DeadlineKind


@dataclass(frozen=True, slots=True)
class RecordTransition:
    alarm_id: str
    scheme: str
    state: str  # an AlarmState, or a step such as "merged", "offer_timeout", "retrigger"
    at: datetime
    priority: Priority
    carer_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordDecision:
    alarm_id: str
    scheme: str
    at: datetime
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class RaiseTechnical:
    scheme: str
    device_id: str
    code: str
    message: str
    at: datetime
    cleared: bool = False


@dataclass(frozen=True, slots=True)
class VisitResult:
    """The answer to a carer's visit action, on their dispatch topic."""

    scheme: str
    carer_id: str
    visit_action_id: str
    visit_id: str
    ok: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class RecordVisit:
    """One ``visit_events`` row: a step of a planned visit's night."""

    scheme: str
    night: date
    visit_id: str
    run: str
    client_ref: str
    step: str
    at: datetime
    agreed_at: datetime
    carer_id: str | None = None
    alarm_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


Command = (
    SendOffer
    | CancelOffer
    | Remind
    | NotifyControlRoom
    | NotifyOnCall
    | AdviseEdt
    | FollowUpTask
    | CarelineStatus
    | ActionResult
    | ScheduleDeadline
    | RecordTransition
    | RecordDecision
    | RaiseTechnical
    | VisitResult
    | RecordVisit
)


def to_json(value: Any) -> Any:
    """A dataclass tree as JSON-ready data (datetimes as ISO strings, enums as values)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple | list | frozenset | set):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    return value
