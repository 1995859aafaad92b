"""The narrow interfaces the routes depend on. The gateway process implements them; tests can
hand the app fakes. Nothing here imports the service, so there is no import circle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from api_models import (
    Alarm,
    Carer,
    CarerPageState,
    ClockReading,
    DeadLetterRow,
    Decision,
    DeviceEventRow,
    IngestStats,
    Readiness,
    TimelineRow,
)
from devices.decoders import RecordType
from devices.scheme import Scheme


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

    def stream(self, key: str, event: str) -> AsyncIterator[str]:
        """Server-sent events for one subscriber of the dispatch hub."""
        ...


class ControlInbox(Protocol):
    """Where the API's instructions go: journaled like any input, then applied by the engine."""

    async def submit_control(self, scheme: str, body: dict[str, Any]) -> None: ...

    async def submit_carer(
        self, scheme: str, rec_type: RecordType, key: str, body: dict[str, Any]
    ) -> None: ...


class Queries(Protocol):
    """Reads from TimescaleDB (the system of record). Raise ``DatabaseUnavailable``."""

    async def events(self, scheme: str | None, limit: int) -> list[DeviceEventRow]: ...

    async def dead_letters(self, limit: int) -> list[DeadLetterRow]: ...

    async def alarm_history(self, alarm_id: str) -> tuple[list[TimelineRow], list[Decision]]: ...


class HealthView(Protocol):
    """Process health, readiness and the ingest figures."""

    def readiness(self) -> Readiness: ...

    def ingest_stats(self) -> IngestStats: ...

    def metrics_text(self) -> bytes: ...
