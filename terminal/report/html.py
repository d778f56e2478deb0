"""The report as ONE self-contained HTML file (docs/reports.md, "The HTML report").

Provides `render_html(report) -> str`: the report dict (schema "evterm.report/1", built by
terminal/report/build.py) as a page with inline CSS and inline SVG charts (svg.py), no
script, font, image or link to anything outside: it opens offline in any browser and
prints. Sections follow the report: header, totals, revenue per VAT rate, payment mix,
distributions, utilisation by hour of week (heat map), daily series, idle fees and
refunds, failures by kind, tap-to-decision, availability, irregularities (the later ones
in html_sections.py).

Every figure printed can be recomputed from the figures beside it: per VAT rate net + VAT
= gross and the total row is the sum of the rows above it (summed here, in Decimal);
shares are sessions / the total printed below them; every chart has its figures written
beside it or in a table next to it. Money and energy stay Decimal (strings in the dict,
Decimal here); only durations and percentiles are floats.

Bad input (a missing section, a field that is no number) raises `ReportError` naming the
field; the CLI prints it without a traceback.
"""

from __future__ import annotations

from decimal import Decimal
from html import escape
from typing import Any

from terminal.kernel.formatting import station_zone
from terminal.report.facts import ReportError
from terminal.report.html_parts import (
    DASH,
    amount,
    count,
    dec,
    field,
    fixed,
    items,
    kwh,
    num,
    para,
    section,
    table,
    unit,
    when,
)
from terminal.report.html_sections import (
    availability_section,
    daily_section,
    failures_section,
    irregularities_section,
    tap_section,
    utilisation_section,
)
from terminal.report.svg import COLOURS, Bar, hbar_chart

SCHEMA = "evterm.report/1"
NO_SESSIONS = "No sessions in this period."
METHODS = {"card": "Bank card", "rfid": "RFID card", "app": "App", "free": "Free",
           "zvt": "Payment terminal (ZVT)"}

CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
  color: #1a1a1a; background: #ffffff; line-height: 1.4; }
