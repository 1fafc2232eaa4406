"""Small charts drawn on the server as inline SVG: no chart library, no script, no CDN."""

from __future__ import annotations

from datetime import datetime
from html import escape


def hourly_bars(counts: list[tuple[datetime, int]], width: int = 960, height: int = 180) -> str:
    """Events per hour as a bar chart; hours in UTC along the bottom, the busiest hour labelled."""
    left, right, top, bottom = 44, 8, 14, 26
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((n for _, n in counts), default=0)
    scale = _nice_ceiling(peak)
    n = max(len(counts), 1)
    slot = plot_w / n
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="Events per hour, last {len(counts)} hours (UTC); busiest hour: {peak}">',
        f"<title>Events per hour (UTC), last {len(counts)} hours</title>",
    ]
    for i in range(5):
        value = scale * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:g}</text>')
    for i, (hour, count) in enumerate(counts):
        h = 0 if scale == 0 else plot_h * count / scale
        x = left + i * slot + slot * 0.12
        y = top + plot_h - h
        label = f"{hour:%Y-%m-%d %H}:00 UTC: {count} events"
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.76:.1f}" height="{h:.1f}">'
            f"<title>{escape(label)}</title></rect>"
        )
        if i % 3 == 0 or i == len(counts) - 1:
            parts.append(
                f'<text class="axis" x="{x + slot * 0.38:.1f}" y="{height - 8}" text-anchor="middle">{hour:%H}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _nice_ceiling(value: int) -> int:
    """The smallest of 4, 8, 20, 40, 80, 200… at least ``value``: round gridlines."""
    if value <= 4:
        return 4
    step = 1
    while True:
        for m in (4, 8, 20):
            if m * step >= value:
                return m * step
        step *= 10
