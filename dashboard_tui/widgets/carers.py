"""Every carer: on shift or not, free to be sent or why not, what they are busy with, where."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from dashboard_tui.client import CarerStatus
from dashboard_tui.clock import since
from dashboard_tui.messages import CarerStatusRequested
from dashboard_tui.models import Alarm, Carer, Position

# Fixed widths (cropped beyond) so every column fits 120 columns with the borders and padding.
COLUMNS = (
    ("carer", "carer", 8),
    ("scheme", "scheme", 14),
    ("on shift", "shift", 13),
    ("routable", "routable", 28),
    ("busy with", "busy", 18),
    ("position", "position", 14),
    ("handset", "seen", 9),
)


class CarersTable(DataTable[Text]):
    """One row per carer; b / u / a ask the gateway to change the highlighted carer's status."""

    BINDINGS = [
        Binding("b", "set_status('on_break')", "On break"),
        Binding("u", "set_status('unavailable')", "Unavailable"),
        Binding("a", "set_status('available')", "Available"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.carers: dict[str, Carer] = {}

    def on_mount(self) -> None:
        for label, key, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        self.border_title = "Carers"

    def show(self, carers: list[Carer], alarms: dict[str, Alarm], now: datetime | None) -> None:
        keep = self.selected_carer.key if self.selected_carer else None
        ordered = sorted(carers, key=lambda c: (not c.on_shift, not c.routable, c.key))
        self.carers = {c.key: c for c in ordered}
        self.clear()
        for c in ordered:
            self.add_row(*self._cells(c, alarms, now), key=c.key)
        if keep in self.carers:
            self.move_cursor(row=self.get_row_index(keep))
        free = sum(c.routable and c.busy_with is None for c in ordered)
        on = sum(bool(c.on_shift) for c in ordered)
        self.border_title = f"Carers ({on} on shift · {free} free)"

    @property
    def selected_carer(self) -> Carer | None:
        if not self.carers or not 0 <= self.cursor_row < self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.carers.get(key) if key else None

    def action_set_status(self, status: CarerStatus) -> None:
        carer = self.selected_carer
        if carer is None:
            self.notify("No carer selected", severity="warning")
            return
        self.post_message(CarerStatusRequested(carer.scheme, carer.carer_id, status))

    @staticmethod
    def _cells(c: Carer, alarms: dict[str, Alarm], now: datetime | None) -> list[Text]:
        shift = Text(", ".join(c.on_shift)) if c.on_shift else Text("off", "dim")
        if c.routable:
            free = c.busy_with is None
            routable = Text("free", "bold green") if free else Text("busy", "yellow")
        else:
            routable = Text(c.reason or "no", "yellow" if c.on_shift else "dim")
        if c.status != "available" and c.reason != c.status.replace("_", " "):
            routable.append(f" [{c.status}]", "yellow")
        return [
            Text(c.carer_id, "bold" if c.on_shift else "dim"),
            Text(c.scheme, "dim"),
            shift,
            routable,
            _busy(c.busy_with, alarms),
            Text(_where(c.position)),
            Text(since(c.handset_seen, now), "dim"),
        ]


def _busy(alarm_id: str | None, alarms: dict[str, Alarm]) -> Text:
    if alarm_id is None:
        return Text("—", "dim")
    a = alarms.get(alarm_id)
    if a is None:
        return Text(alarm_id[:8])
    style = "bold red" if a.priority == "P0" else "bold yellow" if a.priority == "P1" else ""
    return Text(f"{a.priority} {a.kind} {a.flat_id or ''}".strip(), style)


def _where(p: Position) -> str:
    if p.flat:
        return f"flat {p.flat}"
    if p.block:
        return f"block {p.block}, floor {p.floor}"
    if p.x is not None and p.y is not None:
        return f"({p.x:.0f}, {p.y:.0f})"
    return "unknown"
