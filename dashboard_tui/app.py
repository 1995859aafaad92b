"""The control room app: wiring between the gateway client, the workers and the panels.

Two workers do the watching: one polls alarms, carers, devices, the KPI strip, readiness and
the clock every ``poll_s`` (or at once on ``r``); one follows the alert stream and reconnects
with backoff, catching up on the alerts recorded while it was away. Operator actions run in
workers of their own after a confirmation. Everything survives any failure; the screen says
what is wrong instead of the app crashing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime, tzinfo
from typing import Any

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer

from dashboard_tui.client import GatewayClient, GatewayError, GatewayUnreachable
from dashboard_tui.clock import SchemeClock, clock_time
from dashboard_tui.messages import (
    ActionRequested,
    AlarmOpened,
    AlertArrived,
    CarerStatusRequested,
    DeviceActionRequested,
    PollFailed,
    Snapshot,
    StreamLost,
    StreamUp,
)
from dashboard_tui.models import Alarm, Alert, DeviceHealthBoard
from dashboard_tui.retry import Backoff
from dashboard_tui.screens.alarm_detail import AlarmDetailScreen
from dashboard_tui.screens.forms import ActionForm, FormSpec
from dashboard_tui.screens.help import HelpScreen
from dashboard_tui.widgets.alarms import AlarmsTable
from dashboard_tui.widgets.alerts import AlertsLog
from dashboard_tui.widgets.carers import CarersTable
from dashboard_tui.widgets.devices import DevicesTable
from dashboard_tui.widgets.header import GatewayStatus
from dashboard_tui.widgets.kpi import KpiStrip

log = logging.getLogger(__name__)


class ControlRoom(App[None]):
    """Watch every open alarm, who has it and who is free; step in when nobody answers."""

    TITLE = "Telecare control room"
    CSS_PATH = "control_room.tcss"
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("r", "refresh_now", "Refresh"),
        Binding("p", "promote", "Promote", show=False),
        Binding("f", "filter_scheme", "Scheme", show=False),
        Binding("s", "filter_state", "State", show=False),
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
        self._was_lost = False  # the stream dropped: catch up on what was missed
        self._catch_up_from: datetime | None = None  # set while a catch-up is owed
        self._catch_up_pending_ship = True  # the gateway still holds records to ship

    def compose(self) -> ComposeResult:
        yield GatewayStatus(self.client.base_url, self.tz, id="status")
        yield KpiStrip(id="kpi")
        yield AlarmsTable(id="alarms")
        with Horizontal(id="lower"):
            yield CarersTable(id="carers")
            with Vertical(id="side"):
                yield DevicesTable(id="devices")
                yield AlertsLog(self.tz, id="alerts")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(AlarmsTable).focus()
        self.set_interval(self.tick_s, self.tick)
        self.who_am_i()
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
                async with asyncio.timeout(self.poll_s):  # not wait_for: 3.11 swallows cancels
                    await self._wake.wait()

    async def _fetch(self) -> Snapshot | PollFailed:
        c = self.client
        ready, clock, alarms, carers, devices, kpi = await asyncio.gather(
            c.readiness(),
            c.clock(),
            c.open_alarms(),
            c.carers(),
            c.device_health(),
            c.kpi(),
            return_exceptions=True,
        )
        if isinstance(ready, BaseException):
            return _failure(ready)
        if isinstance(clock, BaseException):
            return _failure(clock)
        if isinstance(alarms, BaseException):
            return _failure(alarms)
        if isinstance(carers, BaseException):
            return _failure(carers)
        snap = Snapshot(ready, clock, alarms, carers)
        # The device queue and the figures are shown when they come; their absence (the
        # database away for the figures) never makes the board stale.
        if isinstance(devices, DeviceHealthBoard):
            snap.devices = devices
        else:
            snap.devices_error = _failure(devices).reason
        if isinstance(kpi, list):
            snap.kpi = kpi
        else:
            snap.kpi_error = _failure(kpi).reason
        return snap

    @work(name="whoami", group="whoami", exit_on_error=False)
    async def who_am_i(self) -> None:
        """The operator's own account, in the header: every action is taken in their name."""
        for attempt in range(30):
            try:
                me = await self.client.whoami()
            except GatewayError:
                await asyncio.sleep(min(2.0 * (attempt + 1), 10.0))
                continue
            self.query_one(GatewayStatus).show_operator(me.username, me.role.value)
            return

    @work(name="catch-up", exclusive=True, group="catch-up", exit_on_error=False)
    async def catch_up(self, since: datetime) -> None:
        """The alerts recorded while the stream was down, each shown once."""
        try:
            missed = await self.client.alerts_since(since)
        except GatewayError as exc:
            self.query_one(AlertsLog).note(f"could not catch up on missed alerts: {exc}", "yellow")
            return
        log_ = self.query_one(AlertsLog)
        shown = sum(log_.add_alert(a) for a in missed)
        if shown:
            log_.note(f"{shown} alert(s) from while the stream was down, above", "dim green")
        if not self._catch_up_pending_ship:
            self._catch_up_from = None

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

    @work(name="alarm-action", group="alarm-action", exit_on_error=False)
    async def send_action(self, alarm: Alarm, action: str, body: dict[str, Any]) -> None:
        label = f"{action} {alarm.priority} {alarm.kind} {alarm.flat_id or ''}".strip()
        try:
            answer = await self.client.act(alarm.alarm_id, action, body)
        except GatewayError as exc:
            reason = getattr(exc, "reason", str(exc))
            self.notify(f"Not done: {label}: {reason}", severity="error", timeout=10)
            return
        if answer.status == "already":
            self.notify(f"Nothing to do: {answer.detail}", severity="warning")
        else:
            self.notify(f"Done: {label} ({answer.status})")
        self._wake.set()

    @work(name="device-action", group="device-action", exit_on_error=False)
    async def send_device_action(self, scheme: str, device_id: str, action: str, arg: Any) -> None:
        try:
            if action == "test_window":
                await self.client.set_test_window(scheme, device_id, int(arg))
            else:
                await self.client.clear_fault(scheme, device_id, str(arg))
        except GatewayError as exc:
            self.notify(f"Not done: {action} {device_id}: {exc}", severity="error", timeout=10)
            return
        self.notify(f"Done: {action.replace('_', ' ')} {device_id}")
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
        # The timer can fire once more while the app is closing and its widgets are already
        # gone (seen in CI): that tick has nothing to update, and must not crash the app.
        table = self.query_one_optional(AlarmsTable)
        status = self.query_one_optional(GatewayStatus)
        if table is None or status is None:
            return
        table.tick(now)
        status.show_clock(now)

    def action_refresh_now(self) -> None:
        self._wake.set()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_filter_scheme(self) -> None:
        self.notify(f"Board: {self.query_one(AlarmsTable).cycle_scheme()}")

    def action_filter_state(self) -> None:
        self.notify(f"Board: {self.query_one(AlarmsTable).cycle_state()}")

    @on(ActionRequested)
    def _ask(self, request: ActionRequested) -> None:
        """Every action goes through a confirmation that says what will happen."""
        a = request.alarm
        spec = action_form(request.action, a, self.query_one(GatewayStatus).operator)
        if spec is None:
            return

        def done(body: dict[str, Any] | None) -> None:
            if body is None:
                return
            if request.action in ("accept", "arrived"):
                carers = body.pop("carers")
                if len(carers) != 1:
                    self.notify("Give the one carer who phoned in", severity="warning")
                    return
                body["carer_id"] = carers[0]
            self.send_action(a, request.action, body)

        self.push_screen(ActionForm(spec), done)

    @on(DeviceActionRequested)
    def _ask_device(self, request: DeviceActionRequested) -> None:
        d = request.device
        if request.action == "test_window":
            on = d.test_window_until is not None
            spec = FormSpec(
                title=f"Test window: {d.device_id}",
                question=(
                    f"{d.device_id} ({d.type}, flat {d.flat_id or '-'}): its alarms come to the"
                    " control room as test calls, nobody is paged; a fire is always real."
                    " Minutes (0 ends it):"
                ),
                minutes=0 if on else 60,
            )

            def window(body: dict[str, Any] | None) -> None:
                if body is not None:
                    self.send_device_action(d.scheme, d.device_id, "test_window", body["minutes"])

            self.push_screen(ActionForm(spec), window)
            return
        fault = next((p.kind for p in d.problems if p.kind not in ("offline", "test_window")), None)
        if fault is None:
            self.notify(
                f"{d.device_id}: nothing to clear (offline and test windows clear themselves)",
                severity="warning",
            )
            return
        spec = FormSpec(
            title=f"Fault seen to: {d.device_id}",
            question=f"Take {fault.replace('_', ' ')} on {d.device_id} off the queue?",
        )

        def clear(body: dict[str, Any] | None) -> None:
            if body is not None:
                self.send_device_action(d.scheme, d.device_id, "clear_fault", fault)

        self.push_screen(ActionForm(spec), clear)

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
        if not self.query(GatewayStatus):
            return  # shutting down: the panels are gone
        self.clock.update(snap.clock)
        now = self.clock.now()
        assert now is not None  # just updated
        self.query_one(GatewayStatus).show_ready(snap.readiness, now, snap.clock.speed)
        alarms = self.query_one(AlarmsTable)
        if snap.kpi is not None:
            alarms.targets = {k.scheme: dict(k.targets_s) for k in snap.kpi}
            self.query_one(KpiStrip).show(snap.kpi)
        elif snap.kpi_error:
            self.query_one(KpiStrip).show_problem(snap.kpi_error)
        if alarms.show(snap.alarms, now):
            self.bell()  # a new P0 or P1 on the board
        self.query_one(CarersTable).show(snap.carers, alarms.alarms, now)
        if snap.devices is not None:
            self.query_one(DevicesTable).show(snap.devices, now)
        self._mark_stale(False)
        # A catch-up owed, and the record has (nearly) everything: ask (again) now.
        self._catch_up_pending_ship = snap.readiness.unshipped > 0
        if self._catch_up_from is not None and self._stream_live:
            self.catch_up(self._catch_up_from)

    @on(PollFailed)
    def _show_poll_failure(self, failed: PollFailed) -> None:
        if not self.query(GatewayStatus):
            return  # shutting down: the panels are gone
        self.query_one(GatewayStatus).show_failure(failed.reason, unreachable=failed.unreachable)
        self._mark_stale(True)

    @on(StreamUp)
    def _stream_up(self) -> None:
        self.query_one(GatewayStatus).show_stream("live")
        log_ = self.query_one(AlertsLog)
        log_.note("alert stream connected", "dim green")
        if self._was_lost and log_.latest is not None:
            # Alerts recorded while we were away: now, and again at each poll until the
            # gateway has shipped everything it held (the record lags by seconds).
            self._catch_up_from = log_.latest
            self.catch_up(log_.latest)
        self._was_lost = False

    @on(StreamLost)
    def _stream_lost(self, lost: StreamLost) -> None:
        status = self.query_one(GatewayStatus)
        was_lost = status.stream == "lost"
        delay = lost.retry_in_s
        retry = f"retrying in {delay:.0f}s" if delay >= 10 else f"retrying in {delay:.1f}s"
        status.show_stream("lost", f"{lost.reason}; {retry}")
        self._was_lost = True
        if not was_lost:  # one line per outage, not one per retry
            self.query_one(AlertsLog).note(
                f"alert stream lost ({lost.reason}); alerts may be missed until it is back",
                "bold red",
            )

    @on(AlertArrived)
    def _alert(self, msg: AlertArrived) -> None:
        if not self.query_one(AlertsLog).add_alert(msg.alert):
            return  # already shown (from a catch-up)
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
        for panel in (
            self.query_one(AlarmsTable),
            self.query_one(CarersTable),
            self.query_one(DevicesTable),
        ):
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


