"""The service menu's "30 days" tab at 800x480 under Xvfb, against
tests/ui/fake_localapi.py (its `service_report_daily` reply): four bar plots whose bars
follow the data (their heights in proportion to the values, the tallest the plot's
max, inside the plot), drawn in the palette's colours (screenshot pixels), every label
in view and unclipped, no text smaller than the service screen's, each total the sum of
its bars; German; then, in high contrast, an empty period (no bars, zeros).

Two UI processes, a few seconds each."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.ui.fake_localapi import FakeLocalApi, daily_reply
from tests.ui.layout_check import layout_problems
from tests.ui.test_ui_layout import settled_layout
from tests.ui.test_ui_meter import png_pixels
from ui import theme

PLOTS = ("sessions", "energy", "revenue", "faults")
MIN_FONT_U = 2.6  # the smallest text of the service screen (the receipt beside the rows)
COLOUR_TOLERANCE = 6  # of 255, per channel


@pytest.fixture
def api() -> Iterator[FakeLocalApi]:
    folder = tempfile.mkdtemp(prefix="evplt-")
    served = FakeLocalApi(str(Path(folder) / "local.sock")).start()
    yield served
    served.close()


def open_plots(ui: Any, api: FakeLocalApi) -> dict[str, Any]:
    api.reset(service={"state": "pin", "technician": None, "locked_until": None})
    ui.wait_screen("pin")
    for digit in "1234":
        ui.press(f"pin_{digit}")
    ui.press("pin_ok")
    ui.wait_screen("service")
    ui.press("svc_tab_plots")
    return ui.wait_for("the plots", lambda d: d.get("service_tab") == "plots"
                       and d["widgets"].get("svc_plots_summary", "").startswith("Last"), 15)


def by_id(dump: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["id"]: entry for entry in dump["layout"] if entry["id"]}


def inside(inner: dict[str, Any], outer: dict[str, Any]) -> bool:
    (x, y), (w, h) = inner["pos"], inner["size"]
    (ox, oy), (ow, oh) = outer["pos"], outer["size"]
    return ox - 1 <= x and oy - 1 <= y and x + w <= ox + ow + 1 and y + h <= oy + oh + 1


def pixel(shot: Path, x: float, y: float) -> tuple[int, ...]:
    """The colour at window pixel (x, y), y from the bottom as Kivy counts."""
    bpp, rows = png_pixels(shot)
    row = rows[len(rows) - 1 - int(y)]
    return tuple(row[int(x) * bpp:int(x) * bpp + 3])


def rgb(colour: tuple[float, ...]) -> tuple[int, ...]:
    return tuple(round(c * 255) for c in colour[:3])


def close_to(seen: tuple[int, ...], wanted: tuple[int, ...]) -> bool:
    return all(abs(a - b) <= COLOUR_TOLERANCE for a, b in zip(seen, wanted, strict=True))


def column(kind: str, rows: list[dict[str, Any]]) -> list[Decimal]:
    key = {"sessions": "sessions", "energy": "energy_wh", "revenue": "gross",
           "faults": "faults"}[kind]
    scale = Decimal(1000) if kind == "energy" else Decimal(1)
    return [Decimal(str(row[key])) / scale for row in rows]


def test_four_plots_follow_the_data_in_view_in_english_and_german(api, ui_process, tmp_path):
    ui = ui_process(SimpleNamespace(socket_path=api.path), size="800x480")
    open_plots(ui, api)
    dump = settled_layout(ui, "the plots")
    assert layout_problems(dump) == []
    shown = by_id(dump)
    window = {"pos": [0, 0], "size": dump["window"]}
    u = dump["window"][1] / 100
    rows = daily_reply()["rows"]
    shot = ui.screenshot(Path(os.environ.get("EVTERM_SHOTS", tmp_path)) / "plots.png")
    for kind in PLOTS:
        plot = shown[f"svc_plot_{kind}"]
        values = column(kind, rows)
        assert plot["values"] == [float(v) for v in values], kind
        bars = plot["bars"]
        assert len(bars) == sum(1 for v in values if v > 0), kind
        tallest = max(bar[3] for bar in bars)
        assert tallest > 6 * u, (kind, tallest)  # a readable height at 800x480
        nonzero = [v for v in values if v > 0]
        for (x, y, w, h), value in zip(bars, nonzero, strict=True):
            assert h == pytest.approx(tallest * float(value / max(values)), abs=0.6), kind
            assert w >= 4 and inside({"pos": [x, y], "size": [w, h]}, plot), kind
        xs = [bar[0] for bar in bars]
        assert xs == sorted(xs), kind  # oldest day on the left
        # the screenshot: the middle of the tallest bar is drawn in the plot's colour
        x, y, w, h = max(bars, key=lambda bar: bar[3])
        colour = theme.NORMAL.ALERT if kind == "faults" else theme.NORMAL.ACCENT
        assert close_to(pixel(shot, x + w / 2, y + h / 2), rgb(colour)), kind
        # title, total: in view, in the window, readable; the total is the bars' sum
        for part in ("title", "total"):
            label = shown[f"svc_plot_{kind}_{part}"]
            assert inside(label, window) and label["font_size"] >= MIN_FONT_U * u - 0.1
        total = shown[f"svc_plot_{kind}_total"]["text"]
        summed = sum(values, Decimal(0))
        expected = {"sessions": f"{summed}", "faults": f"{summed}",
                    "energy": f"{summed.quantize(Decimal('0.1')):,} kWh",
                    "revenue": f"{summed:,} EUR"}[kind]
        assert total == f"Total 30 days: {expected}", kind
        assert shown[f"svc_plot_{kind}_title"]["text"], kind
    # the date and max labels drawn inside each plot, not smaller than the rest
    for entry in dump["layout"]:
        parent = dump["layout"][entry["parent"]] if entry["parent"] is not None else None
        if parent is not None and parent["kind"] == "BarPlot" and entry.get("text"):
            assert inside(entry, parent), entry["text"]
            assert entry["font_size"] >= MIN_FONT_U * u - 0.1 or entry["text"] == "0"
    labels = [e["text"] for e in dump["layout"] if e["parent"] is not None
              and dump["layout"][e["parent"]]["id"] == "svc_plot_energy" and e.get("text")]
    assert "max 117.3" in labels and "2/12" in labels and "25/11" in labels, labels
    summary = shown["svc_plots_summary"]["text"]
    assert summary == "Last 30 days: sessions 85, 1,993.8 kWh, 1,176.40 EUR, faults 2"
    # German: the words and the numbers follow the language
    api.set_state(language="de")
    ui.wait_for("German", lambda d: d["widgets"].get("svc_tab_plots") == "30 Tage")
    german = settled_layout(ui, "the plots in German")
    assert layout_problems(german) == []
    shown = by_id(german)
    assert shown["svc_plot_energy_total"]["text"] == "Summe 30 Tage: 1.993,8 kWh"
    assert shown["svc_plot_revenue_title"]["text"] == "Umsatz pro Tag, EUR inkl. MwSt."
    assert len(shown["svc_plot_sessions"]["bars"]) == 29


def test_an_empty_period_in_high_contrast(api, ui_process):
    api.daily = daily_reply(empty=True)
    ui = ui_process(SimpleNamespace(socket_path=api.path), size="800x480",
                    extra_args=("--high-contrast",))
    open_plots(ui, api)
    dump = settled_layout(ui, "the empty plots")
    assert layout_problems(dump) == []
    assert dump["modes"]["high_contrast"]
    shown = by_id(dump)
    assert shown["svc_plots_summary"]["text"] == "Last 30 days: no sessions and no faults"
    for kind in PLOTS:
        plot = shown[f"svc_plot_{kind}"]
        assert plot["bars"] == [] and plot["values"] == [0.0] * 30, kind
        wanted = theme.HIGH_CONTRAST.ALERT if kind == "faults" else theme.HIGH_CONTRAST.ACCENT
        assert plot["bar_colour"] == [round(c, 4) for c in wanted], kind
    assert shown["svc_plot_energy_total"]["text"] == "Total 30 days: 0.0 kWh"
    assert shown["svc_plot_revenue_total"]["text"] == "Total 30 days: 0.00 EUR"
