"""The report as an operator's printout: `render_text(report) -> str`.

Sections in the order of the report dict; columns aligned (numbers right, words left).
Every printed figure can be recomputed from those beside it: a VAT rate's net + VAT =
gross, the total row is the sum of the rows above it, a share in percent is the count
over the total printed beside it, an occupancy is occupied over slot hours, availability
is available over period seconds. Times are shown in the station's time zone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.kernel.formatting import station_zone
from terminal.report.stats import percent

FAILURE_NAMES = {"meter_fault": "meter faults", "charger_fault": "charger faults",
                 "power_loss": "power losses", "declined_card": "declined cards",
                 "aborted_start": "aborted starts"}
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def table(header: Sequence[str], rows: Sequence[Sequence[Any]],
          total: Sequence[Any] | None = None) -> list[str]:
    """Aligned lines: the first column left, the others right; a rule before `total`."""
    cells = [[_cell(v) for v in row] for row in [header, *rows, *([total] if total else [])]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    out = [line(cells[0])]
    out += [line(row) for row in cells[1:len(rows) + 1]]
    if total:
        out.append("-" * len(line(cells[-1])))
        out.append(line(cells[-1]))
    return ["  " + text for text in out]


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def render_text(report: dict[str, Any]) -> str:
    zone = station_zone(report["period"]["timezone"])
    cur = report["currency"]
    t = report["totals"]
    out = [f"evterm report, {', '.join(report['station_ids'])}",
           f"period {_local(report['period']['since'], zone)} to "
           f"{_local(report['period']['until'], zone)} ({report['period']['timezone']}); "
           f"generated {_local(report['generated_at'], zone)}", ""]
    out += ["Sessions and energy"]
    out += table(("", "count"), [("sessions", t["sessions"]),
                                 ("with energy", t["sessions_with_energy"])])
    out += [f"  energy {t['energy_kwh']} kWh ({t['energy_wh']} Wh)", ""]
    out += [f"Revenue by VAT rate ({cur})"]
    out += table(("VAT %", "sessions", "net", "VAT", "gross"),
                 [(_rate(r["percent"]), r["sessions"], r["net"], r["vat"], r["gross"])
                  for r in report["by_vat_rate"]],
                 ("total", "", t["net"], t["vat"], t["gross"]))
    out += table(("", cur), [("gross", t["gross"]), ("less refunds", t["refunds"]),
                             ("gross after refunds", t["gross_after_refunds"])])
    out += ["", "Payment methods"]
    mix = report["payment_mix"]
    out += table(("method", "sessions", "share %", "energy Wh", f"gross {cur}"),
                 [(m["method"], m["sessions"], m["share_percent"], m["energy_wh"], m["gross"])
                  for m in mix],
                 ("total", t["sessions"], "", t["energy_wh"], t["gross"]))
    out += ["", "Distributions (nearest-rank percentiles)"]
    d = report["distributions"]
    tap = report["tap_to_decision_ms"]
    out += table(("", "count", "mean", "p50", "p90", "p95", "max"),
                 [(name, v["count"], v["mean"], v["p50"], v.get("p90"), v["p95"], v["max"])
                  for name, v in (("session length s", d["duration_s"]),
                                  ("energy Wh", d["energy_wh"]),
                                  ("idle after charging s", d["idle_s"]),
                                  ("tap to decision ms", tap))])
    out += ["", "Idle fees and refunds"]
    out += table(("", "count", cur),
                 [("idle fees", report["idle_fees"]["sessions"], report["idle_fees"]["gross"]),
                  ("refunds", report["refunds"]["count"], report["refunds"]["total"])])
    out += ["", "Failures"]
    failures = report["failures"]
    out += table(("kind", "count"),
                 [(FAILURE_NAMES.get(f["kind"], f["kind"]), f["count"]) for f in failures],
                 ("total", sum(f["count"] for f in failures)))
    if report.get("daily"):
        out += ["", *_daily(report["daily"], cur)]
    out += ["", *_availability(report["availability"], zone)]
    out += ["", *_utilisation(report["utilisation_by_hour_of_week"])]
    out += ["", *_irregularities(report["irregularities"], zone)]
    return "\n".join(out) + "\n"


def _daily(days: list[dict[str, Any]], cur: str) -> list[str]:
    """Per local day (once the report has its "daily" rows), with their sums."""
    out = ["Per day"]
    out += table(("date", "sessions", "energy Wh", f"gross {cur}", "faults"),
                 [(d["date"], d["sessions"], d["energy_wh"], d["gross"], d["faults"])
                  for d in days],
                 ("total", sum(d["sessions"] for d in days),
                  format(sum(Decimal(d["energy_wh"]) for d in days), "f"),
                  format(sum(Decimal(d["gross"]) for d in days), "f"),
                  sum(d["faults"] for d in days)))
    return out


def _rate(percent: str | None) -> str:
    return "no VAT" if percent is None else percent


def _availability(a: dict[str, Any], zone: Any) -> list[str]:
    out = ["Availability (available s / period s)"]
    out += table(("", "s"), [("period", a["period_s"]), ("unavailable", a["unavailable_s"]),
                             ("available", a["available_s"])])
    out.append(f"  availability {a['percent']} %")
    if a["outages"]:
        out += table(("outage from", "to", "status", "cause", "s"),
                     [(_local(o["from"], zone), _local(o["to"], zone), o["status"],
                       o["cause"], o.get("duration_s")) for o in a["outages"]])
    return out


def _utilisation(rows: list[dict[str, Any]]) -> list[str]:
    """Per weekday: sessions started and occupancy of the day's slots; the hours in full
    are in the CSV and JSON."""
    out = ["Utilisation by weekday, local time (occupied h / hours in the period)"]
    lines = []
    for day, name in enumerate(WEEKDAYS):
        day_rows = [r for r in rows if r["weekday"] == day]
        started = sum(r["sessions_started"] for r in day_rows)
        occupied_h = sum(r["occupied_s"] for r in day_rows) / 3600
        slot_h = sum(r["slot_s"] for r in day_rows) / 3600
        share = percent(Decimal(f"{occupied_h:.1f}"), Decimal(f"{slot_h:.1f}"))
        busiest = max(day_rows, key=lambda r: r["sessions_started"])
        lines.append((name, started, f"{occupied_h:.1f}", f"{slot_h:.1f}", share,
                      f"{busiest['hour']:02d}:00" if busiest["sessions_started"] else "-"))
    out += table(("day", "started", "occupied h", "hours", "occupancy %", "busiest hour"),
                 lines)
    return out


def _irregularities(items: list[dict[str, Any]], zone: Any) -> list[str]:
    if not items:
        return ["Irregularities: none"]
    out = [f"Irregularities ({len(items)})"]
    for item in items:
        session = f" session {item['session_id']}" if item.get("session_id") else ""
        out.append(f"  {_local(item['at'], zone)} {item['kind']}{session}")
        out.append(f"    {item['detail']}")
    return out


def _local(text: str, zone: Any) -> str:
    return datetime.fromisoformat(text).astimezone(zone).strftime("%Y-%m-%d %H:%M")
