"""What `evterm session status` and `evterm session list` print: a short table a person
reads by default, and with `--json` the daemon's reply for machines with every time in
one format (ISO-8601 UTC with milliseconds and Z, as the local API sends them).

Provides `status_table(state)`, `sessions_table(sessions, zone)` and `machine_json(reply)`.
Times in the tables are the station's local time with its UTC offset, as the receipts
print them (`[station] timezone`, which the status snapshot carries); energy in kWh with
3 decimals, amounts with their currency. A missing value shows as `-`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from terminal.kernel.clock import iso_utc, parse_time
from terminal.kernel.formatting import (
    format_amount,
    format_duration,
    format_energy,
    local_time,
    station_zone,
)

ISO_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def machine_json(reply: Mapping[str, Any]) -> str:
    """The reply without `ok`, indented, keys sorted, every time as ISO UTC with Z."""
    body = {key: value for key, value in reply.items() if key != "ok"}
    return json.dumps(_one_time_format(body), indent=2, sort_keys=True)


def _one_time_format(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _one_time_format(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_one_time_format(item) for item in value]
    if isinstance(value, str) and ISO_MOMENT.match(value):
        moment = parse_time(value, naive_as_utc=True)
        return iso_utc(moment) if moment is not None else value
    return value


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _when(value: Any, zone: tzinfo) -> str:
    moment = parse_time(value, naive_as_utc=True)
    return "-" if moment is None else local_time(moment, zone)


def _energy(value: Any) -> str:
    wh = _decimal(value)
    return "-" if wh is None else format_energy(wh)


def _yes(value: Any) -> str:
    return "-" if value is None else ("yes" if value else "no")


def status_table(state: Mapping[str, Any]) -> str:
    """The daemon's state in a few labelled lines."""
    zone = station_zone(state.get("timezone"))
    rows: list[tuple[str, str]] = [
        ("station", f"{state.get('station_id') or '-'}"
                    + (f" ({state['operator']})" if state.get("operator") else "")),
        ("time", _when(state.get("now"), zone)),
        ("phase", f"{state.get('phase') or '-'} since {_when(state.get('since'), zone)}"),
        ("accepting", "new sessions" if state.get("accepting_sessions")
         else "no new sessions"),
    ]
    if state.get("session_id"):
        elapsed = state.get("elapsed_s")
        started = state.get("session_started_at")
        rows.append(("session", f"{state['session_id']}"
                     + (f", started {_when(started, zone)}" if started else "")
                     + (f", {format_duration(elapsed)}" if isinstance(elapsed, int) else "")))
        power = _decimal(state.get("power_w"))
        rows.append(("energy", _energy(state.get("energy_wh"))
                     + (f" at {power / 1000:.1f} kW" if power is not None else "")))
        cost = state.get("cost") if isinstance(state.get("cost"), Mapping) else None
        currency = cost.get("currency") if cost else None
        amount = _decimal(cost.get("incl_vat")) if cost else None
        shown = "-" if amount is None or not isinstance(currency, str) \
            else f"{format_amount(amount, currency)} incl. VAT"
        cap = _decimal(state.get("cost_cap"))
        if cap is not None and isinstance(currency, str):
            shown += f" (cap {format_amount(cap, currency)})"
        rows.append(("cost", shown))
        if state.get("stop_reason"):
            rows.append(("stopped", str(state["stop_reason"])))
    rows.append(("car", f"plugged {_yes(state.get('plugged'))}, output "
                        f"{'on' if state.get('output_on') else 'off'}"))
    rows.append(("faults", f"meter {state.get('meter_fault') or 'none'}, charger "
                           f"{state.get('charger_fault') or 'none'}"))
    oos = state.get("out_of_service")
    if isinstance(oos, Mapping):
        rows.append(("service", f"OUT OF SERVICE since {_when(oos.get('since'), zone)}: "
                                f"{oos.get('reason') or '-'}"))
    rows.append(("backend", "online" if state.get("backend_online") else "offline"))
    readers = state.get("readers")
    if isinstance(readers, Mapping) and readers:
        rows += [("reader", f"{'pcscd' if name == '*' else name}: {value}")
                 for name, value in sorted(readers.items())]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {text}" for label, text in rows)


SESSION_COLUMNS = ("session", "opened", "phase", "stop reason", "energy", "source")


def sessions_table(sessions: list[Mapping[str, Any]], zone: tzinfo) -> str:
    """One row per session, newest first as the daemon lists them; the energy from the
    start and stop readings."""
    if not sessions:
        return "no sessions yet"
    rows = [SESSION_COLUMNS]
    for s in sessions:
        start, stop = _decimal(s.get("meter_start_wh")), _decimal(s.get("meter_stop_wh"))
        energy = "-" if start is None or stop is None else format_energy(stop - start)
        rows.append((str(s.get("id") or "-"), _when(s.get("opened_at"), zone),
                     str(s.get("phase") or "-"), str(s.get("stop_reason") or "-"), energy,
                     str(s.get("source") or "-")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(SESSION_COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)
                               ).rstrip() for row in rows)
