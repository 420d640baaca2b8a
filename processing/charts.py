"""Small server-rendered SVG charts for the dashboard (no JavaScript, no CDN)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

STATUS_COLOURS = {
    "succeeded": "#2e7d32",
    "partially_succeeded": "#f9a825",
    "failed": "#c62828",
    "cancelled": "#757575",
    "running": "#1565c0",
    "queued": "#90caf9",
}
SERIES_COLOURS = {"loaded": "#2e7d32", "rejected": "#c62828"}
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 200, 48, 28, 10


def _nice_max(value: int) -> int:
    if value <= 4:
        return 4  # keeps the middle grid line a whole number
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return value


def _frame(title: str, days: Sequence[date], top: int, body: list[str], legend: dict[str, str]) -> SafeString:
    plot_h = HEIGHT - BOTTOM - TOP
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT + 22}" role="img" '
        f'class="df-chart" aria-label="{escape(title)}"><title>{escape(title)}</title>',
    ]
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" fill="#666">'
            f"{int(top * fraction):,}</text>"
        )
    step = (WIDTH - LEFT) / max(len(days), 1)
    for i, day in enumerate(days):
        if i % 2 == len(days) % 2 or len(days) <= 7:
            x = LEFT + step * (i + 0.5)
            parts.append(
                f'<text x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle" font-size="11" fill="#666">'
                f"{day:%m-%d}</text>"
            )
    parts.extend(body)
    x = LEFT
    for name, colour in legend.items():
        parts.append(
            f'<rect x="{x}" y="{HEIGHT + 8}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{HEIGHT + 17}" font-size="11">{escape(name.replace("_", " "))}</text>'
        )
        x += 24 + 7 * len(name)
    parts.append("</svg>")
    # Every text part above is escaped; the rest is markup we wrote.
    return mark_safe("".join(parts))  # noqa: S308  # nosec


def stacked_bars(title: str, data: dict[date, dict[str, int]], colours: dict[str, str]) -> SafeString:
    """One bar per day, stacked by series (e.g. runs by status)."""
    days = list(data)
    top = _nice_max(max((sum(v.values()) for v in data.values()), default=0))
    plot_h = HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT) / max(len(days), 1)
    body: list[str] = []
    for i, day in enumerate(days):
        y: float = TOP + plot_h
        for series, colour in colours.items():
            n = data[day].get(series, 0)
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            label = escape(series.replace("_", " "))
            body.append(
                f'<rect x="{LEFT + step * i + step * 0.15:.1f}" y="{y:.1f}" width="{step * 0.7:.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{day:%Y-%m-%d} {label}: {n:,}</title></rect>'
            )
    used = {s for v in data.values() for s, n in v.items() if n}
    return _frame(title, days, top, body, {s: c for s, c in colours.items() if s in used} or colours)


def grouped_bars(title: str, data: dict[date, dict[str, int]], colours: dict[str, str]) -> SafeString:
    """Side-by-side bars per day (e.g. rows loaded and rejected)."""
    days = list(data)
    top = _nice_max(max((n for v in data.values() for n in v.values()), default=0))
    plot_h = HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT) / max(len(days), 1)
    width = step * 0.7 / max(len(colours), 1)
    body: list[str] = []
    for i, day in enumerate(days):
        for j, (series, colour) in enumerate(colours.items()):
            n = data[day].get(series, 0)
            h = plot_h * n / top
            x = LEFT + step * i + step * 0.15 + width * j
            body.append(
                f'<rect x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{width:.1f}" height="{h:.1f}" '
                f'fill="{colour}"><title>{day:%Y-%m-%d} {escape(series.replace("_", " "))}: {n:,}</title></rect>'
            )
    return _frame(title, days, top, body, colours)
