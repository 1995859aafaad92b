"""Keyboard help (``?``): every key, by panel."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Everywhere",
        (
            ("?", "this help"),
            ("tab / shift+tab", "next / previous panel"),
            ("r", "refresh now"),
            ("f", "filter the board by scheme (cycles)"),
            ("s", "filter the board by state: all, waiting, with a carer, escalated, test calls"),
            ("q", "quit"),
        ),
    ),
    (
        "Alarm board (every action asks for confirmation)",
        (
            ("enter", "timeline and routing decisions of the alarm"),
            ("a", "assign or reassign to a carer, or a pair"),
            ("e", "escalate now (everyone on shift, on-call senior)"),
            ("c", "accept for a carer who phoned in"),
            ("v", "mark a carer arrived (they phoned in)"),
            ("x", "resolve with an outcome and a note"),
            ("n", "add a note to the timeline"),
            ("k", "acknowledge its alerts (repeats held while it stays as it is)"),
            ("z", "silence its repeat alerts for some minutes (0 ends it)"),
            ("p", "promote a test call (TST) to a real alarm"),
        ),
    ),
    (
        "Carers",
        (
            ("b", "mark on break"),
            ("u", "mark unavailable"),
            ("a", "mark available"),
        ),
    ),
    (
        "Devices",
        (
            ("t", "start or end a test window (minutes; 0 ends it)"),
            ("c", "a low battery, tamper, power or link fault seen to"),
        ),
    ),
)


def help_table() -> Table:
    t = Table.grid(padding=(0, 2))
    t.add_column(style="bold cyan", no_wrap=True)
    t.add_column()
    for section, keys in KEYS:
        t.add_row(Text(section, "bold underline"), "")
        for key, what in keys:
            t.add_row(key, what)
        t.add_row("", "")
    return t


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q,question_mark", "close", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll {
        width: 90; max-width: 98%; height: 90%; border: thick $primary;
        background: $surface; padding: 0 1;
    }
    """

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "Keys"
            box.border_subtitle = "esc close"
            yield Static(help_table())

    def action_close(self) -> None:
        self.dismiss(None)
