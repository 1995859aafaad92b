"""The control-room TUI (``App.run_test()``) against a real gateway with Hazelhurst Court:
real Mosquitto, handsets over MQTT, TimescaleDB. An operator signs in with their own account;
a press reaches the board, a reassignment reaches the handsets, resolving clears the board and
the audit trail names the operator, a silenced alarm's alerts stop repeating, and after the
gateway has been away the board and the alert log catch up with no duplicates."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Select

from api_models import Role
from dashboard_tui.app import ControlRoom
from dashboard_tui.client import GatewayClient
from dashboard_tui.screens.forms import ActionForm
from dashboard_tui.widgets.alarms import AlarmsTable
from dashboard_tui.widgets.alerts import AlertsLog
from dashboard_tui.widgets.header import GatewayStatus
from tests.conftest import GatewayEnv, wait_for
from tests.engine_helpers import device_in
from tests.integration.night import Night, rows

pytestmark = pytest.mark.integration

OPERATOR = "ops-anna"


def control_room(gateway: GatewayEnv) -> ControlRoom:
    """The TUI signed in as an operator of its own (not the development account)."""
    store = gateway.process.store()
    secret = store.add(OPERATOR, Role.CONTROL_ROOM)
    client = GatewayClient(gateway.process.url, username=OPERATOR, password=secret)
    return ControlRoom(client, tz=ZoneInfo("Europe/London"), poll_s=0.5)


async def until(cond: Callable[[], Any], within: float, what: str) -> Any:
    """Wait for a condition on the running app (it keeps running meanwhile)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {within}s waiting for {what}")


async def dispatched(night: Night, carer: str, typ: str, **match: object) -> dict[str, Any]:
    """A handset message, waited for off the event loop so the TUI keeps working."""
    return await asyncio.to_thread(night.wait_dispatch, carer, typ, 20, **match)


async def confirm(pilot: Pilot[None], app: ControlRoom, key: str) -> ActionForm:
    await pilot.press(key)
    form = await until(lambda: isinstance(app.screen, ActionForm) and app.screen, 5, "the form")
    assert isinstance(form, ActionForm)
    return form


def board(app: ControlRoom) -> AlarmsTable:
    return app.query_one(AlarmsTable)


async def test_press_reassign_and_resolve_from_the_tui(night: Night, gateway: GatewayEnv) -> None:
    gateway.process.start()
    night.on_shift({"cw-01": "A-012", "cw-02": "B-050"})
    app = control_room(gateway)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(lambda: OPERATOR in str(app.query_one(GatewayStatus).render()), 60, "me")
        night.press(device_in("A-013"))
        offer = await dispatched(night, "cw-01", "offer")
        alarm_id = str(offer["alarm_id"])
        # On the board within a poll of the gateway holding it (poll_s is 0.5 s).
        await until(lambda: alarm_id in board(app).alarms, 30, "the press on the board")
        board(app).move_cursor(row=board(app).get_row_index(alarm_id))
        form = await confirm(pilot, app, "a")
        form.query_one("#carers", Input).value = "cw-02"
        await pilot.press("enter")
        moved = await dispatched(night, "cw-02", "offer", alarm_id=alarm_id)
        assert moved["role"] == "primary"
        cancel = await dispatched(night, "cw-01", "cancel", alarm_id=alarm_id)
        assert f"({OPERATOR})" in str(cancel["reason"])
        await until(
            lambda: [o.carer_id for o in board(app).alarms[alarm_id].offers] == ["cw-02"],
            10,
            "the board showing cw-02",
        )
        form = await confirm(pilot, app, "x")
        form.query_one("#outcome", Select).value = "false_alarm"
        form.query_one("#note", Input).value = "resident pressed it by mistake"
        form.query_one("#note", Input).focus()
        await pilot.press("enter")
        await until(lambda: alarm_id not in board(app).alarms, 10, "off the board")
    steps = wait_for(
        lambda: rows(
            gateway.dsn,
            "SELECT step, detail FROM alarm_events WHERE alarm_id = %s AND step = 'resolved'",
            alarm_id,
        ),
        30,
        what="resolved in the record",
    )
    assert steps[0][1]["by"] == OPERATOR  # type: ignore[index]
    audit = gateway.process.api(Role.MANAGER)
    entries = wait_for(
        lambda: audit.get("/api/v1/audit", params={"username": OPERATOR}).json(), 30, what="audit"
    )
    assert {"alarm.assign", "alarm.resolve"} <= {e["action"] for e in entries}


