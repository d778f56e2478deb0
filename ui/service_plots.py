"""The service menu's "Last 30 days" page as plain data: four bar plots (sessions/day,
kWh/day, revenue/day, faults/day) from the daemon's `service_report_daily` reply. No
Kivy; ui/service_view.py calls in here and ui/app.py copies the result onto the plot
widgets (ui/bar_plot.py) and labels.

Provides `PLOTS` (the four plots, in their order on screen), `PlotView` (one plot: its
bars' values in the plot's unit, the max value and the date labels as shown),
`plots_view(reply, language, error)` -> (texts by widget id, the four PlotViews) and
`DATE_STEP_DAYS` (a date under every 7th bar, the last day always).

Figures shown are recomputable from each other: each plot's "Total 30 days" is the sum
of its bars' values (kWh: the day's Wh / 1000, summed exactly, then rounded to 0.1;
revenue: the day's gross, summed, in the currency's minor unit); "max" is the tallest
bar's value, the bar heights are value / max of the plot's height. The spoken summary
(`svc_plots_summary`, also on screen) says the four totals. On failure: a reply that is
missing or odd shows zero bars and says so; never an exception.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from terminal.kernel.formatting import format_amount
from terminal.kernel.locales import get_locale
from terminal.kernel.money import round_half_up
from ui.i18n import tr

PLOTS = ("sessions", "energy", "revenue", "faults")
DATE_STEP_DAYS = 7
DEFAULT_DAYS = 30
KWH_PLACES = 1


@dataclass(frozen=True)
class PlotView:
    kind: str                                 # one of PLOTS
    values: tuple[float, ...] = ()            # the bars, oldest day first (plot's unit)
    max_text: str = ""                        # "max 45.2" (the tallest bar's value)
    dates: tuple[tuple[int, str], ...] = ()   # (bar index, "4/11") under the bars
    alert: bool = False                       # drawn in the alert colour (faults)


def plot_widgets() -> tuple[str, ...]:
    """The ids of the page's labels (texts of the view)."""
    return ("svc_plots_summary", *(f"svc_plot_{kind}_{part}" for kind in PLOTS
                                   for part in ("title", "total")))


def _dec(value: Any) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return Decimal(0)
    return number if number.is_finite() else Decimal(0)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 \
        else 0


def _rows(reply: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    rows = (reply or {}).get("rows")
    return [row for row in rows if isinstance(row, Mapping)] if isinstance(rows, list) else []


class _Figures:
    """The reply's columns in the plots' units, and their words in one language."""

    def __init__(self, reply: Mapping[str, Any] | None, language: str) -> None:
        self.language = language
        self.locale = get_locale(language)
        rows = _rows(reply)
        currency = (reply or {}).get("currency")
        self.currency = currency if isinstance(currency, str) else ""
        self.days = len(rows) or DEFAULT_DAYS
        self.dates = [str(row.get("date", "")) for row in rows]
        self.sessions = [Decimal(_count(row.get("sessions"))) for row in rows]
        self.kwh = [_dec(row.get("energy_wh")) / 1000 for row in rows]
        self.gross = [_dec(row.get("gross")) for row in rows]
        self.faults = [Decimal(_count(row.get("faults"))) for row in rows]

    def column(self, kind: str) -> list[Decimal]:
        return {"sessions": self.sessions, "energy": self.kwh, "revenue": self.gross,
                "faults": self.faults}[kind]

    def figure(self, kind: str, value: Decimal) -> str:
        """A value of plot `kind` as printed: "42", "512.3 kWh", "180.20 EUR"."""
        if kind == "energy":
            return f"{self.locale.number(round_half_up(value, KWH_PLACES), KWH_PLACES)} kWh"
        if kind == "revenue":
            if self.currency:
                return format_amount(value, self.currency, self.language)
            return self.locale.number(round_half_up(value, 2), 2)
        return str(int(value))

    def axis(self, kind: str, value: Decimal) -> str:
        """The max value beside the axis, without the unit (the title has it)."""
        if kind == "energy":
            return self.locale.number(round_half_up(value, KWH_PLACES), KWH_PLACES)
        if kind == "revenue":
            return self.locale.number(round_half_up(value, 2), 2)
        return str(int(value))

    def date_label(self, text: str) -> str:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return ""
        return tr("plot_date", self.language, day=day.day, month=day.month)


def date_marks(dates: Sequence[str]) -> list[int]:
    """The bars that get a date: every DATE_STEP_DAYS-th counted back from the last
    day (the newest is always labelled)."""
    last = len(dates) - 1
    return sorted(index for index in range(last, -1, -DATE_STEP_DAYS))


def plots_view(reply: Mapping[str, Any] | None, language: str, error: str | None = None
               ) -> tuple[dict[str, str], tuple[PlotView, ...]]:
    """(texts, the four plots) of the page; `reply` None: not loaded yet."""
    figures = _Figures(reply, language)
    days = figures.days
    texts: dict[str, str] = {}
    plots: list[PlotView] = []
    marks = date_marks(figures.dates)
    dates = tuple((index, figures.date_label(figures.dates[index])) for index in marks)
    for kind in PLOTS:
        column = figures.column(kind)
        total = sum(column, Decimal(0))
        top = max(column, default=Decimal(0))
        texts[f"svc_plot_{kind}_title"] = tr(f"plot_{kind}_title", language,
                                             currency=figures.currency or "-")
        texts[f"svc_plot_{kind}_total"] = tr("plot_total", language, days=days,
                                             total=figures.figure(kind, total))
        plots.append(PlotView(kind, tuple(float(value) for value in column),
                              tr("plot_max", language, value=figures.axis(kind, top)),
                              dates, alert=kind == "faults"))
    sums = {kind: sum(figures.column(kind), Decimal(0)) for kind in PLOTS}
    if error is not None:
        summary = tr("plot_failed", language, error=error)
    elif reply is None:
        summary = tr("svc_loading", language)
    elif not sums["sessions"] and not sums["faults"]:
        summary = tr("plot_empty", language, days=days)
    else:
        summary = tr("plot_summary", language, days=days, sessions=int(sums["sessions"]),
                     energy=figures.figure("energy", sums["energy"]),
                     revenue=figures.figure("revenue", sums["revenue"]),
                     faults=int(sums["faults"]))
    texts["svc_plots_summary"] = summary
    return texts, tuple(plots)
