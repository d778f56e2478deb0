"""What an accessibility test finds wrong in the automation socket's `dump` with `layout`
(ui/control.py): plain functions over the dump, no Kivy; beside tests/ui/layout_check.py.

- `touch_problems`: a button drawn smaller than 15 mm on the 7" reference panel in either
  direction (ui/theme.py TOUCH_U: 16.25 % of the window height, 78 px at 800x480);
- `contrast_problems`: a text whose colour on its background (the `fill` of the nearest
  widget that has one: card, button, bar, badge; else the window's colour) is under the
  WCAG ratio of the mode (4.5:1, high contrast 7:1). Buttons drawn but inactive (dimmed
  on the technician's screens) are exempt, as WCAG 1.4.3 exempts inactive controls;
- `figure_sizes`: the font size of each main figure drawn (price, energy, cost, power,
  time), to compare large text with normal text.
"""

from __future__ import annotations

from typing import Any

from ui.accessibility import FIGURES
from ui.theme import TOUCH_U, contrast_ratio, min_contrast

TOLERANCE_PX = 1.5


def _name(entry: dict[str, Any]) -> str:
    text = entry.get("text")
    label = entry["id"] or entry["kind"]
    return f"{label} {text[:30]!r}" if text else label


def touch_min_px(dump: dict[str, Any]) -> float:
    return TOUCH_U / 100.0 * dump["window"][1]


def touch_problems(dump: dict[str, Any]) -> list[str]:
    smallest = touch_min_px(dump)
    problems = []
    for entry in dump["layout"]:
        if not entry.get("button"):
            continue
        w, h = entry["size"]
        if w < smallest - TOLERANCE_PX or h < smallest - TOLERANCE_PX:
            problems.append(f"touch target {_name(entry)} is {w:.0f}x{h:.0f} px, "
                            f"less than {smallest:.0f} px")
    return problems


def background_of(dump: dict[str, Any], entry: dict[str, Any]) -> list[float]:
    entries = dump["layout"]
    current: dict[str, Any] | None = entry
    while current is not None:
        fill = current.get("fill")
        if fill is not None and fill[3] > 0:
            return fill
        current = entries[current["parent"]] if current["parent"] is not None else None
    return dump["modes"]["background"]


def contrast_problems(dump: dict[str, Any]) -> list[str]:
    high = dump["modes"]["high_contrast"]
    least = min_contrast(high)
    problems = []
    for entry in dump["layout"]:
        if "color" not in entry or not entry.get("text", "").strip():
            continue
        if entry.get("button") and entry["id"] not in dump["buttons"]:
            continue  # an inactive (dimmed) button
        ratio = contrast_ratio(entry["color"], background_of(dump, entry))
        if ratio < least:
            problems.append(f"contrast {ratio:.2f}:1 < {least}:1: {_name(entry)} "
                            f"{entry['color']} on {background_of(dump, entry)}")
    return problems


def figure_sizes(dump: dict[str, Any]) -> dict[str, float]:
    return {entry["id"]: float(entry["font_size"]) for entry in dump["layout"]
            if entry["id"] in FIGURES and "font_size" in entry}
