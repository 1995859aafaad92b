"""The control room app: wiring between the gateway client, the workers and the panels.

Two workers do all the I/O: one polls alarms, carers, readiness and the clock every
``poll_s`` (or at once on ``r``); one follows the alert stream and reconnects with backoff.
Both survive any failure; the screen says what is wrong instead of the app crashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import tzinfo

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Footer

from dashboard_tui.client import GatewayClient, GatewayError, GatewayUnreachable
from dashboard_tui.clock import SchemeClock, clock_time
from dashboard_tui.messages import (
    AlarmOpened,
    AlertArrived,
    CarerStatusRequested,
    PollFailed,
    Snapshot,
    StreamLost,
    StreamUp,
)
from dashboard_tui.models import Alert
from dashboard_tui.retry import Backoff
from dashboard_tui.screens.alarm_detail import AlarmDetailScreen
from dashboard_tui.widgets.alarms import AlarmsTable
from dashboard_tui.widgets.alerts import AlertsLog
from dashboard_tui.widgets.carers import CarersTable
from dashboard_tui.widgets.header import GatewayStatus

log = logging.getLogger(__name__)


class ControlRoom(App[None]):
    """Watch every open alarm, who has it and who is free; step in when nobody answers."""

    TITLE = "Telecare control room"
    CSS_PATH = "control_room.tcss"
    BINDINGS = [
        Binding("r", "refresh_now", "Refresh"),
        Binding("p", "promote", "Promote test call"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        client: GatewayClient,
        *,
        tz: tzinfo,
        poll_s: float = 2.0,
        tick_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        backoff: Backoff | None = None,
    ) -> None:
        super().__init__()
        self.client = client
        self.tz = tz
        self.poll_s = poll_s
        self.tick_s = tick_s
        self.clock = SchemeClock(monotonic)
        self.backoff = backoff or Backoff()
        self._wake = asyncio.Event()
        self._stream_live = False

    def compose(self) -> ComposeResult:
        yield GatewayStatus(self.client.base_url, self.tz, id="status")
        yield AlarmsTable(id="alarms")
        yield CarersTable(id="carers")
        yield AlertsLog(self.tz, id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(AlarmsTable).focus()
        self.set_interval(self.tick_s, self.tick)
        self.poll()
        self.follow_alerts()

    async def on_unmount(self) -> None:
        await self.client.aclose()

    # ---- workers (all I/O lives here) -------------------------------------------------------

    @work(name="poll", exclusive=True, group="poll", exit_on_error=False)
    async def poll(self) -> None:
        """Poll until the app ends; ``r`` wakes it early."""
        while True:
            self._wake.clear()
            self.post_message(await self._fetch())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)

    async def _fetch(self) -> Snapshot | PollFailed:
        c = self.client
        ready, clock, alarms, carers = await asyncio.gather(
            c.readiness(), c.clock(), c.open_alarms(), c.carers(), return_exceptions=True
        )
        if isinstance(ready, BaseException):
            return _failure(ready)
        if isinstance(clock, BaseException):
            return _failure(clock)
        if isinstance(alarms, BaseException):
            return _failure(alarms)
        if isinstance(carers, BaseException):
            return _failure(carers)
        return Snapshot(ready, clock, alarms, carers)

    @work(name="alert-stream", exclusive=True, group="alerts", exit_on_error=False)
    async def follow_alerts(self) -> None:
        """Follow the alert stream for the app's lifetime, reconnecting with backoff."""
        while True:
            try:
                async for item in self.client.alert_stream():
                    if not self._stream_live:
                        self.backoff.reset()
                        self.post_message(StreamUp())
                    self._stream_live = True
                    if isinstance(item, Alert):
                        self.post_message(AlertArrived(item))
                reason = "closed by the gateway"
            except GatewayError as exc:
                reason = str(exc)
            except Exception as exc:
                log.exception("alert stream failed")
                reason = f"internal error: {exc!r}"
            self._stream_live = False
            delay = self.backoff.next_delay()
            self.post_message(StreamLost(reason, delay))
            await asyncio.sleep(delay)

    @work(name="carer-status", group="carer-status", exit_on_error=False)
    async def send_carer_status(self, request: CarerStatusRequested) -> None:
        who = f"{request.carer_id} ({request.scheme})"
        try:
            await self.client.set_carer_status(request.scheme, request.carer_id, request.status)
        except GatewayError as exc:
            self.notify(f"Could not set {who} {request.status}: {exc}", severity="error")
            return
        self.notify(f"Asked the gateway to mark {who} {request.status.replace('_', ' ')}")
        self._wake.set()

    @work(name="promote", group="promote", exit_on_error=False)
    async def send_promote(self, alarm_id: str) -> None:
        try:
            await self.client.promote(alarm_id)
        except GatewayError as exc:
            self.notify(f"Could not promote {alarm_id[:8]}: {exc}", severity="error")
            return
        self.notify(f"Test call {alarm_id[:8]} promoted: it is now a real alarm")
        self._wake.set()

    # ---- wiring -----------------------------------------------------------------------------

    def tick(self) -> None:
        """Once a second: ages and deadlines move on in scheme time between polls."""
        now = self.clock.now()
        self.query_one(AlarmsTable).tick(now)
        self.query_one(GatewayStatus).show_clock(now)

    def action_refresh_now(self) -> None:
        self._wake.set()

    def action_promote(self) -> None:
        """One action turns the selected test call into a real alarm."""
        table = self.query_one(AlarmsTable)
        a = table.alarms.get(table.selected_alarm_id or "")
        if a is None or a.state != "test_call":
            self.notify("Select a test call (TST) to promote it", severity="warning")
            return
        self.send_promote(a.alarm_id)

    @on(Snapshot)
    def _show_snapshot(self, snap: Snapshot) -> None:
        self.clock.update(snap.clock)
        now = self.clock.now()
        assert now is not None  # just updated
        self.query_one(GatewayStatus).show_ready(snap.readiness, now, snap.clock.speed)
        alarms = self.query_one(AlarmsTable)
        alarms.show(snap.alarms, now)
        self.query_one(CarersTable).show(snap.carers, alarms.alarms, now)
        self._mark_stale(False)

    @on(PollFailed)
    def _show_poll_failure(self, failed: PollFailed) -> None:
        self.query_one(GatewayStatus).show_failure(failed.reason, unreachable=failed.unreachable)
        self._mark_stale(True)

    @on(StreamUp)
    def _stream_up(self) -> None:
        self.query_one(GatewayStatus).show_stream("live")
        self.query_one(AlertsLog).note("alert stream connected", "dim green")

    @on(StreamLost)
    def _stream_lost(self, lost: StreamLost) -> None:
        status = self.query_one(GatewayStatus)
        was_lost = status.stream == "lost"
        delay = lost.retry_in_s
        retry = f"retrying in {delay:.0f}s" if delay >= 10 else f"retrying in {delay:.1f}s"
        status.show_stream("lost", f"{lost.reason}; {retry}")
        if not was_lost:  # one line per outage, not one per retry
            self.query_one(AlertsLog).note(
                f"alert stream lost ({lost.reason}); alerts may be missed until it is back",
                "bold red",
            )

    @on(AlertArrived)
    def _alert(self, msg: AlertArrived) -> None:
        self.query_one(AlertsLog).add_alert(msg.alert)
        if msg.alert.priority in ("P0", "P1"):
            self.bell()
            self._wake.set()  # an alert usually means an alarm changed: show it now

    @on(AlarmOpened)
    def _open_alarm(self, msg: AlarmOpened) -> None:
        self.push_screen(AlarmDetailScreen(self.client, msg.alarm_id, self.tz))

    @on(CarerStatusRequested)
    def _carer_status(self, request: CarerStatusRequested) -> None:
        self.send_carer_status(request)

    def _mark_stale(self, stale: bool) -> None:
        """Tables keep the last good data while the gateway is away, visibly marked."""
        as_of = clock_time(self.query_one(GatewayStatus).last_good, self.tz)
        for panel in (self.query_one(AlarmsTable), self.query_one(CarersTable)):
            panel.set_class(stale, "stale")
            panel.border_subtitle = f"STALE: as of {as_of}, gateway not answering" if stale else ""


def _failure(exc: BaseException) -> PollFailed:
    """What to show for a failed poll; anything that is not an error propagates."""
    if isinstance(exc, GatewayError):
        return PollFailed(str(exc), unreachable=isinstance(exc, GatewayUnreachable))
    if not isinstance(exc, Exception):
        raise exc  # cancellation is not ours to swallow
    log.error("poll failed", exc_info=exc)  # a bug must cost one poll, not the control room
    return PollFailed(f"internal error: {exc!r}", unreachable=False)
