"""The status bar: is the gateway there and ready, what time is it in the scheme, is the alert
stream live. Every state that means "what you see may be out of date" is shown in red."""

from __future__ import annotations

from datetime import datetime, tzinfo

from rich.text import Text
from textual.widgets import Static

from dashboard_tui.clock import clock_time
from dashboard_tui.models import Readiness

OK = "bold green"
BAD = "bold white on red"
WARN = "bold yellow"


class GatewayStatus(Static):
    """Gateway readiness, scheme clock and alert-stream state in two lines."""

    DEFAULT_CSS = """
    GatewayStatus { dock: top; height: 2; padding: 0 1; background: $panel; }
    """

    def __init__(self, url: str, tz: tzinfo, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.url = url
        self.tz = tz
        self.readiness: Readiness | None = None
        self.unreachable: str | None = None  # why, while the gateway does not answer
        self.error: str | None = None  # answered, but not usefully
        self.last_good: datetime | None = None
        self.now: datetime | None = None
        self.speed: float | None = None
        self.stream = "connecting"
        self.stream_reason = ""
        self.operator: str | None = None
        self.role: str | None = None

    # ---- state changes ----------------------------------------------------------------------

    def show_ready(self, readiness: Readiness, now: datetime, speed: float) -> None:
        self.readiness, self.unreachable, self.error = readiness, None, None
        self.last_good, self.now, self.speed = now, now, speed
        self.refresh()

    def show_failure(self, reason: str, *, unreachable: bool) -> None:
        self.unreachable = reason if unreachable else None
        self.error = None if unreachable else reason
        self.refresh()

    def show_operator(self, username: str, role: str) -> None:
        self.operator, self.role = username, role
        self.refresh()

    def show_clock(self, now: datetime | None) -> None:
        self.now = now
        self.refresh()

    def show_stream(self, state: str, reason: str = "") -> None:
        self.stream, self.stream_reason = state, reason
        self.refresh()

    # ---- rendering --------------------------------------------------------------------------

    def render(self) -> Text:
        # At 80 columns the operator and the gateway's state must fit one line: the title
        # and the URL give way.
        wide = self.size.width >= 120
        line1 = Text.assemble(("Control room ", "bold")) if wide else Text()
        if self.operator:
            line1.append(self.operator, "bold cyan")
            line1.append(f" ({self.role}) " if wide else " ", "dim")
        if wide:
            line1.append(self.url, "dim")
        line1.append(" ")
        if self.unreachable is not None:
            line1.append(" gateway unreachable ", BAD)
            line1.append(f" retrying ({self.unreachable})", WARN)
        elif self.readiness is None:
            line1.append(" connecting… " if self.error is None else " gateway error ", WARN)
        else:
            r = self.readiness
            line1.append(" ready " if r.ready else " NOT READY ", OK if r.ready else BAD)
            for label, up in (("engine", r.engine), ("mqtt", r.mqtt), ("db", r.database)):
                line1.append(f"  {label} " if wide else f" {label} ")
                line1.append("up" if up else "down", OK if up else BAD)
            # The record: rows not yet in the database, and rows it refused (set aside, not
            # an outage: everything behind them ships).
            if r.unshipped:
                line1.append(f"  {r.unshipped} to ship", WARN if r.database else BAD)
            if r.quarantined:
                line1.append(f" {r.quarantined} row(s) refused by db, quarantined ", BAD)
        if self.unreachable is None and self.error:
            line1.append(f"  {self.error}", WARN)
        line2 = Text("scheme time ")
        line2.append(clock_time(self.now, self.tz), "bold")
        if self.speed is not None and self.speed != 1.0:
            line2.append(f"  running at {self.speed:g}x speed", WARN)
        line2.append("   alerts ")
        if self.stream == "live":
            line2.append("live", OK)
        elif self.stream == "lost":
            line2.append(" stream lost ", BAD)
            line2.append(f" {self.stream_reason}", WARN)
        else:
            line2.append(self.stream, WARN)
        if self.unreachable is not None or self.error is not None:
            if self.last_good is None:
                line2.append("   no data yet", WARN)
            else:
                line2.append("   data as of ")
                line2.append(clock_time(self.last_good, self.tz), WARN)
        return Text("\n").join([line1, line2])
