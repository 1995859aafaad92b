"""The device-health queue, apart from alarms: offline devices, faults, test windows."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import DataTable

from dashboard_tui.clock import since
from dashboard_tui.messages import DeviceActionRequested
from dashboard_tui.models import DeviceHealth, DeviceHealthBoard
from dashboard_tui.widgets.columns import Column, plan

PROBLEM_STYLE = {
    "offline": "bold white on red",
    "power_fail": "bold red",
    "link_fail": "bold yellow",
    "tamper": "bold yellow",
    "low_battery": "yellow",
    "test_window": "cyan",
}
LABEL = {
    "offline": "offline",
    "power_fail": "power",
    "link_fail": "link",
    "tamper": "tamper",
    "low_battery": "battery",
    "test_window": "test",
}
COLUMNS = (
    Column("device", "device", 10, 24),
    Column("problem", "problem", 7, 24),
    Column("since", "since", 8, 22),
    Column("flat", "flat", 5, 8, essential=False),
)
GROW = ("since", "device", "problem", "flat")


class DevicesTable(DataTable[Text]):
    """One row per device with a problem; t starts or ends a test window, c clears a fault."""

    BINDINGS = [
        Binding("t", "test_window", "Test window"),
        Binding("c", "clear_fault", "Fault seen to"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.devices: dict[str, DeviceHealth] = {}
        self._board: DeviceHealthBoard | None = None
        self._now: datetime | None = None
        self._planned_for = 0

    def on_mount(self) -> None:
        self._columns(self.size.width or 40)
        self.border_title = "Devices"

    def _columns(self, width: int) -> None:
        self._planned_for = width
        self.clear(columns=True)
        for col, w in plan(width, COLUMNS, GROW):
            self.add_column(col.label, key=col.key, width=w)

    @on(Resize)
    def _resized(self, event: Resize) -> None:
        if event.size.width != self._planned_for:
            self._columns(event.size.width)
            if self._board is not None:
                self.show(self._board, self._now)

    def show(self, board: DeviceHealthBoard, now: datetime | None) -> None:
        self._board, self._now = board, now
        keep = self.selected.key if self.selected else None
        self.devices = {d.key: d for d in board.devices}
        keys = [str(c.key.value) for c in self.columns.values()]
        self.clear()
        for d in board.devices:
            cells = self._cells(d, now)
            self.add_row(*[cells[k] for k in keys], key=d.key)
        if keep in self.devices:
            self.move_cursor(row=self.get_row_index(keep))
        offline = board.counts.get("offline", 0)
        title = f"Devices ({len(board.devices)} of {board.total_devices} need care"
        title += f" · {offline} offline)" if offline else ")"
        self.border_title = title

    @property
    def selected(self) -> DeviceHealth | None:
        if not self.devices or not 0 <= self.cursor_row < self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.devices.get(key) if key else None

    def action_test_window(self) -> None:
        d = self.selected
        if d is None:
            self.notify("No device selected", severity="warning")
            return
        self.post_message(DeviceActionRequested("test_window", d))

    def action_clear_fault(self) -> None:
        d = self.selected
        if d is None:
            self.notify("No device selected", severity="warning")
            return
        self.post_message(DeviceActionRequested("clear_fault", d))

    @staticmethod
    def _cells(d: DeviceHealth, now: datetime | None) -> dict[str, Text]:
        first = d.problems[0]
        problem = Text()
        for i, p in enumerate(d.problems):
            if i:
                problem.append(" ")
            problem.append(LABEL.get(p.kind, p.kind), PROBLEM_STYLE.get(p.kind, ""))
        when = since(first.since, now) if first.since else "—"
        if first.kind == "offline" and d.missed_heartbeats:
            when += f" ({d.missed_heartbeats} missed)"
        return {
            "device": Text(d.device_id, "bold"),
            "problem": problem,
            "since": Text(when, "dim"),
            "flat": Text(d.flat_id or "—"),
        }
