"""Control-room alerts as they arrive on the gateway's stream, newest at the bottom."""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from rich.text import Text
from textual.widgets import RichLog

from dashboard_tui.clock import clock_time
from dashboard_tui.models import Alert

TYPE_STYLE = {
    "alert": "bold",
    "on_call": "magenta",
    "edt": "bold magenta",
    "follow_up": "cyan",
    "technical": "blue",
    "delivery_failed": "bold red",
}
PRIORITY_STYLE = {"P0": "bold white on red", "P1": "bold black on yellow", "P2": "bold"}
# The stream and the recorded copy of one alert may stamp it a moment apart (a technical
# alert carries the engine step's time, its record the time it was written).
SAME_ALERT = timedelta(seconds=2)


def alert_key(a: Alert) -> tuple[str | None, ...]:
    return (a.type, a.code or a.kind, a.alarm_id, a.device_id, a.carer_id, a.message)


class AlertsLog(RichLog):
    """A bounded log of alerts and of the stream's own comings and goings."""

    def __init__(self, tz: tzinfo, *, id: str | None = None) -> None:
        super().__init__(id=id, max_lines=500, wrap=True, markup=False, min_width=20)
        self.tz = tz
        self.received = 0
        self.seen: dict[tuple[str | None, ...], list[datetime]] = {}
        self.latest: datetime | None = None  # the newest alert time shown: catch up from here

    def on_mount(self) -> None:
        self.border_title = "Alerts"

    def is_duplicate(self, alert: Alert) -> bool:
        if alert.at is None:
            return False
        ats = self.seen.get(alert_key(alert), [])
        return any(abs(alert.at - t) <= SAME_ALERT for t in ats)

    def add_alert(self, alert: Alert) -> bool:
        """Show an alert once: the same alert from the stream and from a catch-up is one
        line. False if it was already shown."""
        if self.is_duplicate(alert):
            return False
        if alert.at is not None:
            self.seen.setdefault(alert_key(alert), []).append(alert.at)
            self.latest = alert.at if self.latest is None else max(self.latest, alert.at)
        self.received += 1
        self.border_title = f"Alerts ({self.received})"
        line = Text(clock_time(alert.at, self.tz) + " ", "dim")
        if alert.priority:
            line.append(f" {alert.priority} ", PRIORITY_STYLE.get(alert.priority, ""))
            line.append(" ")
        label = alert.code or alert.kind or alert.type
        if alert.type == "technical" and alert.cleared:
            label += " cleared"
        line.append(label, TYPE_STYLE.get(alert.type, ""))
        if alert.scheme:
            line.append(f" [{alert.scheme}]", "dim")
        line.append(f" {alert.message}")
        if alert.carer_id:
            line.append(f" → {alert.carer_id}", "magenta")
        elif alert.type == "on_call":
            line.append(" → nobody on call is rostered", "bold red")
        if alert.device_id:
            line.append(f" (device {alert.device_id})", "dim")
        if alert.alarm_id:
            line.append(f" (alarm {alert.alarm_id[:8]})", "dim")
        self.write(line)
        return True

    def note(self, text: str, style: str = "dim italic") -> None:
        """A line about the stream itself (lost, back), not an alert."""
        self.write(Text(f"— {text}", style))
