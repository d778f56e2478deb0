"""Charts as inline SVG, drawn in Python for the single-file HTML report (docs/reports.md,
"The HTML report"): no script, no font, no external file; a browser draws them as they are.

Provides:
- `Bar` (one bar: its label, its value and the figure printed for it);
- `bar_chart(...)`: vertical bars (one per day, say) on a zero baseline, a y axis with
  round ticks, x labels thinned so they never overlap;
- `hbar_chart(...)`: horizontal bars with the label left and the figure right of each
  bar (payment mix, failures by kind);
- `heat_map(...)`: a rows x columns grid of cells coloured in discrete bins, each cell
  with its figure written in it, and the legend of the bins;
- the colour-blind-safe palette (`COLOURS`, Okabe & Ito, "Color Universal Design") and
  the heat map's sequential blues (`HEAT_BINS`, ColorBrewer "Blues").

Every chart is `<svg role="img" aria-labelledby=...>` with a `<title>` and a `<desc>`,
every bar or cell has a `<title>` with its label and figure (a tooltip, and what a screen
reader says). A bar's length is exactly proportional to its value (value / scale maximum
x plot size); bars carry `class="bar"`, `data-value` (the value) and the chart carries
`data-chart` and `data-axis` ("y": lengths are heights, "x": widths), which is what the
tests measure in Chromium. Negative values are drawn as zero-length bars (their figure
is still printed). Every text is escaped here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from html import escape

# Okabe & Ito's palette: told apart by readers with any of the common colour-vision
# deficiencies (and each chart has one colour only, its figures written beside it);
# every bar colour has at least 3:1 contrast on white (WCAG 1.4.11).
COLOURS = {
    "blue": "#0072B2",
    "green": "#009E73",
    "orange": "#AD6800",  # Okabe & Ito's orange (#E69F00) darkened to 4.4:1 on white
    "vermillion": "#D55E00",
    "purple": "#CC79A7",
}
INK = "#1a1a1a"
GRID = "#d0d0d0"
# ColorBrewer "Blues" (sequential, colour-blind safe, readable in grey print): the heat
# map's bins, from "none" to the highest; text on the darkest two is white (the ink
# with the higher contrast: at least 5:1 on every bin).
HEAT_BINS = ("#f7fbff", "#deebf7", "#9ecae1", "#4292c6", "#2171b5", "#08306b")
_DARK_FROM = 4


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar: `label` on the axis, `value` its length, `shown` the figure printed."""

    label: str
    value: Decimal
    shown: str


def _fmt(number: float) -> str:
    """A coordinate with at most two decimals, no trailing zeros."""
    text = f"{number:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest of 1, 2, 2.5, 5 x 10^k that is >= value (1 for value <= 0)."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for _ in range(2):
        base = Decimal(1).scaleb(exponent)
        for step in (1, 2, Decimal("2.5"), 5, 10):
            candidate = base * step
            if candidate >= value:
                return candidate.normalize()
        exponent += 1
    return value  # not reached: 10 x 10^adjusted() always covers value


def tick_count(top_value: Decimal, *, whole: bool) -> int:
    """How many steps the y axis has up to `top_value`: 4, or for counts (whole numbers)
    the first of 4, 5, 2, 1 that gives whole-number ticks (no "2.5 faults")."""
    if not whole:
        return 4
    for steps in (4, 5, 2):
        if top_value % steps == 0:
            return steps
    return 1


def _tick_label(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _svg_open(chart_id: str, title: str, desc: str, width: int, height: int,
              axis: str) -> list[str]:
    cid = escape(chart_id)
    return [
        f'<svg class="chart" data-chart="{cid}" data-axis="{axis}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="{cid}-t {cid}-d" font-family="sans-serif" font-size="11">',
        f'<title id="{cid}-t">{escape(title)}</title>',
        f'<desc id="{cid}-d">{escape(desc)}</desc>',
    ]


def bar_chart(chart_id: str, title: str, desc: str, bars: Sequence[Bar], *,
              colour: str, width: int = 580, height: int = 220) -> str:
    """Vertical bars, one per entry, on a zero baseline with a y axis of round ticks."""
    left, right, top, bottom = 52, 8, 10, 34
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = nice_ceiling(max((b.value for b in bars), default=Decimal(0)))
    ticks = tick_count(top_value, whole=all(b.value == int(b.value) for b in bars))
    out = _svg_open(chart_id, title, desc, width, height, "y")
    base_y = top + plot_h
    for i in range(ticks + 1):
        tick = top_value * i / ticks
        y = base_y - plot_h * i / ticks
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" '
                   f'stroke="{GRID}" stroke-width="1" aria-hidden="true"/>')
        out.append(f'<text x="{left - 4}" y="{_fmt(y + 4)}" text-anchor="end" fill="{INK}" '
                   f'aria-hidden="true">{escape(_tick_label(tick))}</text>')
    slot = plot_w / max(len(bars), 1)
    gap = slot * 0.2 if slot >= 4 else 0.0
    widest = max((len(b.label) for b in bars), default=0) * 6.5 + 10
    every = max(1, math.ceil(max(44, widest) / slot))  # x labels never overlap
    for index, bar in enumerate(bars):
        length = max(bar.value, Decimal(0)) / top_value * plot_h
        x = left + index * slot + gap / 2
        y = base_y - float(length)
        out.append(
            f'<rect class="bar" data-value="{escape(str(bar.value))}" x="{_fmt(x)}" '
            f'y="{_fmt(y)}" width="{_fmt(slot - gap)}" height="{_fmt(float(length))}" '
            f'fill="{colour}" shape-rendering="crispEdges">'
            f'<title>{escape(bar.label)}: {escape(bar.shown)}</title></rect>')
        if index % every == 0:
            cx = left + index * slot + slot / 2
            out.append(f'<text x="{_fmt(cx)}" y="{base_y + 16}" text-anchor="middle" '
                       f'fill="{INK}" aria-hidden="true">{escape(bar.label)}</text>')
    out.append(f'<line x1="{left}" x2="{width - right}" y1="{base_y}" y2="{base_y}" '
               f'stroke="{INK}" stroke-width="1" aria-hidden="true"/>')
    out.append("</svg>")
    return "\n".join(out)


