"""The fleet report ("evterm.fleet/1", terminal/report/fleet.py) as text, CSV or JSON.

Provides `render(report, fmt, table)`: `text` prints every section (each total row is
the sum of the rows printed above it, each share the count beside it over the section's
total); `csv` prints one section (`table`: stations, totals, vat, payment, availability)
with a header row, for spreadsheets; `json` the dict as it is.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

FORMATS = ("text", "csv", "json")
CSV_TABLES = {"stations": "by_station_month", "totals": "totals", "vat": "by_vat_rate",
              "payment": "payment_mix", "availability": "availability"}

_STATION_COLUMNS = ("station_id", "month", "currency", "sessions", "energy_kwh", "net",
                    "vat", "gross", "idle_fees", "refunds", "gross_after_refunds")
_SECTIONS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Per station and month", "by_station_month", _STATION_COLUMNS),
    ("Totals (sums of the rows above, per currency)", "totals",
     ("currency", "stations", "sessions", "energy_kwh", "net", "vat", "gross", "idle_fees",
      "refunds", "gross_after_refunds")),
    ("Per VAT rate (percent empty: no VAT)", "by_vat_rate",
     ("currency", "percent", "sessions", "net", "vat", "gross")),
    ("Payment mix (share = sessions / the currency's sessions)", "payment_mix",
     ("currency", "method", "sessions", "share_percent", "energy_wh", "gross")),
    ("Availability (percent = available_s / covered_s; available = Available + Occupied)",
     "availability", ("station_id", "month", "covered_s", "available_s", "faulted_s",
                      "unavailable_s", "percent")),
)


class RenderError(ValueError):
    """An unknown format or CSV table; the message names the choices."""


def render(report: dict[str, Any], fmt: str = "text", table: str = "stations") -> str:
    if fmt == "json":
        return json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    if fmt == "csv":
        if table not in CSV_TABLES:
            raise RenderError(f"table {table!r}: choose one of {', '.join(CSV_TABLES)}")
        return _csv(report[CSV_TABLES[table]])
    if fmt == "text":
        return _text(report)
    raise RenderError(f"format {fmt!r}: choose one of {', '.join(FORMATS)}")


def _csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    if rows:
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def _text(report: dict[str, Any]) -> str:
    lines = [f"Fleet report of {report['stations']} stations ({report['root']})",
             f"generated {report['generated_at']}, status until {report['until']}", ""]
    for title, key, columns in _SECTIONS:
        lines += [title, *_table(report[key], columns), ""]
    return "\n".join(lines)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> list[str]:
    if not rows:
        return ["  (none)"]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    return ["  " + fmt.format(*columns)] + ["  " + fmt.format(*r) for r in cells]


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