main { max-width: 1240px; margin: 0 auto; padding: 16px 20px 40px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.2em; margin: 0 0 8px; border-bottom: 2px solid #0072B2; padding-bottom: 2px; }
h3 { font-size: 1em; margin: 8px 0 4px; }
section { margin: 18px 0; break-inside: avoid; }
.meta { margin: 0; color: #333; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(590px, 100%), 1fr));
  gap: 8px 24px; align-items: start; }
table { border-collapse: collapse; margin: 4px 0 8px; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 2px 0 4px; }
th, td { border-bottom: 1px solid #d0d0d0; padding: 3px 10px; text-align: left; }
thead th { border-bottom: 2px solid #1a1a1a; }
tfoot th, tfoot td { border-top: 2px solid #1a1a1a; font-weight: 700; }
.n { text-align: right; }
.big { font-size: 2em; font-weight: 700; margin: 0; }
.note { color: #333; font-style: italic; }
.warn { color: #8a2a00; font-weight: 700; }
svg.chart { display: block; max-width: 100%; height: auto; }
details summary { cursor: pointer; color: #004b75; margin: 2px 0 6px; }
.scroll { overflow-x: auto; }
@media print { main { max-width: none; } }
"""


def render_html(report: dict[str, Any]) -> str:
    """The whole page for one report dict; ReportError for a dict not in the schema."""
    if not isinstance(report, dict):
        raise ReportError("report: not an object")
    schema = report.get("schema")
    if schema != SCHEMA:
        raise ReportError(f"report: schema is {schema!r}, expected {SCHEMA!r}")
    period = field(report, "period", "report")
    zone_name = field(period, "timezone", "period")
    zone = station_zone(zone_name)
    currency = str(field(report, "currency", "report"))
    totals = field(report, "totals", "report")
    has_sessions = count(field(totals, "sessions", "totals"), "totals.sessions") > 0
    stations = [str(s) for s in items(field(report, "station_ids", "report"), "station_ids")]
    parts = [
        _header(report, stations, zone, str(zone_name)),
        _totals(totals, currency, has_sessions),
        _vat(report, currency, has_sessions),
        _payment_mix(report, currency, has_sessions),
        _distributions(report, has_sessions),
        utilisation_section(report),
        daily_section(report, currency),
        _idle_and_refunds(report, currency),
        failures_section(report),
        tap_section(report),
        availability_section(report, zone),
        irregularities_section(report, zone),
    ]
    title = f"Charging report {', '.join(stations) or DASH}"
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(parts)
        + "\n</main>\n</body>\n</html>\n"
    )


def _header(report: dict[str, Any], stations: list[str], zone: Any, zone_name: str) -> str:
    period = report["period"]
    since = field(period, "since", "period")
    until = field(period, "until", "period")
    generated = field(report, "generated_at", "report")
    lines = [
        "<header>",
        "<h1>Charging report</h1>",
        f'<p class="meta">Station{"s" if len(stations) != 1 else ""}: '
        f"<strong>{escape(', '.join(stations) or DASH)}</strong></p>",
        f'<p class="meta">Period: {escape(when(since, zone, "period.since"))} to '
        f'{escape(when(until, zone, "period.until"))} (time zone {escape(zone_name)}; '
        f"UTC {escape(str(since))} to {escape(str(until))}); the end is not included.</p>",
        f'<p class="meta">Generated {escape(when(generated, zone, "generated_at"))}. '
        "Times below are local time with their UTC offset.</p>",
        "</header>",
    ]
    return "\n".join(lines)


def _totals(totals: dict[str, Any], currency: str, has_sessions: bool) -> str:
    def money(key: str) -> str:
        return amount(dec(field(totals, key, "totals"), "totals." + key), currency)

    energy_wh = dec(field(totals, "energy_wh", "totals"), "totals.energy_wh")
    rows = [
        ["Sessions", str(count(totals["sessions"], "totals.sessions"))],
        ["Sessions with energy", str(count(field(totals, "sessions_with_energy", "totals"),
                                           "totals.sessions_with_energy"))],
        ["Energy", f"{kwh(energy_wh)} kWh ({energy_wh} Wh)"],
        ["Net", money("net")],
        ["VAT", money("vat")],
        ["Without VAT", money("no_vat")],
        ["Gross (net + VAT + without VAT)", money("gross")],
        ["Refunds", money("refunds")],
        ["Gross after refunds (gross - refunds)", money("gross_after_refunds")],
    ]
    inner = table("Totals of the period", ["", "figure"], rows)
    if not has_sessions:
        inner = para(NO_SESSIONS, "note") + inner
    return section("totals", "Totals", inner)


def _vat(report: dict[str, Any], currency: str, has_sessions: bool) -> str:
    rows = items(field(report, "by_vat_rate", "report"), "by_vat_rate")
    if not rows:
        return section("vat", "Revenue per VAT rate", para(NO_SESSIONS, "note"))
    printed, net_sum, vat_sum, gross_sum = [], Decimal(0), Decimal(0), Decimal(0)
    for i, row in enumerate(rows):
        where = f"by_vat_rate[{i}]"
        percent = field(row, "percent", where)
        net = dec(field(row, "net", where), where + ".net")
        vat = dec(field(row, "vat", where), where + ".vat")
        gross = dec(field(row, "gross", where), where + ".gross")
        label = "without VAT" if percent is None else f"{dec(percent, where + '.percent')} %"
        sessions = count(field(row, "sessions", where), where + ".sessions")
        printed.append([label, str(sessions), str(net), str(vat), str(gross)])
        net_sum, vat_sum, gross_sum = net_sum + net, vat_sum + vat, gross_sum + gross
    inner = table(unit("Revenue per VAT rate", currency) + "; per row net + VAT = gross",
                  ["VAT rate", "sessions", "net", "VAT", "gross"], printed,
                  total=["Total (sum of the rows)", "", str(net_sum), str(vat_sum),
                         str(gross_sum)])
    gross_total = dec(field(report["totals"], "gross", "totals"), "totals.gross")
    if gross_sum != gross_total:
        inner += para(f"The rows add up to {amount(gross_sum, currency)}, the totals say "
                      f"{amount(gross_total, currency)}.", "warn")
    inner += para("A session whose receipt has two rates counts in both rows, so the "
                  "sessions are not added up.", "note")
    return section("vat", "Revenue per VAT rate", inner)


def _payment_mix(report: dict[str, Any], currency: str, has_sessions: bool) -> str:
    rows = items(field(report, "payment_mix", "report"), "payment_mix")
    if not rows:
        return section("payment-mix", "Payment methods", para(NO_SESSIONS, "note"))
    bars, printed = [], []
    sessions_sum, energy_sum, gross_sum = 0, Decimal(0), Decimal(0)
    for i, row in enumerate(rows):
        where = f"payment_mix[{i}]"
        method = str(field(row, "method", where))
        label = METHODS.get(method, method)
        sessions = count(field(row, "sessions", where), where + ".sessions")
        share = dec(field(row, "share_percent", where), where + ".share_percent")
        energy_wh = dec(field(row, "energy_wh", where), where + ".energy_wh")
        gross = dec(field(row, "gross", where), where + ".gross")
        bars.append(Bar(label, Decimal(sessions), f"{sessions} ({share} %)"))
        printed.append([label, str(sessions), f"{share}", kwh(energy_wh), str(gross)])
        sessions_sum += sessions
        energy_sum += energy_wh
        gross_sum += gross
    chart = hbar_chart("payment_mix", "Sessions per payment method",
                       "; ".join(f"{b.label}: {b.shown} sessions" for b in bars), bars,
                       colour=COLOURS["blue"])
    figures = table("Sessions, share, energy and revenue per payment method",
                    ["method", "sessions", "share (%)", "energy (kWh)",
                     unit("gross", currency)], printed,
                    total=["Total (sum of the rows)", str(sessions_sum), "",
                           kwh(energy_sum), str(gross_sum)])
    note = para("Share = the method's sessions / the total sessions below, in percent.",
                "note")
    return section("payment-mix", "Payment methods",
                    f'<div class="grid"><div>{chart}</div><div>{figures}{note}</div></div>')


def _distributions(report: dict[str, Any], has_sessions: bool) -> str:
    dists = field(report, "distributions", "report")
    specs = [("duration_s", "Session length (min)", 60.0, 1),
             ("energy_wh", "Energy per session (kWh)", 1000.0, 3),
             ("idle_s", "Idle after charging (min)", 60.0, 1)]
    rows = []
    for key, label, divisor, places in specs:
        dist = field(dists, key, "distributions")
        where = f"distributions.{key}"
        figures = [count(field(dist, "count", where), where + ".count")]
        cells = [label, str(figures[0])]
        for stat in ("mean", "p50", "p90", "p95", "max"):
            value = _stat(dist, stat, where)
            cells.append(fixed(None if value is None else value / divisor, places))
        rows.append(cells)
    inner = table("Per session: count, average and percentiles",
                  ["", "sessions", "average", "median (p50)", "p90", "p95", "max"], rows)
    if not has_sessions:
        inner = para(NO_SESSIONS, "note") + inner
    inner += para("p90: nine in ten sessions were at or below this figure.", "note")
    return section("distributions", "Session length and energy", inner)


def _stat(dist: dict[str, Any], stat: str, where: str) -> float | None:
    return num(dist.get(stat), f"{where}.{stat}")


def _idle_and_refunds(report: dict[str, Any], currency: str) -> str:
    idle = field(report, "idle_fees", "report")
    refunds = field(report, "refunds", "report")
    rows = [
        ["Idle fees", str(count(field(idle, "sessions", "idle_fees"), "idle_fees.sessions")),
         str(dec(field(idle, "gross", "idle_fees"), "idle_fees.gross"))],
        ["Refunds", str(count(field(refunds, "count", "refunds"), "refunds.count")),
         str(dec(field(refunds, "total", "refunds"), "refunds.total"))],
    ]
    inner = table(unit("Idle fees charged and refunds paid", currency),
                  ["", "count", unit("gross", currency)], rows)
    return section("idle-refunds", "Idle fees and refunds", inner)