async def test_a_silenced_alarm_stops_repeating_in_the_alert_log(
    night: Night, gateway: GatewayEnv
) -> None:
    gateway.process.start()
    night.on_shift({"cw-01": "A-012", "cw-02": "B-050"})
    app = control_room(gateway)
    async with app.run_test(size=(160, 48)) as pilot:
        night.press(device_in("A-013"))
        alarm_id = str((await dispatched(night, "cw-01", "offer"))["alarm_id"])
        await until(lambda: alarm_id in board(app).alarms, 30, "on the board")
        board(app).move_cursor(row=board(app).get_row_index(alarm_id))
        form = await confirm(pilot, app, "e")
        await pilot.press("y")
        log = app.query_one(AlertsLog)

        def escalated_lines() -> int:
            return sum(
                len(ats)
                for key, ats in log.seen.items()
                if key[0] == "alert" and key[1] == "escalated" and key[2] == alarm_id
            )

        def escalations() -> int:
            got = rows(
                gateway.dsn,
                "SELECT count(*) FROM alarm_events WHERE alarm_id = %s AND step = 'escalated'",
                alarm_id,
            )
            return int(got[0][0])  # type: ignore[call-overload]

        # It repeats every two minutes of scheme time (12 s here), a line each time.
        await until(lambda: escalated_lines() >= 2, 60, "a repeated escalation alert")
        board(app).move_cursor(row=board(app).get_row_index(alarm_id))
        form = await confirm(pilot, app, "z")
        form.query_one("#minutes", Input).value = "30"
        await pilot.press("enter")
        await until(lambda: board(app).alarms[alarm_id].silenced_until, 10, "silenced")
        lines, seen = escalated_lines(), escalations()
        # Two more repeats happen (the offers go out again), and the log stays quiet.
        await until(lambda: escalations() >= seen + 2, 90, "repeats while silenced")
        assert escalated_lines() == lines
        assert form is not None


async def test_gateway_away_banner_then_catch_up_without_duplicates(
    night: Night, gateway: GatewayEnv
) -> None:
    gateway.process.start()
    night.on_shift({"cw-01": "A-012", "cw-02": "B-050"})
    app = control_room(gateway)
    app.backoff.base_s = 0.5  # type: ignore[misc]
    async with app.run_test(size=(120, 40)):
        night.press(device_in("A-013"))
        alarm_id = str((await dispatched(night, "cw-01", "offer"))["alarm_id"])
        await until(lambda: alarm_id in board(app).alarms, 30, "on the board")
        log = app.query_one(AlertsLog)
        status = app.query_one(GatewayStatus)
        await until(lambda: status.stream == "live", 20, "the stream")
        api = gateway.process.api(Role.CONTROL_ROOM)
        assert api.post(f"/api/v1/alarms/{alarm_id}/escalate").status_code == 202
        await until(
            lambda: board(app).alarms[alarm_id].state == "escalated", 20, "escalated, repeating"
        )
        due = board(app).alarms[alarm_id].deadline
        assert due is not None
        gateway.process.kill(signal.SIGTERM)
        await until(lambda: status.unreachable is not None, 20, "the unreachable banner")
        assert "gateway unreachable" in str(status.render())
        assert board(app).has_class("stale")
        # Away until the offer's deadline has passed in scheme time: it fires at once on
        # restart, before this control room's stream is back (what the catch-up is for).
        await until(lambda: night.now() > due.due, 60, "the deadline passing while away")
        # Started from a thread: this loop keeps the control room running (and retrying).
        await asyncio.to_thread(gateway.process.start, 120)
        await until(lambda: status.unreachable is None and status.stream == "live", 60, "back")
        await until(lambda: not board(app).has_class("stale"), 20, "fresh again")
        assert alarm_id in board(app).alarms

        def recorded() -> dict[tuple[str, str], int]:
            got: dict[tuple[str, str], int] = {}
            for code, message in rows(
                gateway.dsn,
                "SELECT code, message FROM notifications WHERE kind = 'control_room'"
                " AND alarm_id = %s",
                alarm_id,
            ):
                got[(str(code), str(message))] = got.get((str(code), str(message)), 0) + 1
            return got

        def shown() -> dict[tuple[str, str], int]:
            return {
                (str(k[1]), str(k[5])): len(ats)
                for k, ats in log.seen.items()
                if k[0] == "alert" and k[2] == alarm_id
            }

        # The escalation repeated on restart, and again later: the room was told each time.
        await until(lambda: sum(recorded().values()) >= 3, 90, "repeats after the restart")
        # Every control-room alert recorded for the alarm is in the log exactly once.
        await until(lambda: shown() == recorded(), 60, "the log matching the record")
