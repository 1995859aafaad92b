"""Small server-side SVG charts: no script, no CDN, nothing fetched by the browser, and they
print to PDF as they are. Each chart is an ``<svg>`` with ``data-chart`` (its name) and
``data-points`` (how many data marks it drew), so a test can tell an empty chart from a
drawn one; every data mark has class ``datum`` and a ``<title>`` with its value."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

W, H = 560, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 16, 40
PALETTE = ("#1f5fa8", "#7aa6d6", "#c0562b", "#e6a57e")
TARGET = "#2b2b2b"


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: Sequence[float | None]
    colour: str


def nice_top(top: float) -> float:
    """The smallest 'round' axis top (4 ticks of 1, 2, 2.5 or 5 times a power of ten) >= top."""
    raw = max(top, 1e-9) / 4
    mag = 10.0 ** math.floor(math.log10(raw))
    step: float = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    return step * 4


def _val(v: float, unit: str) -> str:
    return f"{round(v, 1):g}{escape(unit)}"


def _frame(name: str, points: int, body: list[str], title: str) -> str:
    return (
        f'<svg class="chart" data-chart="{escape(name)}" data-points="{points}" role="img"'
        f' viewBox="0 0 {W} {H}" width="{W}" height="{H}" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>" + "".join(body) + "</svg>"
    )


def _axes(top: float, unit: str) -> list[str]:
    out = []
    plot_h = H - TOP - BOTTOM
    for i in range(5):
        v = top * i / 4
        y = H - BOTTOM - plot_h * i / 4
        out.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" class="tick" text-anchor="end">'
            f"{round(v, 1):g}{escape(unit)}</text>"
        )
    return out


def _legend(series: Sequence[Series]) -> list[str]:
    out = []
    x = LEFT
    for s in series:
        out.append(
            f'<rect x="{x}" y="{H - 14}" width="10" height="10" fill="{s.colour}"/>'
            f'<text x="{x + 14}" y="{H - 5}" class="tick">{escape(s.name)}</text>'
        )
        x += 16 + 7 * len(s.name) + 14
    return out


def bars(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    top: float | None = None,
    targets: Sequence[tuple[float, str]] = (),
) -> str:
    """Grouped vertical bars, one group per label, one bar per series; optional dashed
    target lines (value, label)."""
    values = [v for s in series for v in s.values if v is not None]
    top = top if top is not None else nice_top(max([*values, *(t for t, _ in targets), 1.0]))
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    body = _axes(top, unit)
    group_w = plot_w / max(len(labels), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    points = 0
    for i, label in enumerate(labels):
        gx = LEFT + i * group_w + group_w * 0.1
        for j, s in enumerate(series):
            v = s.values[i]
            if v is None:
                continue
            h = plot_h * v / top
            x = gx + j * bar_w
            body.append(
                f'<rect class="datum" x="{x:.1f}" y="{H - BOTTOM - h:.1f}" width="{bar_w:.1f}"'
                f' height="{max(h, 0.5):.1f}" fill="{s.colour}">'
                f"<title>{escape(s.name)} {escape(label)}: {_val(v, unit)}</title></rect>"
            )
            points += 1
        body.append(
            f'<text x="{gx + group_w * 0.4:.1f}" y="{H - BOTTOM + 14}" class="tick"'
            f' text-anchor="middle">{escape(label)}</text>'
        )
    for value, label in targets:
        y = H - BOTTOM - plot_h * value / top
        body.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="target"/>'
            f'<text x="{W - RIGHT}" y="{y - 3:.1f}" class="tick" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    if len(series) > 1:
        body += _legend(series)
    return _frame(name, points, body, title)


def lines(
    name: str,
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    unit: str = "",
    top: float = 100.0,
    targets: Sequence[tuple[float, str]] = (),
) -> str:
    """One line per series across the labels (weeks), with dashed target lines."""
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    body = _axes(top, unit)
    step = plot_w / max(len(labels) - 1, 1)
    points = 0
    for i, label in enumerate(labels):
        x = LEFT + (i * step if len(labels) > 1 else plot_w / 2)
        body.append(
            f'<text x="{x:.1f}" y="{H - BOTTOM + 14}" class="tick" text-anchor="middle">'
            f"{escape(label)}</text>"
        )
    for s in series:
        coords = []
        for i, v in enumerate(s.values):
            if v is None:
                continue
            x = LEFT + (i * step if len(labels) > 1 else plot_w / 2)
            y = H - BOTTOM - plot_h * min(v, top) / top
            coords.append(f"{x:.1f},{y:.1f}")
            body.append(
                f'<circle class="datum" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{s.colour}">'
                f"<title>{escape(s.name)} {escape(labels[i])}: {_val(v, unit)}</title>"
                "</circle>"
            )
            points += 1
        if len(coords) > 1:
            body.append(
                f'<polyline points="{" ".join(coords)}" fill="none" stroke="{s.colour}"'
                ' stroke-width="2"/>'
            )
    for value, label in targets:
        y = H - BOTTOM - plot_h * value / top
        body.append(
            f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="target"/>'
            f'<text x="{W - RIGHT}" y="{y - 3:.1f}" class="tick" text-anchor="end">'
            f"{escape(label)}</text>"
        )
    body += _legend(series)
    return _frame(name, points, body, title)
