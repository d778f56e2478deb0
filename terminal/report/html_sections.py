"""The HTML report's later sections (html.py assembles the page): utilisation by hour of
the week (a 7 x 24 heat map), the daily series (four bar charts), failures by kind,
tap-to-decision times, availability and its outages, irregularities.

Provides `utilisation_section`, `daily_section`, `failures_section`, `tap_section`,
`availability_section`, `irregularities_section`: each takes the report dict (schema
"evterm.report/1") and returns one `<section>`, with its figures in a table beside each
chart and a sentence instead of an empty chart when there is nothing to show.
"""

from __future__ import annotations

from datetime import date, tzinfo
from decimal import Decimal
from html import escape
from typing import Any

from terminal.report.facts import ReportError
from terminal.report.html_parts import (
    DASH,
    amount,
    count,
    dec,
    details,
    field,
    fixed,
    items,
    kwh,
    moment,
    num,
    para,
    section,
    table,
    unit,
    when,
)
from terminal.report.svg import COLOURS, Bar, Cell, bar_chart, hbar_chart, heat_map

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HEAT_LEGEND = ("0 %", "up to 20 %", "20-40 %", "40-60 %", "60-80 %", "over 80 %")
FAILURES = {"meter_fault": "Meter faults", "declined_card": "Declined cards",
            "charger_fault": "Charger faults", "power_loss": "Power losses",
            "aborted_start": "Aborted starts"}
IRREGULARITIES = {
    "energy_without_capture": "Energy but no capture",
    "capture_differs_from_receipt": "Capture differs from receipt",
    "refund_over_threshold": "Refund over threshold",
    "meter_counter_jump": "Meter counter jump",
    "long_idle": "Unusually long idle",
    "repeated_declines": "Repeated declines of one token",
}
_IRREGULAR_KEYS = {"kind", "at", "session_id", "detail"}


def heat_bin(percent: Decimal) -> int:
    """The heat map's bin of an occupancy: 0 for none, then 20-point steps up to 5."""
    if percent <= 0:
        return 0
    for index, upper in enumerate((20, 40, 60, 80), start=1):
        if percent <= upper:
            return index
    return 5


def utilisation_section(report: dict[str, Any]) -> str:
    rows = items(field(report, "utilisation_by_hour_of_week", "report"),
                 "utilisation_by_hour_of_week")
    title = "Occupancy by hour of the week"
    if not rows:
        return section("utilisation", title, para("No utilisation figures for this period.",
                                                  "note"))
    grid: dict[tuple[int, int], tuple[Decimal, int, float, float | None]] = {}
    for i, row in enumerate(rows):
        where = f"utilisation_by_hour_of_week[{i}]"
        weekday = count(field(row, "weekday", where), where + ".weekday")
        hour = count(field(row, "hour", where), where + ".hour")
        if weekday > 6 or hour > 23:
            raise ReportError(f"report: {where} has weekday {weekday}, hour {hour}")
        percent = dec(field(row, "occupancy_percent", where), where + ".occupancy_percent")
        started = count(field(row, "sessions_started", where), where + ".sessions_started")
        occupied = num(field(row, "occupied_s", where), where + ".occupied_s") or 0.0
        slot = num(row.get("slot_s"), where + ".slot_s")  # the hour's time in the period
        grid[(weekday, hour)] = (percent, started, occupied, slot)
    if all(p == 0 and started == 0 for p, started, _, _ in grid.values()):
        return section("utilisation", title, para("No sessions in this period.", "note"))
    cells, printed = [], []
    for weekday, day in enumerate(DAYS):
        line = []
        for hour in range(24):
            percent, started, occupied, slot = grid.get((weekday, hour),
                                                         (Decimal(0), 0, 0.0, None))
            span = f"{day} {hour:02d}:00-{hour + 1:02d}:00"
            line.append(Cell(heat_bin(percent), str(percent),
                             f"{span}: {percent} % occupied, {started} sessions started"))
            printed.append([span, str(started), f"{occupied:.1f}",
                            DASH if slot is None else f"{slot:.1f}", str(percent)])
        cells.append(line)
    chart = heat_map("utilisation", title,
                     "Seven rows Monday to Sunday, 24 columns for the hours in local time; "
                     "each cell shows the percent of that hour the connector was occupied.",
                     DAYS, [f"{h:02d}" for h in range(24)], cells, HEAT_LEGEND)
    figures = details("Figures of each hour (168 rows)",
                      table("Occupancy by hour of the week, local time",
                            ["hour of the week", "sessions started", "occupied (s)",
                             "this hour in the period (s)", "occupied (%)"], printed))
    note = para("Each cell: the percent of that hour of the week (local time, all weeks of "
                "the period together) the connector was occupied, i.e. occupied seconds / "
                "the seconds of that hour in the period; the darker, the busier.", "note")
    return section("utilisation", title, chart + note + figures)


