"""The narrow interfaces the routes depend on. The gateway process implements them; tests can
hand the app fakes. Nothing here imports the service, so there is no import circle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, time
from typing import Any, Protocol

from api_models import (
    Alarm,
    Alert,
    AuditEntry,
    Carer,
    CarerPageState,
    ClockReading,
    DeadLetterRow,
    Decision,
    DeviceEventRow,
    DeviceHealthBoard,
    IngestStats,
    Readiness,
    TimelineRow,
)
from api_models.visits import CarerRun, NightVisits
from devices.decoders import RecordType
from devices.scheme import Scheme
from gateway.engine.model import OperatorIn, VisitControlIn
from gateway.engine.operator import Verdict
from gateway.kpi import AlarmTimes


class DatabaseUnavailable(Exception):
    """TimescaleDB did not answer; the API says 503 and names the reason."""


class NotAnId(ValueError):
    """An identifier the database cannot even parse (for example a malformed UUID)."""


class LiveView(Protocol):
    """What the engine holds now, in memory (never waits on the database)."""

    def scheme(self, scheme_id: str) -> Scheme | None: ...

    def scheme_ids(self) -> list[str]: ...

    def clock(self) -> ClockReading: ...

    def alarms(self, open_only: bool) -> list[Alarm]: ...

    def alarm(self, alarm_id: str) -> Alarm | None: ...

    def carers(self) -> list[Carer]: ...

    def carer_page(self, scheme_id: str, carer_id: str) -> CarerPageState: ...

    def maintenance_default_minutes(self, scheme_id: str) -> int: ...

    def device_health(self, scheme_id: str | None) -> DeviceHealthBoard: ...

    def night_hours(self, scheme_id: str) -> tuple[time, time]:
        """The scheme's night window (local start, end), from its triage policy."""
        ...

    def operator_check(self, inp: OperatorIn) -> Verdict:
        """Does an operator's action still apply to the alarm as the engine holds it now?"""
        ...

    def night_visits(self, scheme_id: str, night: date | None) -> NightVisits | None:
        """A night's planned visits with their status (default the live night); None when
        the scheme has no schedule or the night is not held (see ``visit_events``)."""
        ...

    def visit_check(self, inp: VisitControlIn) -> str | None:
        """Does an operator's change still apply to the night's visits? None if so,
        ``"already"`` if the night is already where it wants it, else why not."""
        ...

    def carer_run(self, scheme_id: str, carer_id: str) -> CarerRun:
        """The carer's run tonight: their visits in order, and which are late."""
        ...

    def stream(self, key: str, event: str) -> AsyncIterator[str]:
        """Server-sent events for one subscriber of the dispatch hub."""
        ...


class ControlInbox(Protocol):
    """Where the API's instructions go: journaled like any input, then applied by the engine."""

    async def submit_control(
        self, scheme: str, body: dict[str, Any], key: str | None = None
    ) -> bool:
        """Journal a control instruction; False if ``key`` was journaled already (a retry)."""
        ...

    async def submit_carer(
        self, scheme: str, rec_type: RecordType, key: str, body: dict[str, Any]
    ) -> None: ...


class Queries(Protocol):
    """Reads from TimescaleDB (the system of record). Raise ``DatabaseUnavailable``."""

    async def events(self, scheme: str | None, limit: int) -> list[DeviceEventRow]: ...

    async def dead_letters(self, limit: int) -> list[DeadLetterRow]: ...

    async def audit(
        self, limit: int, username: str | None, action: str | None
    ) -> list[AuditEntry]: ...

    async def alarm_history(self, alarm_id: str) -> tuple[list[TimelineRow], list[Decision]]: ...

    async def alarm_times(self, scheme: str, since: datetime) -> list[AlarmTimes]: ...

    async def alerts(self, since: datetime, scheme: str | None, limit: int) -> list[Alert]: ...


class HealthView(Protocol):
    """Process health, readiness and the ingest figures."""

    def readiness(self) -> Readiness: ...

    def ingest_stats(self) -> IngestStats: ...

    def metrics_text(self) -> bytes: ...
