"""Snapshot tests of the control room on a busy night, at 80x24 and 160x48: eight open alarms
in mixed states, a test call, a carer whose handset has gone silent, two offline devices.

The snapshots are SVG screenshots (Textual's own export) kept in tests/snapshots/; a change in
what the control room shows fails here until it is looked at and the snapshot renewed with
``TELECARE_UPDATE_SNAPSHOTS=1``. (pytest-textual-snapshot pins syrupy 4.8, which needs
pytest < 9, so this is the same comparison without the plugin.) docs/tui.md shows the
160x48 one.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from dashboard_tui.widgets.alarms import AlarmsTable
from dashboard_tui.widgets.alerts import AlertsLog
from dashboard_tui.widgets.devices import DevicesTable
from devices.events import Priority
from gateway.engine.model import AlarmState, Deadline, DeadlineKind, Offer
from tests.test_tui import NOW, FakeGateway, _alarm, _carer, device_board, make_app, until

SNAPSHOTS = Path(__file__).parent / "snapshots"


def busy_night() -> FakeGateway:
    def uid(n: int) -> str:
        return f"{n:08d}-0000-4000-8000-{n:012d}"

    def offer(c: str, ago: int, role: str = "primary") -> Offer:
        return Offer(f"o-{c}-{ago}", c, NOW - timedelta(seconds=ago), role)

    def due(s: int, kind: DeadlineKind) -> Deadline:
        return Deadline(NOW + timedelta(seconds=s), 1, kind)

    alarms = [
        _alarm(uid(1), Priority.P0, "smoke", 40, flat_id="A-001", state=AlarmState.ESCALATED,
               offers=(offer("cw-01", 39, "all"), offer("cw-02", 39, "all")),
               deadline=due(80, DeadlineKind.ESCALATION_REPEAT)),
        _alarm(uid(2), Priority.P1, "fall_detected", 420, flat_id="A-012", double_handed=True,
               accepted_by=("cw-03",), state=AlarmState.ACCEPTED,
               deadline=due(-20, DeadlineKind.ARRIVAL)),
        _alarm(uid(3), Priority.P1, "pendant_press", 200, flat_id="B-050",
               offers=(offer("cw-01", 20),), deadline=due(40, DeadlineKind.OFFER_TIMEOUT)),
        _alarm(uid(4), Priority.P1, "pendant_press", 95, flat_id="A-104",
               state=AlarmState.ESCALATED, offers=(offer("cw-02", 30, "all"),),
               deadline=due(90, DeadlineKind.ESCALATION_REPEAT), count=3,
               silenced_until=NOW + timedelta(minutes=20)),
        _alarm(uid(5), Priority.P1, "door_open", 600, flat_id="B-210", state=AlarmState.ARRIVED,
               accepted_by=("cw-04",), arrived_by=("cw-04",),
               deadline=due(3000, DeadlineKind.ON_SITE)),
        _alarm(uid(6), Priority.P2, "bed_exit", 900, flat_id="B-104", state=AlarmState.RAISED,
               deadline=due(300, DeadlineKind.DEFER)),
        _alarm(uid(7), Priority.P2, "no_contact", 1500, flat_id="A-201",
               state=AlarmState.ACCEPTED, accepted_by=("cw-05",),
               deadline=due(120, DeadlineKind.ARRIVAL), welfare_check=True),
        _alarm(uid(8), Priority.P3, "callout", 3700, flat_id=None, state=AlarmState.OFFERED,
               offers=(offer("cw-05", 50),), deadline=due(10, DeadlineKind.OFFER_TIMEOUT)),
        _alarm(uid(9), Priority.P1, "pendant_press", 60, flat_id="A-013", state="test_call",
               count=2),
    ]  # fmt: skip
    carers = [
        _carer("cw-01"),
        _carer("cw-02", handset_seen=None, routable=False, reason="handset silent"),
        _carer("cw-03", busy_with=uid(2)),
        _carer("cw-04", busy_with=uid(5), on_shift=["sleep_in"], disturbances_tonight=3),
        _carer("cw-05", busy_with=uid(7)),
        _carer("cw-06", on_shift=[], logged_in=False, routable=False, reason="not on shift"),
        _carer("sn-01", on_shift=["on_call"], routable=False, reason="on call (senior)"),
    ]
    return FakeGateway(
        alarms=alarms,
        carers=carers,
        devices=device_board(offline=("hzc-b-104-hub", "hzc-a-201-hub")),
    )


def check(name: str, svg: str) -> None:
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("TELECARE_UPDATE_SNAPSHOTS") == "1":
        path.write_text(svg)
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path.name}: run with TELECARE_UPDATE_SNAPSHOTS=1, look, commit")
    if path.read_text() != svg:
        got = path.with_suffix(".actual.svg")
        got.write_text(svg)
        pytest.fail(f"{path.name} differs: see {got} (renew with TELECARE_UPDATE_SNAPSHOTS=1)")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_busy_night(size: tuple[int, int]) -> None:
    app = make_app(busy_night())
    async with app.run_test(size=size) as pilot:
        table = app.query_one(AlarmsTable)
        await until(pilot, lambda: table.row_count == 9, "nine rows")
        await until(pilot, lambda: app.query_one(DevicesTable).row_count == 3, "devices")
        await until(pilot, lambda: app.query_one(AlertsLog).received == 2, "alerts")
        await until(pilot, lambda: "ops-anna" in str(app.query_one("#status").render()), "me")
        await pilot.pause()
        if size == (80, 24):
            # Eight alarms and the test call below them: at least eight rows in view.
            assert table.content_region.height - 1 >= 8
        check(f"busy-night-{size[0]}x{size[1]}", app.export_screenshot(title="control room"))
