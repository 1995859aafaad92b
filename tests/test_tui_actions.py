"""The control room's actions, panels and help against the fake gateway (tests/test_tui.py):
every action asks first and posts only when confirmed, in the operator's name; the device
queue, the KPI strip, filters, the bell and the catch-up after a lost stream."""

from __future__ import annotations

from datetime import timedelta

from textual.widgets import Input, Select

from dashboard_tui.screens.forms import ActionForm
from dashboard_tui.screens.help import HelpScreen
from dashboard_tui.widgets.alarms import AlarmsTable
from dashboard_tui.widgets.alerts import AlertsLog
from dashboard_tui.widgets.devices import DevicesTable
from dashboard_tui.widgets.kpi import KpiStrip, sparkline
from devices.events import Priority
from tests.test_tui import (
    ALERTS,
    NOW,
    P0_ID,
    P1_ID,
    FakeGateway,
    _alarm,
    header,
    keyed,
    make_app,
    open_alarms,
    until,
)


def action_posts(fake: FakeGateway) -> list[tuple[str, object]]:
    return [(p, b) for p, b in fake.posts() if p.startswith("/api/v1/alarms/")]


async def test_escalate_asks_first_and_posts_only_when_confirmed() -> None:
    fake = FakeGateway()
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(AlarmsTable)
        await until(pilot, lambda: table.row_count == 3, "alarms")
        await until(pilot, lambda: "ops-anna" in header(app), "the operator in the header")
        table.move_cursor(row=1)  # the P1
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ActionForm), "the confirmation")
        assert "as ops-anna" in str(app.screen.query_one("Vertical").border_title)
        await pilot.press("n")  # no: nothing is sent
        await until(pilot, lambda: not isinstance(app.screen, ActionForm), "closed")
        assert action_posts(fake) == []
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ActionForm), "asked again")
        await pilot.press("y")
        await until(pilot, lambda: len(action_posts(fake)) == 1, "the POST")
        [(path, body)] = action_posts(fake)
        assert path == f"/api/v1/alarms/{P1_ID}/escalate"
        assert isinstance(body, dict) and set(body) == {"request_id"}


async def test_assign_a_pair_and_resolve_with_outcome_and_note() -> None:
    fake = FakeGateway()
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(AlarmsTable)
        await until(pilot, lambda: table.row_count == 3, "alarms")
        table.move_cursor(row=1)
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, ActionForm), "assign form")
        app.screen.query_one("#carers", Input).value = "c1 c3"
        await pilot.press("enter")
        await until(pilot, lambda: len(action_posts(fake)) == 1, "assign POST")
        path, body = action_posts(fake)[0]
        assert path.endswith(f"{P1_ID}/assign") and isinstance(body, dict)
        assert body["carers"] == ["c1", "c3"]
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ActionForm), "resolve form")
        form = app.screen
        form.query_one("#outcome", Select).value = "other"
        form.query_one("#note", Input).focus()
        await pilot.press("enter")  # 'other' without a note: refused in the form
        await pilot.pause()
        assert isinstance(app.screen, ActionForm) and len(action_posts(fake)) == 1
        form.query_one("#note", Input).value = "daughter took her to A&E"
        await pilot.press("enter")
        await until(pilot, lambda: len(action_posts(fake)) == 2, "resolve POST")
        path, body = action_posts(fake)[1]
        assert path.endswith(f"{P1_ID}/resolve") and isinstance(body, dict)
        assert (body["outcome"], body["note"]) == ("other", "daughter took her to A&E")


async def test_accept_for_the_offered_carer_and_a_refusal_is_shown() -> None:
    fake = FakeGateway(action_status=409)
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(AlarmsTable)
        await until(pilot, lambda: table.row_count == 3, "alarms")
        table.move_cursor(row=1)  # offered to c1 alone: the form suggests c1
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ActionForm), "accept form")
        assert app.screen.query_one("#carers", Input).value == "c1"
        await pilot.press("enter")
        await until(pilot, lambda: len(action_posts(fake)) == 1, "accept POST")
        assert action_posts(fake)[0][1] == {
            "carer_id": "c1",
            "request_id": action_posts(fake)[0][1]["request_id"],  # type: ignore[index]
        }
        await until(
            pilot,
            lambda: any("alarm already resolved" in str(n.message) for n in app._notifications),
            "the refusal, with the gateway's reason",
        )