def _carer_default(a: Alarm) -> str:
    """The carer an on-behalf action most likely means: the one offered, else the one holding."""
    offered = [o.carer_id for o in a.offers if o.role != "all"]
    if len(offered) == 1:
        return offered[0]
    if len(a.accepted_by) == 1:
        return a.accepted_by[0]
    return ""


def action_form(action: str, a: Alarm, operator: str | None) -> FormSpec | None:
    """The confirmation for one action on one alarm: what it is, what will happen."""
    who = f" as {operator}" if operator else ""
    what = f"{a.priority} {a.kind} flat {a.flat_id or '-'} ({a.state}, {a.alarm_id[:8]})"
    match action:
        case "assign":
            holders = ", ".join(a.accepted_by or [o.carer_id for o in a.offers]) or "nobody"
            return FormSpec(
                f"Assign{who}",
                f"{what}, now with {holders}. Assign to (one carer, or two for a pair); everyone"
                " else is stood down:",
                carers=" ".join(a.accepted_by) if a.accepted_by else "",
            )
        case "escalate":
            return FormSpec(
                f"Escalate now{who}",
                f"{what}: offer to everyone on shift and page the on-call senior now?",
            )
        case "accept":
            return FormSpec(
                f"Accept for a carer{who}",
                f"{what}: the carer who phoned in to accept it (they must hold an offer):",
                carers=_carer_default(a),
                extra={},
            )
        case "arrived":
            return FormSpec(
                f"Arrived{who}",
                f"{what}: the carer who phoned in from the flat:",
                carers=_carer_default(a),
            )
        case "resolve":
            return FormSpec(
                f"Resolve{who}",
                f"{what}: close it with an outcome; carers holding it are stood down.",
                outcome=True,
                note=True,
            )
        case "notes":
            return FormSpec(
                f"Note{who}", f"{what}: a note for its timeline:", note=True, note_required=True
            )
        case "acknowledge":
            return FormSpec(
                f"Acknowledge{who}",
                f"{what}: hold its repeat alerts while it stays {a.state}? (offers and the"
                " escalation go on; new trouble still alerts)",
            )
        case "silence":
            return FormSpec(
                f"Silence{who}",
                f"{what}: hold its repeat alerts for how many minutes? (0 ends a silence;"
                " offers and the escalation go on)",
                minutes=30,
            )
    return None
