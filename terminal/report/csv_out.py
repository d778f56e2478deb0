"""The report as one CSV file: `render_csv(report) -> str`.

One shape for every section, so a spreadsheet or a script reads it without knowing the
sections: `section,key,field,value`, one figure a row. `key` names the row within its
section (a VAT percent or "none", a payment method, "Mon 08" for an hour of the week,
a failure kind, an outage's or an irregularity's number), empty for single-row sections;
`field` is the JSON's name of the figure; `value` is exactly the JSON's text (money and
energy as exact decimals, times ISO-8601 UTC). The first row is the header.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HEADER = ("section", "key", "field", "value")


def render_csv(report: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows(report))
    return out.getvalue()


def rows(report: dict[str, Any]) -> Iterator[tuple[str, str, str, str]]:
    """(section, key, field, value) of every figure of the report."""
    yield ("report", "", "schema", report["schema"])
    yield ("report", "", "station_ids", " ".join(report["station_ids"]))
    yield ("report", "", "generated_at", report["generated_at"])
    yield ("report", "", "currency", report["currency"])
    yield from _flat("period", "", report["period"])
    yield from _flat("totals", "", report["totals"])
    for rate in report["by_vat_rate"]:
        key = "none" if rate["percent"] is None else rate["percent"]
        yield from _flat("by_vat_rate", key, rate, skip=("percent",))
    for method in report["payment_mix"]:
        yield from _flat("payment_mix", method["method"], method, skip=("method",))
    for name, figures in report["distributions"].items():
        yield from _flat("distributions", name, figures)
    yield from _flat("distributions", "tap_to_decision_ms", report["tap_to_decision_ms"])
    for slot in report["utilisation_by_hour_of_week"]:
        key = f"{WEEKDAYS[slot['weekday']]} {slot['hour']:02d}"
        yield from _flat("utilisation_by_hour_of_week", key, slot)
    yield from _flat("idle_fees", "", report["idle_fees"])
    yield from _flat("refunds", "", report["refunds"])
    for failure in report["failures"]:
        yield ("failures", failure["kind"], "count", str(failure["count"]))
    availability = report["availability"]
    yield from _flat("availability", "", availability, skip=("outages",))
    for n, outage in enumerate(availability["outages"], 1):
        yield from _flat("outages", str(n), outage)
    for n, item in enumerate(report["irregularities"], 1):
        yield from _flat("irregularities", str(n), item)
    for day in report.get("daily", ()):
        yield from _flat("daily", day["date"], day, skip=("date",))


def _flat(section: str, key: str, figures: dict[str, Any],
          skip: tuple[str, ...] = ()) -> Iterator[tuple[str, str, str, str]]:
    for field, value in figures.items():
        if field not in skip:
            yield (section, key, field, _text(value))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
