"""The touchscreen's colours and sizes in one place: a normal and a high-contrast palette,
the WCAG contrast ratio, the touch-target size and the large-text factors.

Provides `Palette` (the colour names ui/evterm.kv uses as `app.theme.NAME`), `NORMAL`
and `HIGH_CONTRAST`, `palette(high_contrast)`, `contrast_ratio(fg, bg)` (WCAG 2.x,
relative luminance of sRGB), `MIN_CONTRAST` (4.5:1) and `MIN_CONTRAST_HIGH` (7:1),
`TOUCH_U` (the smallest touch target in units of 1 % of the window height: 15 mm on the
7" 800x480 reference panel, 154.2 x 85.9 mm, 5.19 px/mm, is 78 px = 16.25 % of 480),
`TEXT_SCALE_LARGE` (every driver text in large-text mode) and `FIGURE_SCALE_LARGE` (the
main figures: price, cost, energy, power, time; at least twice their normal size).

Sources: WCAG 2.1, "contrast ratio" and "relative luminance" definitions
(https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio); EN 301 549 V3.2.1 clause 5.1.4
(magnification) and 5.1.6 (operation without vision/fine motor control).

No Kivy here: the palettes are plain tuples (r, g, b, a), tested without a display.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

Rgba = tuple[float, float, float, float]

MIN_CONTRAST = 4.5       # every text, normal mode (WCAG 1.4.3, held for every size)
MIN_CONTRAST_HIGH = 7.0  # every text, high-contrast mode (WCAG 1.4.6)
REFERENCE_PANEL_MM = (154.2, 85.9)
REFERENCE_PANEL_PX = (800, 480)
TOUCH_MM = 15.0
TOUCH_U = 16.25          # 15 mm x 5.19 px/mm = 78 px = 16.25 % of 480 px
TEXT_SCALE_LARGE = 1.25
FIGURE_SCALE_LARGE = 2.0


@dataclass(frozen=True)
class Palette:
    """The colours of evterm.kv. Text colours: TEXT, MUTED (on BG, PANEL, RAISED),
    INK (on ACCENT, AMBER, PAPER), ACCENT and ALERT (red text on BG and PANEL); fills
    under text: BG, PANEL, RAISED, ACCENT, AMBER, RED (white TEXT on it), PAPER. RING is
    the outline of quiet buttons (not text)."""

    name: str
    BG: Rgba
    PANEL: Rgba
    RAISED: Rgba
    TEXT: Rgba
    MUTED: Rgba
    INK: Rgba
    ACCENT: Rgba
    AMBER: Rgba
    RED: Rgba
    ALERT: Rgba
    PAPER: Rgba
    RING: Rgba


NORMAL = Palette(
    name="normal",
    BG=(0.059, 0.071, 0.090, 1),
    PANEL=(0.118, 0.137, 0.169, 1),
    RAISED=(0.196, 0.220, 0.263, 1),
    TEXT=(1, 1, 1, 1),
    MUTED=(0.776, 0.808, 0.855, 1),
    INK=(0.043, 0.051, 0.063, 1),
    ACCENT=(0.231, 0.839, 0.525, 1),
    AMBER=(1.0, 0.698, 0.169, 1),
    RED=(0.757, 0.169, 0.204, 1),     # a fill under white text: 5.7:1
    ALERT=(1.0, 0.439, 0.451, 1),     # red text on the dark surfaces: 5.9:1 on PANEL
    PAPER=(0.965, 0.965, 0.945, 1),
    RING=(0.776, 0.808, 0.855, 1),
)

HIGH_CONTRAST = Palette(
    name="high_contrast",
    BG=(0, 0, 0, 1),
    PANEL=(0, 0, 0, 1),
    RAISED=(0.133, 0.133, 0.133, 1),
    TEXT=(1, 1, 1, 1),
    MUTED=(1, 1, 1, 1),
    INK=(0, 0, 0, 1),
    ACCENT=(1.0, 0.898, 0.0, 1),      # yellow: 16:1 on black
    AMBER=(1.0, 0.749, 0.302, 1),
    RED=(0.6, 0.0, 0.0, 1),           # a fill under white text: 8.9:1
    ALERT=(1.0, 0.502, 0.502, 1),     # red text on black: 8.7:1
    PAPER=(1, 1, 1, 1),
    RING=(1, 1, 1, 1),
)

COLOUR_NAMES = tuple(f.name for f in fields(Palette) if f.name != "name")


def palette(high_contrast: bool) -> Palette:
    return HIGH_CONTRAST if high_contrast else NORMAL


def _channel(value: float) -> float:
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def relative_luminance(colour: Rgba | list[float]) -> float:
    """WCAG relative luminance of an sRGB colour (alpha ignored)."""
    r, g, b = (_channel(float(c)) for c in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def over(fg: Rgba | list[float], bg: Rgba | list[float]) -> Rgba:
    """`fg` drawn with its alpha over the opaque `bg`."""
    alpha = float(fg[3]) if len(fg) > 3 else 1.0
    r, g, b = (alpha * float(f) + (1 - alpha) * float(c) for f, c in zip(fg[:3], bg[:3],
                                                                         strict=True))
    return (r, g, b, 1.0)


def contrast_ratio(fg: Rgba | list[float], bg: Rgba | list[float]) -> float:
    """(L1 + 0.05) / (L2 + 0.05), L1 the lighter; 1 (none) to 21 (black on white)."""
    first, second = relative_luminance(over(fg, bg)), relative_luminance(bg)
    light, dark = max(first, second), min(first, second)
    return (light + 0.05) / (dark + 0.05)


def min_contrast(high_contrast: bool) -> float:
    return MIN_CONTRAST_HIGH if high_contrast else MIN_CONTRAST
