"""The HTML report in a real browser: headless Chromium (the Debian package `chromium`)
opens the rendered file, (a) measures every chart's bars with getBBox() and dumps the DOM,
(b) takes a screenshot whose pixels are checked for each chart's colour in its region;
(c) the file refers to nothing outside itself. Two Chromium launches in all, a few seconds
each, in one test. Chromium missing fails the test and names the package."""

from __future__ import annotations

import os
import struct
import subprocess
import tempfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from html.parser import HTMLParser
from itertools import accumulate
from operator import add
from pathlib import Path

import pytest

from terminal.report.html import render_html
from terminal.report.svg import COLOURS, HEAT_BINS
from tests.report_dicts import make_report

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,4000", "--hide-scrollbars"]
# each chart and the colour its bars are drawn in
CHART_COLOURS = {"payment_mix": COLOURS["blue"], "daily_sessions": COLOURS["blue"],
                 "daily_energy": COLOURS["green"], "daily_revenue": COLOURS["orange"],
                 "daily_faults": COLOURS["vermillion"], "failures": COLOURS["purple"]}
# written into the page copy Chromium measures (the report itself has no script)
MEASURE = """<script>
for (const svg of document.querySelectorAll('svg.chart')) {
  const r = svg.getBoundingClientRect();
  svg.dataset.box = [r.left + scrollX, r.top + scrollY, r.width, r.height].join(',');
  for (const shape of svg.querySelectorAll('rect.bar, rect.cell')) {
    const b = shape.getBBox();
    shape.dataset.measured = b.width + ',' + b.height;
  }
}
document.body.dataset.measured = 'done';
</script>"""


def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail("headless Chromium is missing: install the Debian packages chromium "
                    "chromium-driver (./dev installs them)")
    return CHROMIUM


def run_chromium(args: list[str]) -> str:
    with tempfile.TemporaryDirectory(prefix="evterm-chromium-") as profile:
        done = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"chromium failed: {done.stderr[-2000:]}"
    return done.stdout


@dataclass
class Shape:
    value: Decimal | None
    width: float
    height: float
    bin: int | None = None


@dataclass
class Chart:
    axis: str
    box: tuple[float, float, float, float]
    width_attr: float
    shapes: list[Shape] = field(default_factory=list)


class DomCharts(HTMLParser):
    """The measured charts of a dumped DOM: each svg.chart's box and its shapes' sizes."""

    def __init__(self) -> None:
        super().__init__()
        self.charts: dict[str, Chart] = {}
        self.current: Chart | None = None
        self.measured = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "body" and a.get("data-measured") == "done":
            self.measured = True
        if tag == "svg" and a.get("data-chart"):
            box = tuple(float(v) for v in (a.get("data-box") or "0,0,0,0").split(","))
            self.current = Chart(a.get("data-axis") or "", box,  # type: ignore[arg-type]
                                 float(a.get("width") or 0))
            self.charts[a["data-chart"] or ""] = self.current
        if tag == "rect" and self.current is not None and "data-measured" in a:
            w, h = (float(v) for v in (a["data-measured"] or "0,0").split(","))
            value = Decimal(a["data-value"]) if a.get("data-value") else None
            cell_bin = int(a["data-bin"]) if a.get("data-bin") else None
            self.current.shapes.append(Shape(value, w, h, cell_bin))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self.current = None


@dataclass
class Png:
    width: int
    rows: list[bytes]  # RGB or RGBA per row, unfiltered
    channels: int

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        row = self.rows[y]
        i = x * self.channels
        return row[i], row[i + 1], row[i + 2]


def read_png(path: Path, max_rows: int) -> Png:
    """The first `max_rows` rows of an 8-bit RGB(A) PNG, decoded with zlib and struct."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, channels = 8, bytearray(), 0, 0, 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, "unexpected PNG kind"
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
    raw = zlib.decompress(bytes(idat))
    stride = width * channels + 1
    prev = bytes(stride - 1)
    rows = []
    mask = (255).__and__
    for y in range(min(height, max_rows)):
        kind, line = raw[y * stride], raw[y * stride + 1:(y + 1) * stride]
        if kind == 0:
            cur = bytes(line)
        elif kind == 2:  # up
            cur = bytes(map(mask, map(add, line, prev)))
        elif kind == 1:  # sub: a running sum per channel
            out = bytearray(len(line))
            for c in range(channels):
                out[c::channels] = bytes(map(mask, accumulate(line[c::channels])))
            cur = bytes(out)
        elif kind == 3:  # average
            out = bytearray(line)
            for i in range(len(out)):
                a = out[i - channels] if i >= channels else 0
                out[i] = (out[i] + ((a + prev[i]) >> 1)) & 255
            cur = bytes(out)
        else:  # Paeth
            cur = _paeth(line, prev, channels)
        rows.append(cur)
        prev = cur
    return Png(width, rows, channels)


def _paeth(line: bytes, prev: bytes, n: int) -> bytes:
    """A Paeth-filtered row undone; a left byte equal to its upper-left one (the common
    case on a page: flat colour) predicts the upper byte without the three distances."""
    out = bytearray(line[:n])
    for i in range(n):
        out[i] = (out[i] + prev[i]) & 255  # no left pixel: the predictor is the upper one
    out += line[n:]
    for i in range(n, len(out)):
        a, b, c = out[i - n], prev[i], prev[i - n]
        if a == c:
            pred = b
        elif b == c:
            pred = a
        else:
            pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out[i] = (out[i] + pred) & 255
    return bytes(out)


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def count_colour(png: Png, box: tuple[float, float, float, float], colour: str) -> int:
    """How many pixels in the box have the colour (each channel within 3 of it)."""
    want = rgb(colour)
    x0, y0, w, h = (round(v) for v in box)
    x0, x1, n = max(x0, 0), min(x0 + w, png.width), png.channels
    seen: Counter[tuple[int, int, int]] = Counter()
    for y in range(max(y0, 0), min(y0 + h, len(png.rows))):
        region = png.rows[y][x0 * n:x1 * n]
        seen.update(zip(region[0::n], region[1::n], region[2::n], strict=True))
    return sum(hits for got, hits in seen.items()
               if all(abs(g - t) <= 3 for g, t in zip(got, want, strict=True)))


def measure(path: Path) -> DomCharts:
    """Chromium launch 1: a copy of the page with the measuring script, its DOM dumped."""
    probe = path.with_name("measured.html")
    probe.write_text(path.read_text(encoding="utf-8").replace("</body>", MEASURE + "</body>"),
                     encoding="utf-8")
    dom = DomCharts()
    dom.feed(run_chromium(["--dump-dom", probe.as_uri()]))
    assert dom.measured, "the measuring script did not run"
    return dom


def shoot(path: Path, measured: DomCharts) -> Png:
    """Chromium launch 2: the page itself (no script) as a PNG, decoded down to the last
    chart's bottom edge."""
    shot = path.with_name("report.png")
    run_chromium([f"--screenshot={shot}", path.as_uri()])
    bottom = max(c.box[1] + c.box[3] for c in measured.charts.values())
    return read_png(shot, int(bottom) + 2)


