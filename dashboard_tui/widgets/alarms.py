"""Open alarms, most urgent then oldest first, with ages that tick in scheme time.

Columns give way by priority: at 80 columns the essential ones (priority, age, kind, flat,
state, who has it, next) fit whole; wider terminals get the scheme and the count, and the
flexible columns (who has it, kind, next) take the extra room. An alarm's age turns yellow as
it nears its scheme's on-site target and red once past it.
"""

from __future__ import annotations

from datetime import datetime

from rich.text import Text
from textual import on
from textual.binding import Binding
from textual.events import Resize
from textual.widgets import DataTable

from dashboard_tui.clock import duration
from dashboard_tui.messages import ActionRequested, AlarmOpened
from dashboard_tui.models import Alarm
from dashboard_tui.widgets.columns import Column, plan

ROW_STYLE = {"P0": "bold red", "P1": "bold yellow"}
TEST_CALL = "test_call"  # from a device in a test window: shown, never paged, promotable
TEST_STYLE = "cyan"
PRIORITY_STYLE = {"P0": "bold white on red", "P1": "bold black on yellow"}
NEAR = "bold black on yellow"  # three quarters of the target gone
PAST = "bold white on red"  # past the target with nobody on site
DEADLINE_LABEL = {
    "defer": "defer",
    "offer_timeout": "offer",
    "escalation_repeat": "realert",
    "arrival": "arrive",
    "on_site": "check",
}
# When the kind column is narrow (80 columns), what the alarm is in a word.
SHORT_KIND = {
    "pendant_press": "pendant",
    "fall_detected": "fall",
    "door_open": "door",
    "bed_exit": "bed exit",
    "chair_exit": "chair",
    "no_contact": "no contact",
    "inactivity": "inactive",
}
# The state with the control room's hold on its alerts: ``z`` silenced, ``ok`` acknowledged.
SHORT_STATE = {
    "escalated": "esc",
    "accepted": "acc",
    "offered": "off",
    "arrived": "arr",
    "raised": "new",
}
STATE_FILTERS = ("all", "waiting", "with carer", "escalated", "test calls")


# In the order they give way: the last optional column goes first, then flexible ones shrink.
COLUMNS = (
    Column("pri", "priority", 3, 3),
    Column("age", "age", 6, 7),
    Column("kind", "kind", 9, 24),
    Column("flat", "flat", 5, 8),
    Column("state", "state", 9, 18),
    Column("who has it", "who", 16, 40),
    Column("next", "deadline", 11, 16),
    Column("scheme", "scheme", 10, 24, essential=False),
    Column("n", "count", 2, 3, essential=False),
)
# Who has it and what it is matter most when there is room; the scheme name next.
GROW = ("who", "kind", "scheme", "deadline", "state", "flat", "age", "count")


def plan_columns(width: int) -> list[tuple[Column, int]]:
    return plan(width, COLUMNS, GROW)