def bucket_size(days: int) -> str:
    """How the daily series is drawn: a bar per day up to a quarter, per ISO week up to
    two years, else per month (a bar stays at least a few pixels wide)."""
    if days <= 92:
        return "day"
    return "week" if days <= 731 else "month"


def _bucket(day: date, size: str) -> tuple[str, str]:
    """(the bucket's name in the table, its short label on the axis)."""
    if size == "day":
        return day.isoformat(), day.strftime("%m-%d")
    if size == "week":
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}", f"W{week:02d}"
    return day.strftime("%Y-%m"), day.strftime("%Y-%m")


def daily_section(report: dict[str, Any], currency: str) -> str:
    title = "Day by day"
    if "daily" not in report:
        return section("daily", title, para("This report has no day-by-day figures.",
                                            "note"))
    rows = items(report["daily"], "daily")
    if not rows:
        return section("daily", title, para("No sessions in this period.", "note"))
    size = bucket_size(len(rows))
    buckets: dict[str, list[Any]] = {}  # name -> [label, sessions, energy_wh, gross, faults]
    for i, row in enumerate(rows):
        where = f"daily[{i}]"
        text = field(row, "date", where)
        try:
            day = date.fromisoformat(str(text))
        except ValueError:
            raise ReportError(f"report: {where}.date is {text!r}, not a date") from None
        name, label = _bucket(day, size)
        figures = buckets.setdefault(name, [label, 0, Decimal(0), Decimal(0), 0])
        figures[1] += count(field(row, "sessions", where), where + ".sessions")
        figures[2] += dec(field(row, "energy_wh", where), where + ".energy_wh")
        figures[3] += dec(field(row, "gross", where), where + ".gross")
        figures[4] += count(field(row, "faults", where), where + ".faults")
    if all(f[1] == 0 and f[2] == 0 and f[3] == 0 and f[4] == 0 for f in buckets.values()):
        return section("daily", title, para("No sessions in this period.", "note"))
    series: list[list[Bar]] = [[], [], [], []]
    printed, totals = [], [0, Decimal(0), Decimal(0), 0]
    for name, (label, n, wh, gross, faults) in buckets.items():
        series[0].append(Bar(label, Decimal(n), f"{n} sessions"))
        series[1].append(Bar(label, wh / 1000, f"{kwh(wh)} kWh"))
        series[2].append(Bar(label, gross, amount(gross, currency)))
        series[3].append(Bar(label, Decimal(faults), f"{faults} faults"))
        printed.append([name, str(n), kwh(wh), str(gross), str(faults)])
        totals = [totals[0] + n, totals[1] + wh, totals[2] + gross, totals[3] + faults]
    span = f"{rows[0]['date']} to {rows[-1]['date']}"
    charts = [
        ("daily_sessions", f"Sessions per {size}", "blue"),
        ("daily_energy", f"Energy per {size} (kWh)", "green"),
        ("daily_revenue", unit(f"Revenue per {size} (gross)", currency), "orange"),
        ("daily_faults", f"Faults per {size}", "vermillion"),
    ]
    blocks = []
    for (chart_id, chart_title, colour), bars in zip(charts, series, strict=True):
        desc = (f"One bar per {size}, {span}; "
                + "; ".join(f"{name}: {b.shown}" for name, b in zip(buckets, bars,
                                                                    strict=True)))
        svg = bar_chart(chart_id, chart_title, desc, bars, colour=COLOURS[colour])
        blocks.append(f"<figure><h3>{escape(chart_title)}</h3>{svg}</figure>")
    figures = details(
        f"Figures of each {size} ({len(printed)} rows)",
        table(f"Per {size} (local dates)", [size, "sessions", "energy (kWh)",
                                             unit("gross", currency), "faults"], printed,
              total=["Total (sum of the rows)", str(totals[0]), kwh(totals[1]),
                     str(totals[2]), str(totals[3])]))
    return section("daily", title,
                   f'<p class="meta">{escape(span)}, local dates, one bar per {size}.</p>'
                   f'<div class="grid">{"".join(blocks)}</div>{figures}')


def failures_section(report: dict[str, Any]) -> str:
    rows = items(field(report, "failures", "report"), "failures")
    title = "Failures by kind"
    printed, bars, total = [], [], 0
    for i, row in enumerate(rows):
        where = f"failures[{i}]"
        kind = str(field(row, "kind", where))
        n = count(field(row, "count", where), where + ".count")
        label = FAILURES.get(kind, kind)
        bars.append(Bar(label, Decimal(n), str(n)))
        printed.append([label, str(n)])
        total += n
    figures = table("Failures by kind", ["kind", "count"], printed,
                    total=["Total (sum of the rows)", str(total)])
    if total == 0:
        return section("failures", title, para("No failures in this period.", "note")
                       + figures)
    chart = hbar_chart("failures", title, "; ".join(f"{b.label}: {b.shown}" for b in bars),
                       bars, colour=COLOURS["purple"])
    return section("failures", title,
                   f'<div class="grid"><div>{chart}</div><div>{figures}</div></div>')


