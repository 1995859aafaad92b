"""Every carer: on shift or not, free to be sent or why not, what they are busy with, where,
and a sleep-in's disturbances tonight. A scheme with nobody free is called out in the title."""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import DataTable

from dashboard_tui.client import CarerStatus
from dashboard_tui.clock import since
from dashboard_tui.messages import CarerStatusRequested
from dashboard_tui.models import Alarm, Carer, Position
from dashboard_tui.widgets.columns import Column, plan

SLEEP_IN_LIMIT = 2  # more than this many disturbances: the night counts as waking

COLUMNS = (
    Column("carer", "carer", 6, 10),
    Column("routable", "routable", 10, 28),
    Column("busy with", "busy", 10, 22),
    Column("on shift", "shift", 8, 14, essential=False),
    Column("night", "night", 5, 7, essential=False),
    Column("handset", "seen", 8, 10, essential=False),
    Column("position", "position", 8, 16, essential=False),
    Column("scheme", "scheme", 10, 20, essential=False),
)
GROW = ("busy", "routable", "shift", "position", "scheme", "carer", "seen")


def nobody_free(carers: list[Carer]) -> list[str]:
    """Schemes with carers on shift but none free to send: the control room's warning."""
    schemes = sorted({c.scheme for c in carers if c.on_shift})
    return [
        s
        for s in schemes
        if not any(c.scheme == s and c.routable and c.busy_with is None for c in carers)
    ]


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
        self._rows: list[Carer] = []
        self._alarms: dict[str, Alarm] = {}
        self._now: datetime | None = None
        self._planned_for = 0

    def on_mount(self) -> None:
        self._columns(self.size.width or 80)
        self.border_title = "Carers"

    def _columns(self, width: int) -> None:
        self._planned_for = width
        self.clear(columns=True)
        for col, w in plan(width, COLUMNS, GROW):
            self.add_column(col.label, key=col.key, width=w)

    @on(Resize)
    def _resized(self, event: Resize) -> None:
        if event.size.width != self._planned_for:
            self._columns(event.size.width)
            self._fill()

    def show(self, carers: list[Carer], alarms: dict[str, Alarm], now: datetime | None) -> None:
        self._rows = sorted(carers, key=lambda c: (not c.on_shift, not c.routable, c.key))
        self._alarms, self._now = alarms, now
        self._fill()

    def _fill(self) -> None:
        keep = self.selected_carer.key if self.selected_carer else None
        ordered = self._rows
        self.carers = {c.key: c for c in ordered}
        keys = [str(c.key.value) for c in self.columns.values()]
        self.clear()
        for c in ordered:
            cells = self._cells(c, self._alarms, self._now)
            self.add_row(*[cells[k] for k in keys], key=c.key)
        if keep in self.carers:
            self.move_cursor(row=self.get_row_index(keep))
        free = sum(c.routable and c.busy_with is None for c in ordered)
        on = sum(bool(c.on_shift) for c in ordered)
        title = f"Carers ({on} on shift · {free} free)"
        empty = nobody_free(ordered)
        if empty:
            title += " · NOBODY FREE: " + ", ".join(empty)
        self.border_title = title
        self.set_class(bool(empty), "nobody-free")

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
    def _cells(c: Carer, alarms: dict[str, Alarm], now: datetime | None) -> dict[str, Text]:
        shift = Text(", ".join(c.on_shift)) if c.on_shift else Text("off", "dim")
        if c.routable:
            free = c.busy_with is None
            routable = Text("free", "bold green") if free else Text("busy", "yellow")
        else:
            routable = Text(c.reason or "no", "yellow" if c.on_shift else "dim")
        if c.status != "available" and c.reason != c.status.replace("_", " "):
            routable.append(f" [{c.status}]", "yellow")
        n = c.disturbances_tonight
        if n == 0:
            night = Text("—", "dim")
        else:
            night = Text(f"{n}x", "bold red" if n > SLEEP_IN_LIMIT else "yellow")
        return {
            "carer": Text(c.carer_id, "bold" if c.on_shift else "dim"),
            "scheme": Text(c.scheme, "dim"),
            "shift": shift,
            "night": night,
            "routable": routable,
            "busy": _busy(c.busy_with, alarms),
            "position": Text(_where(c.position)),
            "seen": Text(since(c.handset_seen, now), "dim"),
        }


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
