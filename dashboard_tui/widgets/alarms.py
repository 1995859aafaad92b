"""Open alarms, most urgent then oldest first, with ages that tick in scheme time."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on
from textual.widgets import DataTable

from dashboard_tui.clock import duration
from dashboard_tui.messages import AlarmOpened
from dashboard_tui.models import Alarm

ROW_STYLE = {"P0": "bold red", "P1": "bold yellow"}
TEST_CALL = "test_call"  # from a device in a test window: shown, never paged, promotable
TEST_STYLE = "cyan"
PRIORITY_STYLE = {"P0": "bold white on red", "P1": "bold black on yellow"}
DEADLINE_LABEL = {
    "defer": "defer",
    "offer_timeout": "offer",
    "escalation_repeat": "re-alert",
    "arrival": "arrival",
    "on_site": "check-in",
}
# Fixed widths (cropped beyond) so every column fits 120 columns with the borders and padding.
COLUMNS = (
    ("pri", "priority", 3),
    ("age", "age", 6),
    ("scheme", "scheme", 14),
    ("kind", "kind", 20),
    ("flat", "flat", 7),
    ("state", "state", 9),
    ("who has it", "who", 22),
    ("next", "deadline", 15),
    ("n", "count", 2),
)


class AlarmsTable(DataTable[Text]):
    """One row per open alarm; Enter opens its timeline and routing decisions."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.alarms: dict[str, Alarm] = {}

    def on_mount(self) -> None:
        for label, key, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        self.border_title = "Open alarms"

    def show(self, alarms: list[Alarm], now: datetime | None) -> None:
        """Replace the rows, keeping the cursor on the same alarm if it is still open."""
        keep = self.selected_alarm_id
        # Test calls (a device in a test window) sit below every real alarm.
        ordered = sorted(alarms, key=lambda a: (a.state == TEST_CALL, a.rank))
        self.alarms = {a.alarm_id: a for a in ordered}
        self.clear()
        for a in ordered:
            self.add_row(*self._cells(a, now), key=a.alarm_id)
        if keep in self.alarms:
            self.move_cursor(row=self.get_row_index(keep))
        real = [a for a in ordered if a.state != TEST_CALL]
        p0 = sum(a.priority == "P0" for a in real)
        waiting = sum(not a.accepted_by for a in real)
        self.border_title = f"Open alarms ({len(real)} · {waiting} not accepted)"
        if p0:
            self.border_title += f" · {p0} P0"
        if len(real) < len(ordered):
            self.border_title += f" · {len(ordered) - len(real)} test (p: promote)"

    def tick(self, now: datetime | None) -> None:
        """Move the clocks on without rebuilding the table."""
        for a in self.alarms.values():
            style = _row_style(a)
            self.update_cell(a.alarm_id, "age", Text(_age(a, now), style))
            self.update_cell(a.alarm_id, "deadline", _deadline(a, now))

    @property
    def selected_alarm_id(self) -> str | None:
        if not self.alarms or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(AlarmOpened(event.row_key.value))

    @staticmethod
    def _cells(a: Alarm, now: datetime | None) -> list[Text]:
        style = _row_style(a)
        kind = a.kind + (" · welfare" if a.welfare_check else "")
        state_style = "bold white on red" if a.state == "escalated" else style
        test = a.state == TEST_CALL
        return [
            Text(
                "TST" if test else a.priority,
                TEST_STYLE if test else PRIORITY_STYLE.get(a.priority, ""),
            ),
            Text(_age(a, now), style),
            Text(a.scheme, style),
            Text(kind, style),
            Text(a.flat_id or "—", style),
            Text(a.state, state_style),
            _who(a),
            _deadline(a, now),
            Text(str(a.count), style, justify="right"),
        ]


def _row_style(a: Alarm) -> str:
    return TEST_STYLE if a.state == TEST_CALL else ROW_STYLE.get(a.priority, "")


def _age(a: Alarm, now: datetime | None) -> str:
    return duration((now - a.opened_at).total_seconds()) if now else "?"


def _who(a: Alarm) -> Text:
    """Who has it, or who it is waiting on; nobody at all is the control room's cue."""
    if a.arrived_by:
        text = Text("on site: " + ", ".join(a.arrived_by), "green")
    elif a.accepted_by:
        text = Text("accepted: " + ", ".join(a.accepted_by), "green")
    elif any(o.role == "all" for o in a.offers):
        text = Text("to all: " + ", ".join(o.carer_id for o in a.offers), "bold yellow")
    elif a.offers:
        text = Text("offered: " + ", ".join(o.carer_id for o in a.offers), "yellow")
    elif a.state == TEST_CALL:
        text = Text("test call: nobody paged", TEST_STYLE)
    elif a.state == "raised":
        text = Text("waiting", "dim")
    else:
        text = Text("nobody", "bold white on red")
    if a.double_handed and len(set(a.accepted_by)) < 2:
        text.append(" · needs 2", "bold yellow")
    return text


def _deadline(a: Alarm, now: datetime | None) -> Text:
    if a.deadline is None:
        return Text("—", "dim")
    label = DEADLINE_LABEL.get(a.deadline.kind, a.deadline.kind)
    if now is None:
        return Text(label)
    left = int((a.deadline.due - now).total_seconds())
    if left < 0:
        return Text(f"{left}s {label}", "bold red")
    return Text(f"{left}s {label}", "bold yellow" if left <= 15 else "")
