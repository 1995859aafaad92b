"""One alarm in full: every lifecycle step and every routing decision, with each candidate's
travel time and the reason they were or were not chosen. This is the screen that answers
"why did this carer get this alarm at 02:14?"."""

from __future__ import annotations

import json
from datetime import tzinfo
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import DataTable, Static

from dashboard_tui.client import GatewayClient, GatewayError
from dashboard_tui.clock import clock_time, duration
from dashboard_tui.models import AlarmDetail, Candidate, Decision

TIMELINE_COLUMNS = ("at", "step", "carer", "detail")
# The reason comes before the route: routes can be long and are cropped, reasons must not be.
CANDIDATE_COLUMNS = ("carer", "eligible", "travel", "reason", "route")


class AlarmDetailScreen(ModalScreen[None]):
    """Loads ``GET /api/v1/alarms/{id}`` in a worker; Esc closes, r reloads."""

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("r", "reload", "Reload"),
    ]
    DEFAULT_CSS = """
    AlarmDetailScreen { align: center middle; }
    AlarmDetailScreen > VerticalScroll {
        width: 95%; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
    }
    AlarmDetailScreen #summary { height: auto; margin-bottom: 1; }
    AlarmDetailScreen DataTable { height: auto; margin-bottom: 1; }
    AlarmDetailScreen .heading { text-style: bold; color: $accent; }
    AlarmDetailScreen .decision { margin-top: 1; }
    """

    def __init__(self, client: GatewayClient, alarm_id: str, tz: tzinfo) -> None:
        super().__init__()
        self.client = client
        self.alarm_id = alarm_id
        self.tz = tz
        self.detail: AlarmDetail | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = f"Alarm {self.alarm_id}"
            box.border_subtitle = "esc close · r reload"
            yield Static("loading…", id="summary")
            yield Static("Timeline", classes="heading")
            yield DataTable[Text](id="timeline", cursor_type="row", zebra_stripes=True)
            yield Static("Routing decisions", classes="heading")
            yield Vertical(id="decisions")

    def on_mount(self) -> None:
        self.query_one("#timeline", DataTable).add_columns(*TIMELINE_COLUMNS)
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_reload(self) -> None:
        self.load()

    @work(name="alarm-detail", exclusive=True, group="alarm-detail", exit_on_error=False)
    async def load(self) -> None:
        summary = self.query_one("#summary", Static)
        try:
            detail = await self.client.alarm_detail(self.alarm_id)
        except GatewayError as exc:
            summary.update(Text(f"could not load this alarm: {exc}", "bold red"))
            return
        await self.show(detail)

    async def show(self, detail: AlarmDetail) -> None:
        self.detail = detail
        self.query_one("#summary", Static).update(self._summary(detail))
        timeline: DataTable[Text] = self.query_one("#timeline", DataTable)
        timeline.clear()
        for row in detail.timeline:
            timeline.add_row(
                Text(clock_time(row.at, self.tz)),
                Text(row.step, "bold"),
                Text(row.carer_id or ""),
                Text(_compact(row.detail), "dim"),
            )
        box = self.query_one("#decisions", Vertical)
        await box.remove_children()
        widgets: list[Widget] = []
        for d in detail.decisions:
            widgets.append(Static(_heading(d, self.tz), classes="decision"))
            if d.record.candidates:
                table = DataTable[Text](cursor_type="row", zebra_stripes=True)
                table.add_columns(*CANDIDATE_COLUMNS)
                for c in d.record.candidates:
                    table.add_row(*_candidate_cells(c, d.record.chosen))
                widgets.append(table)
        if not widgets:
            widgets.append(Static(Text("no routing decisions recorded", "dim")))
        await box.mount_all(widgets)

    def _summary(self, detail: AlarmDetail) -> Text:
        a = detail.alarm
        if a is None:
            return Text("closed: no longer held by the engine (timeline from the database)")
        text = Text.assemble(
            (f" {a.priority} ", "bold white on red" if a.priority == "P0" else "bold reverse"),
            f" {a.kind} in {a.scheme} flat {a.flat_id or '—'}  state ",
            (a.state, "bold"),
            f"  opened {clock_time(a.opened_at, self.tz)}  count {a.count}",
        )
        if a.resident_ref:
            text.append(f"  resident {a.resident_ref}", "dim")
        if a.accepted_by:
            text.append(f"  accepted by {', '.join(a.accepted_by)}", "green")
        elif a.offers:
            text.append(f"  offered to {', '.join(o.carer_id for o in a.offers)}", "yellow")
        return text


def _heading(d: Decision, tz: tzinfo) -> Text:
    """When, which step, the rule applied and its result, in one line above the candidates."""
    r = d.record
    text = Text(clock_time(d.at, tz) + "  ", "bold")
    if r.offered_to_all is not None:
        everyone = ", ".join(r.offered_to_all) or "nobody routable"
        text.append("escalate", "bold red")
        text.append(f"  {r.rule} → offered to everyone on shift: {everyone}")
        return text
    text.append(f"step {r.step}" if isinstance(r.step, int) else str(r.step), "bold")
    text.append(f"  {r.rule}")
    if r.needed and r.needed > 1:
        text.append(f" (needs {r.needed})")
    text.append(" → chose ")
    text.append(", ".join(r.chosen) or "nobody", "bold green" if r.chosen else "bold red")
    return text


def _candidate_cells(c: Candidate, chosen: tuple[str, ...]) -> list[Text]:
    picked = c.carer in chosen
    return [
        Text(("✓ " if picked else "  ") + c.carer, "bold green" if picked else ""),
        Text("yes" if c.eligible else "no", "green" if c.eligible else "dim"),
        Text(duration(c.travel_s) if c.travel_s is not None else ""),
        Text(c.reason, "" if c.eligible else "yellow"),
        Text(c.route, "dim"),
    ]


def _compact(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in detail.items())
