"""The confirmations every operator action goes through: a modal that names the alarm and
what will happen, takes what the action needs (carers, outcome, note, minutes) and returns
the request body, or None when the operator backs out (Esc)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select

OUTCOMES = (
    "assisted",
    "false_alarm",
    "fall_no_injury_lifted",
    "fall_injury_ambulance",
    "hospital_admission",
    "not_at_home",
    "unable_to_gain_access",
    "fire_service_called",
    "other",
)


@dataclass(frozen=True)
class FormSpec:
    """What to ask: a title line, the question, and which fields the action needs."""

    title: str
    question: str
    carers: str | None = None  # an initial value: ask for carer ids
    outcome: bool = False
    note: bool = False
    note_required: bool = False
    minutes: int | None = None  # an initial value: ask for minutes
    extra: dict[str, Any] = field(default_factory=dict)


class ActionForm(ModalScreen[dict[str, Any] | None]):
    """Enter confirms, Esc cancels. With no fields it is a plain yes/no (y / Enter)."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("y", "confirm_plain", "Yes", show=False),
        Binding("n", "cancel", "No", show=False),
    ]
    DEFAULT_CSS = """
    ActionForm { align: center middle; }
    ActionForm > Vertical {
        width: 72; max-width: 95%; height: auto; border: thick $warning;
        background: $surface; padding: 0 1;
    }
    ActionForm Label { width: 100%; margin-bottom: 1; }
    ActionForm #error { color: $error; }
    ActionForm Input, ActionForm Select { margin-bottom: 1; }
    """

    def __init__(self, spec: FormSpec) -> None:
        super().__init__()
        self.spec = spec

    @property
    def plain(self) -> bool:
        s = self.spec
        return s.carers is None and not s.outcome and not s.note and s.minutes is None

    def compose(self) -> ComposeResult:
        s = self.spec
        with Vertical() as box:
            box.border_title = s.title
            box.border_subtitle = (
                "y / enter: yes · esc: no" if self.plain else "enter: confirm · esc: cancel"
            )
            yield Label(s.question)
            if s.carers is not None:
                yield Input(
                    s.carers, placeholder="carer id(s), e.g. cw-02 or cw-01 cw-02", id="carers"
                )
            if s.outcome:
                yield Select(
                    [(o.replace("_", " "), o) for o in OUTCOMES], prompt="outcome", id="outcome"
                )
            if s.minutes is not None:
                yield Input(str(s.minutes), placeholder="minutes", id="minutes", type="integer")
            if s.note:
                hint = "note (needed)" if s.note_required else "note (optional; needed for 'other')"
                yield Input(placeholder=hint, id="note", max_length=1000)
            yield Label("", id="error")

    def on_mount(self) -> None:
        if self.spec.outcome:
            self.query_one(Select).focus()
        elif inputs := self.query(Input):
            inputs.first().focus()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_confirm_plain(self) -> None:
        if self.plain:
            self.dismiss(dict(self.spec.extra))

    def key_enter(self) -> None:
        if self.plain:
            self.dismiss(dict(self.spec.extra))

    @on(Input.Submitted)
    def _submitted(self) -> None:
        body = self._body()
        if body is not None:
            self.dismiss(body)

    def _fail(self, why: str) -> None:
        self.query_one("#error", Label).update(why)

    def _body(self) -> dict[str, Any] | None:
        s = self.spec
        body: dict[str, Any] = dict(s.extra)
        if s.carers is not None:
            ids = self.query_one("#carers", Input).value.replace(",", " ").split()
            if not 1 <= len(ids) <= 2:
                self._fail("give one carer, or two for a pair")
                return None
            body["carers"] = ids
        if s.outcome:
            value = self.query_one("#outcome", Select).value
            if not isinstance(value, str):
                self._fail("choose an outcome")
                return None
            body["outcome"] = value
        if s.minutes is not None:
            raw = self.query_one("#minutes", Input).value.strip()
            if not raw.isdigit():
                self._fail("minutes: a whole number (0 ends it)")
                return None
            body["minutes"] = int(raw)
        if s.note:
            note = self.query_one("#note", Input).value.strip()
            if (s.note_required or body.get("outcome") == "other") and not note:
                self._fail("a note is needed")
                return None
            body["note"] = note
        return body