def check_bars(report: dict, measured: DomCharts) -> None:
    """Every chart drew its bars, each as long as its figure times the chart's scale."""
    assert set(CHART_COLOURS) | {"utilisation"} == set(measured.charts)
    expected = {
        "payment_mix": [Decimal(r["sessions"]) for r in report["payment_mix"]],
        "daily_sessions": [Decimal(d["sessions"]) for d in report["daily"]],
        "daily_energy": [Decimal(d["energy_wh"]) / 1000 for d in report["daily"]],
        "daily_revenue": [Decimal(d["gross"]) for d in report["daily"]],
        "daily_faults": [Decimal(d["faults"]) for d in report["daily"]],
        "failures": [Decimal(f["count"]) for f in report["failures"]],
    }
    for name, figures in expected.items():
        chart = measured.charts[name]
        assert [s.value for s in chart.shapes] == figures, name
        lengths = [s.height if chart.axis == "y" else s.width for s in chart.shapes]
        thickness = [s.width if chart.axis == "y" else s.height for s in chart.shapes]
        assert all(t > 1 for t in thickness), f"{name}: a bar with no thickness"
        scale = max(lengths) / float(max(figures))
        assert max(lengths) > 50, f"{name}: the longest bar is {max(lengths)} px"
        for figure, length in zip(figures, lengths, strict=True):
            assert abs(length - float(figure) * scale) <= 0.05, (name, figure, length)
            assert (length > 0) == (figure > 0), (name, figure, length)


def check_heat_map(report: dict, measured: DomCharts) -> None:
    """168 cells of 40 x 26 px, each in the bin of its hour's occupancy."""
    cells = measured.charts["utilisation"].shapes
    assert len(cells) == 168
    assert all(c.width == 40 and c.height == 26 for c in cells)
    rows = sorted(report["utilisation_by_hour_of_week"],
                  key=lambda r: (r["weekday"], r["hour"]))
    uppers = (Decimal(0), Decimal(20), Decimal(40), Decimal(60), Decimal(80))
    for cell, row in zip(cells, rows, strict=True):
        percent = Decimal(row["occupancy_percent"])
        expected = next((i for i, upper in enumerate(uppers) if percent <= upper), 5)
        assert cell.bin == expected, (row, cell.bin)
    assert {c.bin for c in cells} >= {0, 2, 5}


def check_colours(measured: DomCharts, png: Png) -> None:
    """Each chart's region of the screenshot shows its colour over its bars' area."""
    for name, colour in CHART_COLOURS.items():
        chart = measured.charts[name]
        scale = chart.box[2] / chart.width_attr
        drawn = sum(s.width * s.height for s in chart.shapes) * scale * scale
        seen = count_colour(png, chart.box, colour)
        assert drawn > 500, name
        assert abs(seen - drawn) <= 0.2 * drawn, f"{name}: {seen} px of {colour}, bars {drawn}"
    heat = measured.charts["utilisation"]
    for index in sorted({c.bin for c in heat.shapes} - {0}):
        assert count_colour(png, heat.box, HEAT_BINS[index]) > 300, f"heat-map bin {index}"


def test_the_report_draws_in_headless_chromium(tmp_path: Path) -> None:
    """One test, two Chromium launches (a test split over xdist workers would launch it
    once per worker)."""
    report = make_report()
    path = tmp_path / "report.html"
    path.write_text(render_html(report), encoding="utf-8")
    measured = measure(path)
    check_bars(report, measured)
    check_heat_map(report, measured)
    check_colours(measured, shoot(path, measured))


def test_the_file_needs_nothing_from_outside() -> None:
    text = render_html(make_report()).lower()
    for needle in ("http://", "https://", "src=", "href=", "url(", "@import", "<link",
                   "<script", "<img", "<iframe"):
        assert needle not in text, needle
