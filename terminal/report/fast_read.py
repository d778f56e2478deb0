"""The journal's closed sessions as `SessionFact`s, fast: what `facts.iter_sessions`
gives, with SQLite picking the receipt's few figures out of its JSON.

Provides `iter_session_facts(conn, station_id, since, until)`: the same facts, in the
same order, as `terminal.report.facts.iter_sessions` (tests/unit/test_report_fast_read.py
holds the two equal), for the report of years of sessions (docs/reports.md, "How fast"):
the receipt's JSON (1-2 kB a session) is not parsed into a dict by Python; one
`json_extract` returns its energy, amounts, payment method, VAT rows and charge lines
(for the idle fee: the PARKING_TIME lines), a small array Python parses instead. One
difference: a receipt that is JSON but not an object (never written by the terminal)
counts as no receipt here, as an empty object does there.

On failure: `ReportError` naming what cannot be read.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from terminal.report.facts import RefundFact, ReportError, SessionFact, VatRow

ZERO = Decimal(0)
_FIGURES = ("'$.energy_wh', '$.payment.method', '$.currency', '$.amount_charged', "
            "'$.net_amount', '$.no_vat_amount', '$.vat', '$.charges'")
_SESSIONS = f"""
SELECT s.id, s.opened_at, s.started_at, s.stopped_at, s.closed_at, s.source, s.id_token,
       s.anonymised_at, s.stop_reason, s.phase, s.meter_serial, s.meter_start_wh,
       s.meter_stop_wh, json_extract(r.receipt_json, {_FIGURES}),
       p.status, p.via, p.scheme, p.amount_approved, p.amount_captured, p.currency
FROM sessions s
LEFT JOIN receipts r ON r.session_id = s.id
LEFT JOIN payments p ON p.session_id = s.id
WHERE s.closed_at IS NOT NULL AND s.closed_at >= ? AND s.closed_at < ?
ORDER BY s.closed_at, s.id
"""
_REFUNDS = "SELECT session_id, at, amount, reason FROM refunds WHERE at >= ? ORDER BY at"


def iter_session_facts(conn: sqlite3.Connection, station_id: str,
                       since: datetime | None = None,
                       until: datetime | None = None) -> Iterator[SessionFact]:
    """The closed sessions closed in [since, until), oldest first (None: unbounded)."""
    low = _iso(since) if since else "0000"
    high = _iso(until) if until else "9999"
    refunds: dict[str, list[RefundFact]] = {}
    for session_id, at, amount, reason in conn.execute(_REFUNDS, (low,)):
        refunds.setdefault(session_id, []).append(
            RefundFact(_time(at), _dec(amount, "refunds.amount"), reason or ""))
    try:
        rows = conn.execute(_SESSIONS, (low, high))
        while (row := next(rows, None)) is not None:
            yield _session(station_id, row, tuple(refunds.get(row[0], ())))
    except sqlite3.OperationalError as exc:  # "malformed JSON"
        raise ReportError(f"a receipt in the journal cannot be read ({exc})") from None


def _session(station_id: str, row: tuple[Any, ...],
             refunds: tuple[RefundFact, ...]) -> SessionFact:
    (session_id, opened_at, started_at, stopped_at, closed_at, source, id_token,
     anonymised_at, stop_reason, phase, meter_serial, start_wh, stop_wh, figures,
     pay_status, pay_via, scheme, approved, captured, pay_currency) = row
    values = json.loads(figures) if figures is not None else None
    if values is not None and all(v is None for v in values):
        values = None  # not an object, or an empty one: as no receipt
    start = None if start_wh is None else _dec(start_wh, "meter_start_wh")
    stop = None if stop_wh is None else _dec(stop_wh, "meter_stop_wh")
    if values is not None:
        energy, method, currency, charged, net, no_vat, vat, charges = values
        energy_wh = _dec("0" if energy is None else energy, "receipt energy_wh")
        idle_fee = sum((_dec(line.get("amount") or "0", "charge amount")
                        for line in charges or () if line.get("dimension") == "PARKING_TIME"),
                       ZERO)
    else:
        method = currency = charged = net = no_vat = vat = None
        energy_wh = stop - start if start is not None and stop is not None else ZERO
        idle_fee = ZERO
    try:
        vat_rows = tuple(VatRow(Decimal(str(v["percent"])), Decimal(str(v["net"])),
                                Decimal(str(v["vat"])), Decimal(str(v["gross"])))
                         for v in vat or ())
    except (InvalidOperation, KeyError, TypeError):
        raise ReportError(f"session {session_id}: its receipt's VAT rows cannot be "
                          "read") from None
    return SessionFact(
        station_id, session_id, _time(opened_at),
        _time(started_at) if started_at else None,
        _time(stopped_at) if stopped_at else None,
        _time(closed_at), source, method or source,
        None if anonymised_at else id_token, stop_reason, phase, meter_serial, start, stop,
        energy_wh, currency or pay_currency or "", values is not None,
        _dec(charged or "0", "amount_charged"), _dec(net or "0", "net_amount"),
        _dec(no_vat or "0", "no_vat_amount"), vat_rows, idle_fee, pay_status, pay_via,
        scheme, None if approved is None else _dec(approved, "amount_approved"),
        None if captured is None else _dec(captured, "amount_captured"), refunds)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is UTC:  # the journal's times: ...Z
        return at
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _dec(value: Any, what: str) -> Decimal:
    try:
        return Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise ReportError(f"{what}: {value!r} is not a number") from None
