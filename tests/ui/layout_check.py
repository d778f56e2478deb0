"""What a layout test finds wrong in the automation socket's `dump` with `layout`
(ui/control.py, layout_of): plain functions over the dump, no Kivy.

- clipped text: a label whose text needs more room than its box (`needed` or
  `texture_size` larger than `size` by more than TOLERANCE_PX), which Kivy draws cut
  off or over its neighbours;
- a widget outside its parent (not inside a ScrollView's content, which scrolls);
- overlapping siblings in box and grid layouts (side by side by design; float and
  anchor layouts may stack);
- a number and its unit wrapped onto two lines ("nach 10" / "min");
- a QR code drawn smaller than QR_MIN_FRACTION of the window height: 37.5 %, 180 px at
  800x480 (a 41-module code at 4 px a module, 0.8 mm on a 7" panel) and 300 px at
  1280x800.
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any

TOLERANCE_PX = 1.5
QR_MIN_FRACTION = 0.375
_UNIT_START = re.compile(r"^(?:kWh|Wh|kW|min|h|s|EUR|€|%)(?![A-Za-z])")
PANEL_MM_PER_PX_800 = 154 / 800  # a 7" 800x480 panel is about 154 x 86 mm
CAP_HEIGHT = 0.7  # capital height / font size (Roboto)


def cap_height_mm(font_px: float, window_width: float) -> float:
    """The capital height of `font_px` on a 7" panel of the window's width in mm."""
    return CAP_HEIGHT * font_px * 154 / window_width


def _name(entry: dict[str, Any]) -> str:
    text = entry.get("text")
    label = entry["id"] or entry["kind"]
    return f"{label} {text[:40]!r}" if text else label


def _rect(entry: dict[str, Any]) -> tuple[float, float, float, float]:
    (x, y), (w, h) = entry["pos"], entry["size"]
    return x, y, x + w, y + h


def layout_problems(dump: dict[str, Any]) -> list[str]:
    entries: list[dict[str, Any]] = dump["layout"]
    window_w, window_h = dump["window"]
    problems: list[str] = []
    children: dict[int, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry["parent"] is not None:
            children.setdefault(entry["parent"], []).append(entry)
    for entry in entries:
        w, h = entry["size"]
        if "needed" in entry:
            need_w = max(entry["needed"][0], entry["texture_size"][0])
            need_h = max(entry["needed"][1], entry["texture_size"][1])
            if need_w > w + TOLERANCE_PX or need_h > h + TOLERANCE_PX:
                problems.append(f"clipped text: {_name(entry)} needs {need_w:.0f}x"
                                f"{need_h:.0f} px, has {w:.0f}x{h:.0f}")
            lines = entry.get("lines") or []
            for before, after in pairwise(lines):
                if re.search(r"\d$", before.rstrip()) and _UNIT_START.match(after.lstrip()):
                    problems.append(f"number and unit on two lines: {_name(entry)}: "
                                    f"{before!r} / {after!r}")
        if "drawn" in entry and entry["drawn"] > 0 \
                and entry["drawn"] < QR_MIN_FRACTION * window_h - TOLERANCE_PX:
            problems.append(f"QR code {entry['id']} is {entry['drawn']:.0f} px, less than "
                            f"{QR_MIN_FRACTION * window_h:.0f} px")
        parent = entries[entry["parent"]] if entry["parent"] is not None else None
        if parent is not None and not entry["scrolled"]:
            x0, y0, x1, y1 = _rect(entry)
            px0, py0, px1, py1 = _rect(parent)
            t = TOLERANCE_PX
            if x0 < px0 - t or y0 < py0 - t or x1 > px1 + t or y1 > py1 + t:
                problems.append(f"outside its parent: {_name(entry)} at "
                                f"{[round(v) for v in (x0, y0, x1, y1)]} in {_name(parent)} "
                                f"{[round(v) for v in (px0, py0, px1, py1)]}")
        if entry["parent"] is None:
            x0, y0, x1, y1 = _rect(entry)
            if x1 > window_w + TOLERANCE_PX or y1 > window_h + TOLERANCE_PX:
                problems.append(f"outside the window: {_name(entry)}")
    for siblings in children.values():
        boxed = [e for e in siblings if e["layout"] == "box"]
        for index, first in enumerate(boxed):
            for second in boxed[index + 1:]:
                a, b = _rect(first), _rect(second)
                overlap_w = min(a[2], b[2]) - max(a[0], b[0])
                overlap_h = min(a[3], b[3]) - max(a[1], b[1])
                if overlap_w > TOLERANCE_PX and overlap_h > TOLERANCE_PX:
                    problems.append(f"overlap: {_name(first)} and {_name(second)} "
                                    f"({overlap_w:.0f}x{overlap_h:.0f} px)")
    return problems


def widget(dump: dict[str, Any], name: str) -> dict[str, Any]:
    """The layout entry of the widget with the kv id `name` (AssertionError if not drawn)."""
    for entry in dump["layout"]:
        if entry["id"] == name:
            return entry
    raise AssertionError(f"{name} is not drawn on {dump['screen']}")
