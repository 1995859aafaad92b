"""A small typed async client for the gateway's HTTP API (the only way the TUI sees the gateway)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from dashboard_tui.models import (
    Alarm,
    AlarmDetail,
    Alert,
    Carer,
    ClockReading,
    DeviceHealthBoard,
    OperatorAccepted,
    Readiness,
    SchemeKpi,
    SessionInfo,
)

CarerStatus = Literal["available", "on_break", "unavailable"]
T = TypeVar("T", bound=BaseModel)

# The stream pings every 15 s; three missed pings means the connection is dead even if TCP
# has not noticed yet.
STREAM_READ_TIMEOUT_S = 45.0


class GatewayError(Exception):
    """Something went wrong talking to the gateway; ``path`` says where."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class GatewayUnreachable(GatewayError):
    """No HTTP answer at all: refused, timed out, reset."""


class GatewayRefused(GatewayError):
    """The gateway answered with an error status (``status``) or a body we cannot read."""

    def __init__(self, path: str, reason: str, status: int | None = None) -> None:
        super().__init__(path, reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A non-alert stream event (``hello`` on connect, ``ping`` every 15 s)."""

    event: str


StreamItem = Alert | Heartbeat


class GatewayClient:
    """Owns one ``httpx.AsyncClient``; use as ``async with GatewayClient(url) as gw:``.

    With ``username`` and ``password`` it signs in (``POST /api/v1/session``) before its first
    request and again when the gateway says the session has ended; with ``token`` it uses
    that session as it is. ``transport`` lets tests serve canned responses.
    """

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout_s: float = 5.0,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else None
        self._http = httpx.AsyncClient(
            base_url=self.base_url, transport=transport, timeout=timeout_s, headers=headers
        )
        self._login = (username, password) if username and password else None
        self._signed_in = token is not None
        # The first poll asks for several things at once: one sign-in serves them all
        # (each would otherwise sign in, and the gateway's sign-in limiter counts them).
        self._signing_in = asyncio.Lock()
        self._session = 0  # bumped by each sign-in

    async def _ensure_signed_in(self, stale: int | None = None) -> None:
        """Sign in unless signed in already; with ``stale`` (the session a 401 came from),
        sign in again unless another request already has."""
        if self._login is None:
            return
        async with self._signing_in:
            if self._signed_in and (stale is None or stale != self._session):
                return
            await self.sign_in()

    async def sign_in(self) -> None:
        """A new session for the configured account (``GatewayRefused`` if refused)."""
        if self._login is None:
            return
        path = "/api/v1/session"
        user, password = self._login
        try:
            resp = await self._http.post(path, json={"username": user, "password": password})
        except httpx.TransportError as exc:
            raise GatewayUnreachable(path, _describe(exc)) from exc
        if resp.status_code != 200:
            raise GatewayRefused(path, _error_detail(resp), resp.status_code)
        self._http.headers["Authorization"] = f"Bearer {resp.json()['token']}"
        self._http.cookies.clear()
        self._signed_in = True
        self._session += 1

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # ---- reads ------------------------------------------------------------------------------

    async def readiness(self) -> Readiness:
        """``/readyz``: a 503 is an answer (not ready), not an error."""
        return Readiness.model_validate(await self._get("/readyz", ok=(200, 503)))

    async def clock(self) -> ClockReading:
        return ClockReading.model_validate(await self._get("/api/v1/clock"))

    async def open_alarms(self) -> list[Alarm]:
        data = await self._get("/api/v1/alarms", params={"open": "true"})
        return _parse_list(_ALARMS, data, "/api/v1/alarms")

    async def carers(self) -> list[Carer]:
        return _parse_list(_CARERS, await self._get("/api/v1/carers"), "/api/v1/carers")

    async def alarm_detail(self, alarm_id: str) -> AlarmDetail:
        path = f"/api/v1/alarms/{alarm_id}"
        return _parse(AlarmDetail, await self._get(path), path)

    async def whoami(self) -> SessionInfo:
        """The signed-in account (``GET /api/v1/session``): shown in the header."""
        return _parse(SessionInfo, await self._get("/api/v1/session"), "/api/v1/session")

    async def device_health(self) -> DeviceHealthBoard:
        path = "/api/v1/devices/health"
        return _parse(DeviceHealthBoard, await self._get(path), path)

    async def kpi(self) -> list[SchemeKpi]:
        return _parse_list(_KPI, await self._get("/api/v1/kpi"), "/api/v1/kpi")

    async def alerts_since(self, since: datetime) -> list[Alert]:
        """Alerts recorded after ``since`` (the catch-up after the stream was down)."""
        data = await self._get("/api/v1/alerts", params={"since": str(since.timestamp())})
        return _parse_list(_ALERTS, data, "/api/v1/alerts")

    # ---- writes -----------------------------------------------------------------------------

    async def act(self, alarm_id: str, action: str, body: dict[str, Any]) -> OperatorAccepted:
        """An operator action on an alarm (``assign``, ``escalate``, ``accept``, ``arrived``,
        ``resolve``, ``notes``, ``acknowledge``, ``silence``). A fresh ``request_id`` per
        call: the client's own retry (after a new sign-in) is applied once."""
        path = f"/api/v1/alarms/{alarm_id}/{action}"
        body = {"request_id": str(uuid.uuid4()), **body}
        return _parse(
            OperatorAccepted, await self._request("POST", path, json=body, ok=(202,)), path
        )

    async def set_test_window(self, scheme: str, device_id: str, minutes: int) -> None:
        """Put a device in a test window for ``minutes`` (0 ends it)."""
        path = f"/api/v1/devices/{scheme}/{device_id}/maintenance"
        await self._request("POST", path, json={"minutes": minutes}, ok=(200, 202))

    async def clear_fault(self, scheme: str, device_id: str, kind: str) -> None:
        path = f"/api/v1/devices/{scheme}/{device_id}/faults/{kind}/clear"
        await self._request("POST", path, ok=(202,))

    async def set_carer_status(self, scheme: str, carer_id: str, status: CarerStatus) -> None:
        """Control-room override; the gateway answers 202 once the change is queued."""
        path = f"/api/v1/carers/{scheme}/{carer_id}/status"
        await self._request("POST", path, json={"status": status}, ok=(200, 202))

    async def promote(self, alarm_id: str) -> None:
        """Turn a test call into a real alarm; 202 once queued, 409 if not a test call."""
        path = f"/api/v1/alarms/{alarm_id}/promote"
        await self._request("POST", path, ok=(200, 202))

    # ---- the alert stream -------------------------------------------------------------------

    async def alert_stream(self) -> AsyncIterator[StreamItem]:
        """One connection to ``/api/v1/alerts/stream``; ends when the server closes it.

        Raises ``GatewayError`` when it cannot connect or the connection breaks; reconnecting
        is the caller's policy.
        """
        path = "/api/v1/alerts/stream"
        timeout = httpx.Timeout(self._http.timeout.connect, read=STREAM_READ_TIMEOUT_S)
        await self._ensure_signed_in()
        try:
            async with self._http.stream("GET", path, timeout=timeout) as resp:
                if resp.status_code == 401:
                    self._signed_in = False  # the next connection signs in again
                if resp.status_code != 200:
                    raise GatewayRefused(path, f"HTTP {resp.status_code}", resp.status_code)
                async for event, data in _sse_events(resp.aiter_lines()):
                    if event == "alert":
                        try:
                            yield Alert.model_validate_json(data)
                        except ValidationError:
                            continue  # one bad alert must not end the stream
                    else:
                        yield Heartbeat(event)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(path, _describe(exc)) from exc

    # ---- plumbing ---------------------------------------------------------------------------

    async def _get(
        self, path: str, *, params: dict[str, str] | None = None, ok: tuple[int, ...] = (200,)
    ) -> Any:
        return await self._request("GET", path, params=params, ok=ok)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...],
        params: dict[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        await self._ensure_signed_in()
        session = self._session
        try:
            resp = await self._http.request(method, path, params=params, json=json)
            if resp.status_code == 401 and self._login is not None:
                # The session ended (expiry, a restart of the store): sign in once and retry.
                await self._ensure_signed_in(stale=session)
                resp = await self._http.request(method, path, params=params, json=json)
        except httpx.TransportError as exc:
            raise GatewayUnreachable(path, _describe(exc)) from exc
        if resp.status_code not in ok:
            raise GatewayRefused(path, _error_detail(resp), resp.status_code)
        try:
            return resp.json()
        except ValueError as exc:
            raise GatewayRefused(path, "response is not JSON", resp.status_code) from exc


_ALARMS = TypeAdapter(list[Alarm])
_KPI = TypeAdapter(list[SchemeKpi])
_ALERTS = TypeAdapter(list[Alert])
_CARERS = TypeAdapter(list[Carer])
U = TypeVar("U")


def _parse(model: type[T], data: Any, path: str) -> T:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise GatewayRefused(path, f"unexpected response: {exc.error_count()} errors") from exc


def _parse_list(adapter: TypeAdapter[list[U]], data: Any, path: str) -> list[U]:
    try:
        return adapter.validate_python(data)
    except ValidationError as exc:
        raise GatewayRefused(path, f"unexpected response: {exc.error_count()} errors") from exc


def _error_detail(resp: httpx.Response) -> str:
    try:
        detail = resp.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    return f"HTTP {resp.status_code}" + (f": {detail}" if isinstance(detail, str) else "")


def _describe(exc: httpx.TransportError) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def _sse_events(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, str]]:
    """Server-sent events as (event, data) pairs, per the WHATWG parsing rules we need."""
    event = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data or event:
                yield event or "message", "\n".join(data)
            event, data = "", []
            continue
        if line.startswith(":"):
            continue  # a comment
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