class AlarmsTable(DataTable[Text]):
    """One row per open alarm; Enter opens its timeline and routing decisions."""

    BINDINGS = [
        Binding("a", "act('assign')", "Assign"),
        Binding("e", "act('escalate')", "Escalate"),
        Binding("c", "act('accept')", "Accept for", show=False),
        Binding("v", "act('arrived')", "Arrived for", show=False),
        Binding("x", "act('resolve')", "Resolve"),
        Binding("n", "act('notes')", "Note", show=False),
        Binding("k", "act('acknowledge')", "Ack"),
        Binding("z", "act('silence')", "Silence"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.alarms: dict[str, Alarm] = {}
        self.all_alarms: list[Alarm] = []
        self.targets: dict[str, dict[str, int]] = {}  # scheme -> priority -> seconds
        self.scheme_filter: str | None = None
        self.state_filter = "all"
        self.known: set[str] | None = None  # alarm ids seen, for the bell (None: first poll)
        self._now: datetime | None = None
        self._planned_for = 0

    def on_mount(self) -> None:
        self._columns(self.size.width or 80)
        self.border_title = "Open alarms"

    def _columns(self, width: int) -> None:
        self._planned_for = width
        self.clear(columns=True)
        for col, w in plan_columns(width):
            self.add_column(col.label, key=col.key, width=w)

    @on(Resize)
    def _resized(self, event: Resize) -> None:
        if event.size.width != self._planned_for:
            self._columns(event.size.width)
            self._fill()

    def show(self, alarms: list[Alarm], now: datetime | None) -> list[Alarm]:
        """Replace the rows (keeping the cursor on the same alarm); return new P0/P1 alarms
        since the last poll (none on the first), for the bell."""
        self.all_alarms = alarms
        self._now = now
        ids = {a.alarm_id for a in alarms}
        new = []
        if self.known is not None:
            new = [
                a
                for a in alarms
                if a.alarm_id not in self.known
                and a.priority in ("P0", "P1")
                and a.state != TEST_CALL
            ]
        self.known = ids if self.known is None else self.known | ids
        self._fill()
        return new

    def _visible(self, a: Alarm) -> bool:
        if self.scheme_filter is not None and a.scheme != self.scheme_filter:
            return False
        match self.state_filter:
            case "waiting":
                return a.state != TEST_CALL and not a.accepted_by
            case "with carer":
                return bool(a.accepted_by)
            case "escalated":
                return a.state == "escalated"
            case "test calls":
                return a.state == TEST_CALL
        return True

    def _fill(self) -> None:
        keep = self.selected_alarm_id
        # Test calls (a device in a test window) sit below every real alarm.
        ordered = sorted(self.all_alarms, key=lambda a: (a.state == TEST_CALL, a.rank))
        shown = [a for a in ordered if self._visible(a)]
        self.alarms = {a.alarm_id: a for a in shown}
        keys = {str(c.key.value) for c in self.columns.values()}
        self.clear()
        for a in shown:
            cells = self._cells(a, self._now)
            self.add_row(*[cells[k] for k in self._keys() if k in keys], key=a.alarm_id)
        if keep in self.alarms:
            self.move_cursor(row=self.get_row_index(keep))
        real = [a for a in ordered if a.state != TEST_CALL]
        p0 = sum(a.priority == "P0" for a in real)
        waiting = sum(not a.accepted_by for a in real)
        title = f"Open alarms ({len(real)} · {waiting} not accepted)"
        if p0:
            title += f" · {p0} P0"
        if len(real) < len(ordered):
            title += f" · {len(ordered) - len(real)} test"
        filters = []
        if self.scheme_filter:
            filters.append(self.scheme_filter)
        if self.state_filter != "all":
            filters.append(self.state_filter)
        if filters:
            title += f" · showing {len(shown)}: {', '.join(filters)}"
        self.border_title = title

    def _keys(self) -> list[str]:
        return [str(c.key.value) for c in self.columns.values()]

    def cycle_scheme(self) -> str:
        schemes = sorted({a.scheme for a in self.all_alarms} | set(self.targets))
        order: list[str | None] = [None, *schemes]
        i = order.index(self.scheme_filter) if self.scheme_filter in order else 0
        self.scheme_filter = order[(i + 1) % len(order)]
        self._fill()
        return self.scheme_filter or "all schemes"

    def cycle_state(self) -> str:
        i = STATE_FILTERS.index(self.state_filter)
        self.state_filter = STATE_FILTERS[(i + 1) % len(STATE_FILTERS)]
        self._fill()
        return self.state_filter

    def tick(self, now: datetime | None) -> None:
        """Move the clocks on without rebuilding the table."""
        self._now = now
        keys = set(self._keys())
        for a in self.alarms.values():
            if "age" in keys:
                self.update_cell(a.alarm_id, "age", self._age_cell(a, now))
            if "deadline" in keys:
                self.update_cell(a.alarm_id, "deadline", _deadline(a, now))

    @property
    def selected_alarm_id(self) -> str | None:
        if not self.alarms or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return key

    @property
    def selected(self) -> Alarm | None:
        return self.alarms.get(self.selected_alarm_id or "")

    def action_act(self, action: str) -> None:
        a = self.selected
        if a is None:
            self.notify("Select an alarm first", severity="warning")
            return
        self.post_message(ActionRequested(action, a))

    @on(DataTable.RowSelected)
    def _open(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.post_message(AlarmOpened(event.row_key.value))

    def target_s(self, a: Alarm) -> int | None:
        return self.targets.get(a.scheme, {}).get(a.priority)

    def _age_cell(self, a: Alarm, now: datetime | None) -> Text:
        style = _row_style(a)
        target = self.target_s(a)
        if now is not None and target and a.state != TEST_CALL and not a.arrived_by:
            age = (now - a.opened_at).total_seconds()
            if age >= target:
                style = PAST
            elif age >= 0.75 * target:
                style = NEAR
        return Text(_age(a, now), style)

    def _width(self, key: str) -> int:
        col = next((c for c in self.columns.values() if c.key.value == key), None)
        return col.width if col is not None else 0

    def _cells(self, a: Alarm, now: datetime | None) -> dict[str, Text]:
        style = _row_style(a)
        kind = a.kind
        if self._width("kind") < 14:
            kind = SHORT_KIND.get(kind, kind)
        kind += " · welfare" if a.welfare_check else ""
        state_style = "bold white on red" if a.state == "escalated" else style
        test = a.state == TEST_CALL
        state = Text(a.state, state_style)
        short = SHORT_STATE.get(a.state, a.state[:3])
        if a.silenced_until is not None and now is not None and a.silenced_until > now:
            state = Text(f"{short} zz", state_style)
            state.append(" silenced" if self._width("state") >= 18 else "")
        elif a.acked_state is not None and a.acked_state == a.state:
            state = Text(f"{short} ok", state_style)
            state.append(" acked" if self._width("state") >= 18 else "")
        return {
            "priority": Text(
                "TST" if test else a.priority,
                TEST_STYLE if test else PRIORITY_STYLE.get(a.priority, ""),
            ),
            "age": self._age_cell(a, now),
            "scheme": Text(a.scheme, style),
            "kind": Text(kind, style),
            "flat": Text(a.flat_id or "—", style),
            "state": state,
            "who": _who(a),
            "deadline": _deadline(a, now),
            "count": Text(str(a.count), style, justify="right"),
        }


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
        return Text(f"-{_left(-left)} {label}", "bold red")
    return Text(f"{_left(left)} {label}", "bold yellow" if left <= 15 else "")


def _left(seconds: int) -> str:
    """Time to a deadline, short: 80s, 50m, 3h."""
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