async def test_silence_for_minutes_and_help_lists_every_key() -> None:
    fake = FakeGateway()
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(AlarmsTable)
        await until(pilot, lambda: table.row_count == 3, "alarms")
        await pilot.press("z")
        await until(pilot, lambda: isinstance(app.screen, ActionForm), "silence form")
        app.screen.query_one("#minutes", Input).value = "45"
        await pilot.press("enter")
        await until(pilot, lambda: len(action_posts(fake)) == 1, "silence POST")
        path, body = action_posts(fake)[0]
        assert path.endswith(f"{P0_ID}/silence") and body["minutes"] == 45  # type: ignore[index]
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help")
        from dashboard_tui.screens.help import KEYS

        text = " ".join(what for _section, keys in KEYS for _k, what in keys)
        assert app.screen.query_one("Static").region.height > 20  # shown, not just defined
        for key in ("assign", "escalate", "resolve", "silence", "acknowledge", "test window"):
            assert key in text
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "help closed")


async def test_filters_by_state_and_scheme() -> None:
    app = make_app(FakeGateway())
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(AlarmsTable)
        await until(pilot, lambda: table.row_count == 3, "alarms")
        await pilot.press("s")  # waiting: no carer has accepted
        assert [r["priority"].strip() for r in keyed(table)] == ["P0", "P1"]
        await pilot.press("s")  # with a carer
        assert [r["priority"].strip() for r in keyed(table)] == ["P2"]
        assert "showing 1: with carer" in str(table.border_title)
        for _ in range(3):
            await pilot.press("s")  # escalated, test calls, back to all
        assert table.row_count == 3
        await pilot.press("f")  # the one scheme, then all again
        assert table.row_count == 3 and "hazelhurst-court" in str(table.border_title)


async def test_device_queue_and_kpi_strip() -> None:
    fake = FakeGateway()
    app = make_app(fake)
    async with app.run_test(size=(160, 48)) as pilot:
        devices = app.query_one(DevicesTable)
        await until(pilot, lambda: devices.row_count == 2, "devices")
        rows = keyed(devices)
        assert rows[0]["problem"] == "offline" and "(4 missed)" in rows[0]["since"]
        assert rows[1]["problem"] == "battery"
        assert "1 offline" in str(devices.border_title)
        strip = str(app.query_one(KpiStrip).render())
        assert "tonight 8 alarms" in strip and "accept 42s" in strip and "83%" in strip
        assert sparkline((0, 1, 2, 4)) == "▁▃▅█"
        devices.focus()
        devices.move_cursor(row=1)
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, ActionForm), "confirm")
        await pilot.press("y")
        await until(
            pilot,
            lambda: any(p.endswith("/faults/low_battery/clear") for p, _ in fake.posts()),
            "clear POST",
        )


async def test_age_turns_red_past_the_target_and_a_new_p1_rings() -> None:
    fake = FakeGateway()
    app = make_app(fake)
    rung: list[bool] = []
    app.bell = lambda: rung.append(True)  # type: ignore[method-assign]
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(AlarmsTable)
        await until(pilot, lambda: table.row_count == 3 and bool(table.targets), "alarms")
        ages = {a: table.get_row(a)[1] for a in (P0_ID, P1_ID)}
        assert str(ages[P0_ID].style) == "bold red"  # a P0's own colour: 30 s of 120 s
        assert str(ages[P1_ID].style) == "bold white on red"  # 300 s: at its target
        fake.alarms = [
            *open_alarms(),
            _alarm("44444444-4444-4444-8444-444444444444", Priority.P1, "pendant_press", 1),
        ]
        before = len(rung)
        app.action_refresh_now()
        await until(pilot, lambda: table.row_count == 4, "the new alarm")
        assert len(rung) > before


async def test_catch_up_after_a_lost_stream_adds_missed_alerts_once() -> None:
    fake = FakeGateway()
    app = make_app(fake)
    async with app.run_test(size=(120, 40)) as pilot:
        log = app.query_one(AlertsLog)
        await until(pilot, lambda: log.received == 2, "the streamed alerts")
        missed = {
            "type": "alert",
            "priority": "P1",
            "code": "no_arrival",
            "message": "accepted but no arrival within the expected time",
            "alarm_id": P1_ID,
            "at": (NOW + timedelta(minutes=3)).isoformat(),
            "scheme": "hazelhurst-court",
        }
        fake.missed = [ALERTS[0], missed]  # the first is one we already have
        app.post_message(__import__("dashboard_tui.messages").messages.StreamLost("gone", 1))
        await pilot.pause()
        app.post_message(__import__("dashboard_tui.messages").messages.StreamUp())
        await until(pilot, lambda: log.received == 3, "the missed alert")
        app.action_refresh_now()  # a later catch-up finds nothing new
        await pilot.pause()
        assert log.received == 3
        assert any(p == "/api/v1/alerts" for _m, p, _b in fake.requests)
