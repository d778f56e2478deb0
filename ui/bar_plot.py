"""A bar plot drawn with Kivy canvas instructions: the service menu's "30 days" plots.

Provides `BarPlot` (registered with the Factory for ui/evterm.kv): `values` (one bar per
value, oldest first; the plot's unit), `max_text` (the tallest bar's value as printed,
beside the top of the value axis), `dates` ([(bar index, text)] under the bars), the
colours (`bar_colour`, `axis_colour`, `text_colour`) and `font_size`/`font_name`.

Drawn: the value axis (a line at the left of the bars, "max ..." at its top, "0" at its
bottom), the base line, a thin line at the max level and one Rectangle per bar whose
height is value / max of the bars' area (no bar for 0; all zeros: no bars, "max 0").
The labels are child Labels sized to their text, inside the widget. `bar_rects()` gives
the bars drawn (widget coordinates) and `layout_facts()` them in window coordinates with
the values, for the automation socket's layout dump (ui/control.py) and the UI tests.
"""

from __future__ import annotations

from typing import Any

from kivy.clock import Clock
from kivy.factory import Factory
from kivy.graphics import Color, Line, Rectangle
from kivy.properties import ColorProperty, ListProperty, NumericProperty, StringProperty
from kivy.uix.label import Label
from kivy.uix.widget import Widget

BAR_FILL = 0.7  # of each day's slot; the rest is the gap between bars
GAP_FONT = 0.3  # space between the axis labels and the bars, in font sizes


class BarPlot(Widget):
    values = ListProperty([])
    max_text = StringProperty("")
    dates = ListProperty([])
    bar_colour = ColorProperty((0.2, 0.8, 0.5, 1))
    axis_colour = ColorProperty((0.8, 0.8, 0.8, 1))
    text_colour = ColorProperty((0.8, 0.8, 0.8, 1))
    font_size = NumericProperty(12)
    font_name = StringProperty("Roboto")

    def __init__(self, **kwargs: Any) -> None:
        self._max_label = Label(size_hint=(None, None))
        self._zero_label = Label(size_hint=(None, None), text="0")
        self._date_labels: list[Label] = []
        self._bars: list[tuple[float, float, float, float]] = []
        self._redraw = Clock.create_trigger(self.redraw, -1)
        super().__init__(**kwargs)
        self.add_widget(self._max_label)
        self.add_widget(self._zero_label)
        self.bind(pos=self._redraw, size=self._redraw, values=self._redraw,
                  max_text=self._redraw, dates=self._redraw, bar_colour=self._redraw,
                  axis_colour=self._redraw, text_colour=self._redraw,
                  font_size=self._redraw, font_name=self._redraw)
        self._redraw()

    # ---- drawing ------------------------------------------------------------------------

    def _label(self, label: Label, text: str) -> Label:
        label.text = text
        label.font_size = self.font_size
        label.font_name = self.font_name
        label.color = self.text_colour
        label.texture_update()
        label.size = label.texture_size
        return label

    def _dates(self) -> list[tuple[int, str]]:
        pairs = []
        for item in self.dates:
            if isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], int):
                pairs.append((item[0], str(item[1])))
        while len(self._date_labels) < len(pairs):
            label = Label(size_hint=(None, None))
            self._date_labels.append(label)
            self.add_widget(label)
        while len(self._date_labels) > len(pairs):
            self.remove_widget(self._date_labels.pop())
        return pairs

    def redraw(self, *_args: Any) -> None:
        top_label = self._label(self._max_label, self.max_text)
        zero = self._label(self._zero_label, "0")
        pairs = self._dates()
        labels = [self._label(label, text) for label, (_i, text) in zip(self._date_labels,
                                                                       pairs, strict=True)]
        gap = self.font_size * GAP_FONT
        date_h = max((label.height for label in labels), default=0.0)
        axis_x = self.x + max(top_label.width, zero.width) + gap
        left, right = axis_x + gap, self.right
        base = self.y + date_h + (gap if labels else 0.0)
        top = self.top - top_label.height / 2
        area_h = max(0.0, top - base)
        values = [max(0.0, float(v)) for v in self.values]
        highest = max(values, default=0.0)
        slot = (right - left) / len(values) if values else 0.0
        self._bars = []
        for index, value in enumerate(values):
            if value <= 0 or highest <= 0:
                continue
            height = area_h * value / highest
            bar_w = slot * BAR_FILL
            self._bars.append((left + index * slot + (slot - bar_w) / 2, base, bar_w, height))
        top_label.pos = (self.x, top - top_label.height / 2)
        zero.pos = (axis_x - gap - zero.width, base - zero.height / 2)
        if zero.y < self.y:  # no dates: "0" stays inside the plot
            zero.y = self.y
        for label, (index, _text) in zip(labels, pairs, strict=True):
            centre = left + (index + 0.5) * slot
            label.pos = (min(max(centre - label.width / 2, left), self.right - label.width),
                         self.y)
        self.canvas.before.clear()
        with self.canvas.before:
            Color(rgba=self.axis_colour)
            Line(points=[axis_x, base, axis_x, top], width=1.0)
            Line(points=[axis_x, base, right, base], width=1.0)
            Color(rgba=(*self.axis_colour[:3], 0.35))
            Line(points=[axis_x, top, right, top], width=1.0)
            Color(rgba=self.bar_colour)
            for x, y, w, h in self._bars:
                Rectangle(pos=(x, y), size=(w, h))

    # ---- what tests read ----------------------------------------------------------------

    def bar_rects(self) -> list[tuple[float, float, float, float]]:
        """The bars as drawn: (x, y, width, height) in widget coordinates."""
        return list(self._bars)

    def layout_facts(self) -> dict[str, Any]:
        """The bars in window coordinates, the values and the bar colour."""
        bars = []
        for x, y, w, h in self._bars:
            wx, wy = self.to_window(x, y)
            bars.append([round(wx, 1), round(wy, 1), round(w, 1), round(h, 1)])
        return {"bars": bars, "values": [float(v) for v in self.values],
                "bar_colour": [round(float(c), 4) for c in self.bar_colour]}


Factory.register("BarPlot", cls=BarPlot)
