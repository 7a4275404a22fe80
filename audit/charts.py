"""Small server-rendered SVG charts for the auditors' overview: no JavaScript, no outside
assets. Each chart has a title and a description for screen readers, and the page shows
the same figures in a table beside it."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 560, 260
LEFT, RIGHT, TOP, BOTTOM = 56, 24, 28, 56
CHAR_W = 6.2  # the width of one character at font-size 11, near enough
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
BAR = "#0b5cad"
ACCENT = "#cf222e"
GRID = "#d0d7de"
INK = "#1b1f24"


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""  # shown as the bar's tooltip, e.g. "3 of 12 cases"
    count: str = ""  # written above the bar, so no rate stands without its count: "2 of 2"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def count(value: float) -> str:
    return f"{value:.0f}"


def _svg(title: str, description: str, body: list[str], height: float = HEIGHT) -> SafeString:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0f}" '
        f'role="img" aria-labelledby="t d" class="chart" font-family="system-ui, sans-serif" '
        f'font-size="11">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>"
    )
    return mark_safe(head + "".join(body) + "</svg>")  # noqa: S308 (every text is escaped)


def _nice_top(value: float, ticks: int = 4) -> float:
    """A count axis whose four ticks are whole numbers: 1..4 → 4, 5..8 → 8, 9..12 → 12, ..."""
    step = max(1, math.ceil(value / ticks))
    magnitude = 10 ** max(0, len(str(step)) - 2)
    return ticks * math.ceil(step / magnitude) * magnitude


def _y_axis(
    y_max: float, fmt: Callable[[float], str], ticks: int = 4, title: str = ""
) -> list[str]:
    parts = []
    if title:
        y = TOP + PLOT_H / 2
        parts.append(
            f'<text transform="translate(12,{y:.1f}) rotate(-90)" text-anchor="middle" '
            f'fill="{INK}" class="axis-title">{escape(title)}</text>'
        )
    for i in range(ticks + 1):
        value = y_max * i / ticks
        y = TOP + PLOT_H - PLOT_H * i / ticks
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + PLOT_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" fill="{INK}">'
            f"{escape(fmt(value))}</text>"
        )
    return parts


def bar_chart(
    bars: list[Bar],
    *,
    title: str,
    description: str,
    y_max: float | None = None,
    fmt: Callable[[float], str] = percent,
    x_title: str = "",
    y_title: str = "",
) -> SafeString:
    top = y_max if y_max is not None else _nice_top(max([b.value for b in bars] + [1]))
    body = _y_axis(top, fmt, title=y_title)
    if not bars:
        body.append(
            f'<text x="{LEFT + PLOT_W / 2}" y="{TOP + PLOT_H / 2}" text-anchor="middle" '
            f'fill="{INK}">No data yet</text>'
        )
        return _svg(title, description, body)
    slot = PLOT_W / len(bars)
    width = min(64.0, max(2.0, slot * 0.7))
    longest = max(len(bar.label) for bar in bars)
    # Labels are written whole (a revision cut to "sha256:3f9a…" names nothing): turned
    # upright when they would overlap, with the chart made taller to hold them.
    rotate = len(bars) > 8 or longest * CHAR_W > slot
    labels_h = (longest * CHAR_W + 14) if rotate else 22.0
    chart_h = TOP + PLOT_H + labels_h + (20 if x_title else 4)
    for i, bar in enumerate(bars):
        height = PLOT_H * (bar.value / top if top else 0)
        x = LEFT + i * slot + (slot - width) / 2
        y = TOP + PLOT_H - height
        tip = f"{bar.label}: {fmt(bar.value)}" + (f" ({bar.note})" if bar.note else "")
        body.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'fill="{BAR}"><title>{escape(tip)}</title></rect>'
        )
        cx = x + width / 2
        label = bar.label
        if bar.count:
            body.append(
                f'<text x="{cx:.1f}" y="{y - 4:.1f}" text-anchor="middle" fill="{INK}" '
                f'font-size="10" class="bar-count">{escape(bar.count)}</text>'
            )
        if rotate:
            body.append(
                f'<text transform="translate({cx - 3:.1f},{TOP + PLOT_H + 8}) rotate(90)" '
                f'fill="{INK}">{escape(label)}</text>'
            )
        else:
            body.append(
                f'<text x="{cx:.1f}" y="{TOP + PLOT_H + 16}" text-anchor="middle" '
                f'fill="{INK}">{escape(label)}</text>'
            )
    if x_title:
        body.append(
            f'<text x="{LEFT + PLOT_W / 2}" y="{chart_h - 6:.1f}" text-anchor="middle" '
            f'fill="{INK}" class="axis-title">{escape(x_title)}</text>'
        )
    return _svg(title, description, body, chart_h)


def reliability_plot(
    points: list[tuple[float, int, int]], *, title: str, description: str
) -> SafeString:
    """x: the model's confidence (bin centre); y: share of those cases the clinician accepted.
    A well-calibrated model sits on the diagonal. Circle area grows with the cases in a bin."""
    body = _y_axis(1.0, percent, title="share accepted by the clinician")
    x0, y0 = LEFT, TOP + PLOT_H
    body.append(
        f'<line x1="{x0}" y1="{y0}" x2="{x0 + PLOT_W}" y2="{TOP}" stroke="{ACCENT}" '
        f'stroke-dasharray="5 4"><title>perfect calibration</title></line>'
    )
    for i in range(0, 11, 2):
        x = x0 + PLOT_W * i / 10
        body.append(
            f'<text x="{x:.1f}" y="{y0 + 16}" text-anchor="middle" fill="{INK}">{i * 10}%</text>'
        )
    body.append(
        f'<text x="{x0 + PLOT_W / 2}" y="{HEIGHT - 12}" text-anchor="middle" fill="{INK}">'
        "the model's confidence</text>"
    )
    biggest = max([n for _, n, _ in points] + [1])
    path = []
    for centre, n, accepted in points:
        rate = accepted / n if n else 0.0
        x = x0 + PLOT_W * centre
        y = y0 - PLOT_H * rate
        radius = 3 + 9 * (n / biggest) ** 0.5
        path.append(f"{x:.1f},{y:.1f}")
        tip = f"confidence {percent(centre)}: {accepted} of {n} accepted ({percent(rate)})"
        body.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{BAR}" '
            f'fill-opacity="0.75"><title>{escape(tip)}</title></circle>'
            f'<text x="{x:.1f}" y="{y - radius - 3:.1f}" text-anchor="middle" fill="{INK}" '
            f'font-size="10" class="bar-count">{accepted} of {n}</text>'
        )
    if len(path) > 1:
        body.append(f'<polyline points="{" ".join(path)}" fill="none" stroke="{BAR}"/>')
    if not points:
        body.append(
            f'<text x="{x0 + PLOT_W / 2}" y="{TOP + PLOT_H / 2}" text-anchor="middle" '
            f'fill="{INK}">No reviewed cases yet</text>'
        )
    return _svg(title, description, body)