def hbar_chart(chart_id: str, title: str, desc: str, bars: Sequence[Bar], *,
               colour: str, width: int = 580, label_w: int = 170, row_h: int = 26) -> str:
    """Horizontal bars: the label left of each bar, its figure right of it."""
    figure_w, top = 90, 6
    plot_w = width - label_w - figure_w
    height = top * 2 + row_h * max(len(bars), 1)
    top_value = max((b.value for b in bars), default=Decimal(0))
    top_value = top_value if top_value > 0 else Decimal(1)
    out = _svg_open(chart_id, title, desc, width, height, "x")
    for index, bar in enumerate(bars):
        y = top + index * row_h
        length = float(max(bar.value, Decimal(0)) / top_value * plot_w)
        mid = y + row_h / 2 + 4
        out.append(f'<text x="{label_w - 6}" y="{_fmt(mid)}" text-anchor="end" fill="{INK}" '
                   f'aria-hidden="true">{escape(bar.label)}</text>')
        out.append(
            f'<rect class="bar" data-value="{escape(str(bar.value))}" x="{label_w}" '
            f'y="{_fmt(y + 4)}" width="{_fmt(length)}" height="{row_h - 8}" fill="{colour}" '
            f'shape-rendering="crispEdges"><title>{escape(bar.label)}: '
            f'{escape(bar.shown)}</title></rect>')
        out.append(f'<text x="{_fmt(label_w + length + 6)}" y="{_fmt(mid)}" fill="{INK}" '
                   f'aria-hidden="true">{escape(bar.shown)}</text>')
    out.append(f'<line x1="{label_w}" x2="{label_w}" y1="{top}" y2="{height - top}" '
               f'stroke="{INK}" stroke-width="1" aria-hidden="true"/>')
    out.append("</svg>")
    return "\n".join(out)


@dataclass(frozen=True, slots=True)
class Cell:
    """One heat-map cell: its bin (index into HEAT_BINS), the text in it, its title."""

    bin: int
    text: str
    title: str


def heat_map(chart_id: str, title: str, desc: str, rows: Sequence[str],
             columns: Sequence[str], cells: Sequence[Sequence[Cell]],
             legend: Sequence[str], *, cell_w: int = 40, cell_h: int = 26) -> str:
    """A grid of cells (rows x columns), each filled with its bin's colour and its figure
    written in it; column labels on top, row labels left, the bins' legend below."""
    left, top = 44, 20
    legend_h = 40
    width = left + cell_w * len(columns) + 4
    height = top + cell_h * len(rows) + legend_h
    out = _svg_open(chart_id, title, desc, width, height, "cells")
    for c, name in enumerate(columns):
        x = left + c * cell_w + cell_w / 2
        out.append(f'<text x="{_fmt(x)}" y="{top - 6}" text-anchor="middle" fill="{INK}" '
                   f'aria-hidden="true">{escape(name)}</text>')
    for r, name in enumerate(rows):
        y = top + r * cell_h
        out.append(f'<text x="{left - 6}" y="{_fmt(y + cell_h / 2 + 4)}" text-anchor="end" '
                   f'fill="{INK}" font-weight="bold" aria-hidden="true">{escape(name)}</text>')
        for c, cell in enumerate(cells[r]):
            x = left + c * cell_w
            ink = "#ffffff" if cell.bin >= _DARK_FROM else INK
            out.append(
                f'<rect class="cell" data-bin="{cell.bin}" x="{x}" y="{y}" width="{cell_w}" '
                f'height="{cell_h}" fill="{HEAT_BINS[cell.bin]}" stroke="#ffffff" '
                f'stroke-width="1"><title>{escape(cell.title)}</title></rect>')
            out.append(f'<text x="{_fmt(x + cell_w / 2)}" y="{_fmt(y + cell_h / 2 + 4)}" '
                       f'text-anchor="middle" font-size="10" fill="{ink}" '
                       f'aria-hidden="true">{escape(cell.text)}</text>')
    y = top + cell_h * len(rows) + 14
    x = float(left)
    slot_w = (width - left) / max(len(legend), 1)
    for index, words in enumerate(legend):
        out.append(f'<rect class="legend" x="{_fmt(x)}" y="{y}" width="18" height="14" '
                   f'fill="{HEAT_BINS[index]}" stroke="{INK}" stroke-width="0.5"/>')
        out.append(f'<text x="{_fmt(x + 24)}" y="{y + 11}" fill="{INK}">{escape(words)}</text>')
        x += slot_w
    out.append("</svg>")
    return "\n".join(out)
