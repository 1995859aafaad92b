"""The KPI strip: tonight's figures per scheme, as the gateway computed them, on one line."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from dashboard_tui.clock import duration
from dashboard_tui.models import KpiFigures, SchemeKpi

BARS = "▁▂▃▄▅▆▇█"


def sparkline(counts: tuple[int, ...]) -> str:
    """One character per hour, scaled to the busiest hour (an empty hour is the lowest bar)."""
    top = max(counts, default=0)
    if top == 0:
        return BARS[0] * len(counts)
    return "".join(BARS[min(len(BARS) - 1, round(c * (len(BARS) - 1) / top))] for c in counts)


def _s(seconds: float | None) -> str:
    return "—" if seconds is None else duration(seconds)


def figures_text(f: KpiFigures, *, wide: bool) -> Text:
    t = Text()
    t.append(f"{f.window} ", "bold")
    t.append(f"{f.alarms} alarms")
    t.append(f"  accept {_s(f.accept_median_s)}")
    if wide:
        t.append(f"/p90 {_s(f.accept_p90_s)}", "dim")
    t.append(f"  arrive {_s(f.arrive_median_s)}")
    if wide:
        t.append(f"/p90 {_s(f.arrive_p90_s)}", "dim")
    if f.within_target_pct is None:
        t.append("  target —", "dim")
    else:
        pct = f.within_target_pct
        style = "bold green" if pct >= 90 else "bold yellow" if pct >= 75 else "bold red"
        t.append("  in target ")
        t.append(f"{pct:.0f}%", style)
    return t


class KpiStrip(Static):
    """One line: for each scheme, tonight's figures, today's count and alarms per hour."""

    DEFAULT_CSS = """
    KpiStrip { height: 1; padding: 0 1; background: $boost; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.kpis: list[SchemeKpi] = []
        self.problem: str | None = None

    def show(self, kpis: list[SchemeKpi]) -> None:
        self.kpis, self.problem = kpis, None
        self.refresh()

    def show_problem(self, reason: str) -> None:
        """The figures could not be read (the database is away): say so, keep the last."""
        self.problem = reason
        self.refresh()

    def render(self) -> Text:
        wide = self.size.width >= 140
        line = Text()
        for i, k in enumerate(self.kpis):
            if i:
                line.append("  │  ", "dim")
            if len(self.kpis) > 1 or wide:
                line.append(f"{k.scheme}: ", "dim")
            line.append_text(figures_text(k.tonight, wide=wide))
            line.append(f"  today {k.today.alarms}", "dim")
            line.append("  ")
            line.append(sparkline(k.hourly), "cyan")
            if wide:
                line.append(f" last {len(k.hourly)}h", "dim")
        if not self.kpis:
            line.append("figures: waiting for the gateway", "dim")
        if self.problem:
            line.append(f"  (figures stale: {self.problem})", "yellow")
        return line