def tap_section(report: dict[str, Any]) -> str:
    taps = field(report, "tap_to_decision_ms", "report")
    title = "From tap to decision"
    n = count(field(taps, "count", "tap_to_decision_ms"), "tap_to_decision_ms.count")
    if n == 0:
        return section("taps", title, para("No taps in this period.", "note"))
    stats = [("mean", "average"), ("p50", "median (p50)"), ("p90", "p90"), ("p95", "p95"),
             ("max", "max")]
    stats = [(key, words) for key, words in stats if key in taps]
    cells = ["Tap to decision (ms)", str(n)]
    for stat, _ in stats:
        cells.append(fixed(num(taps.get(stat), f"tap_to_decision_ms.{stat}"), 0))
    inner = table("Time from a card or RFID tap to the decision shown",
                  ["", "taps", *(words for _, words in stats)], [cells])
    return section("taps", title, inner)


def availability_section(report: dict[str, Any], zone: tzinfo) -> str:
    avail = field(report, "availability", "report")
    title = "Availability"
    period_s = num(field(avail, "period_s", "availability"), "availability.period_s") or 0.0
    available_s = num(field(avail, "available_s", "availability"),
                      "availability.available_s") or 0.0
    unavailable_s = num(field(avail, "unavailable_s", "availability"),
                        "availability.unavailable_s") or 0.0
    percent = dec(field(avail, "percent", "availability"), "availability.percent")
    rows = [["Period", fixed(period_s / 3600, 2), f"{period_s:.1f}"],
            ["Available", fixed(available_s / 3600, 2), f"{available_s:.1f}"],
            ["Not available", fixed(unavailable_s / 3600, 2), f"{unavailable_s:.1f}"]]
    inner = (f'<p class="big">{escape(str(percent))} % available</p>'
             + para("Available = the time the connector could take a vehicle (Available or "
                    "Occupied) / the period, in percent (AFIR).", "note")
             + table("Time available", ["", "hours", "seconds"], rows))
    outages = items(avail.get("outages"), "availability.outages")
    if not outages:
        return section("availability", title, inner + para("No outages in this period.",
                                                          "note"))
    printed, total_s = [], 0.0
    for i, row in enumerate(outages):
        where = f"availability.outages[{i}]"
        start, end = field(row, "from", where), field(row, "to", where)
        seconds = num(row.get("duration_s"), where + ".duration_s")
        if seconds is None and start is not None and end is not None:
            span = moment(end, where + ".to") - moment(start, where + ".from")
            seconds = span.total_seconds()
        total_s += seconds or 0.0
        printed.append([when(start, zone, where + ".from"),
                        when(end, zone, where + ".to") or "still going",
                        DASH if seconds is None else f"{seconds:.1f}",
                        str(field(row, "status", where)), str(row.get("cause") or "")])
    inner += table(f"Outages ({len(outages)})", ["from", "to", "seconds", "status", "cause"],
                   printed, numeric=(2,),
                   total=["Total (sum of the rows)", "", f"{total_s:.1f}", "", ""])
    return section("availability", title, inner)


def irregularities_section(report: dict[str, Any], zone: tzinfo) -> str:
    rows = items(field(report, "irregularities", "report"), "irregularities")
    title = "Irregularities"
    if not rows:
        return section("irregularities", title, para("No irregularities found.", "note"))
    printed = []
    for i, row in enumerate(rows):
        where = f"irregularities[{i}]"
        kind = str(field(row, "kind", where))
        extra = "; ".join(f"{key}: {_figure(value, zone, f'{where}.{key}')}"
                          for key, value in row.items() if key not in _IRREGULAR_KEYS)
        printed.append([IRREGULARITIES.get(kind, kind), when(row.get("at"), zone, where + ".at"),
                        str(row.get("session_id") or DASH), str(field(row, "detail", where)),
                        extra])
    inner = table(f"Irregularities to look into ({len(rows)})",
                  ["kind", "when", "session", "what happened", "figures"], printed,
                  numeric=(), css="wide")
    return section("irregularities", title, f'<div class="scroll">{inner}</div>')


def _figure(value: Any, zone: tzinfo, where: str) -> str:
    """An irregularity's own figure as text; a time (a key ending in _at) in local time."""
    if isinstance(value, list):
        return ", ".join(_figure(v, zone, where) for v in value)
    if value is None:
        return DASH
    return when(value, zone, where) if where.endswith("_at") else str(value)
