"""The reference the fast session reader is held to: the journal's sessions read the plain
way (each receipt parsed whole by Python), in tests only."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from terminal.report.facts import (
    _FAR_FUTURE,
    _FAR_PAST,
    ZERO,
    RefundFact,
    ReportError,
    SessionFact,
    VatRow,
    _dec,
    _opt_dec,
    _time,
    utc_iso,
)

_SESSIONS = """
SELECT s.id, s.opened_at, s.started_at, s.stopped_at, s.closed_at, s.source, s.id_token,
       s.anonymised_at, s.stop_reason, s.phase, s.meter_serial, s.meter_start_wh,
       s.meter_stop_wh, r.receipt_json, p.status, p.via, p.scheme, p.amount_approved,
       p.amount_captured, p.currency
FROM sessions s
LEFT JOIN receipts r ON r.session_id = s.id
LEFT JOIN payments p ON p.session_id = s.id
WHERE s.closed_at IS NOT NULL AND s.closed_at >= ? AND s.closed_at < ?
ORDER BY s.closed_at, s.id
"""
_REFUNDS = "SELECT session_id, at, amount, reason FROM refunds WHERE at >= ? ORDER BY at"


def reference_sessions(conn: sqlite3.Connection, station_id: str, since: datetime | None = None,
                  until: datetime | None = None) -> Iterator[SessionFact]:
    """The closed sessions closed in [since, until), oldest first (None: unbounded)."""
    low = utc_iso(since) if since else _FAR_PAST
    high = utc_iso(until) if until else _FAR_FUTURE
    refunds: dict[str, list[RefundFact]] = {}
    for session_id, at, amount, reason in conn.execute(_REFUNDS, (low,)):
        refunds.setdefault(session_id, []).append(
            RefundFact(_time(at), _dec(amount, "refunds.amount"), reason or ""))
    for row in conn.execute(_SESSIONS, (low, high)):
        yield _session(station_id, row, tuple(refunds.get(row[0], ())))


def _session(station_id: str, row: tuple[Any, ...],
             refunds: tuple[RefundFact, ...]) -> SessionFact:
    (session_id, opened_at, started_at, stopped_at, closed_at, source, id_token,
     anonymised_at, stop_reason, phase, meter_serial, start_wh, stop_wh, receipt_json,
     pay_status, pay_via, scheme, approved, captured, pay_currency) = row
    receipt = _receipt(session_id, receipt_json)
    start = _opt_dec(start_wh, "meter_start_wh")
    stop = _opt_dec(stop_wh, "meter_stop_wh")
    if receipt:
        energy_wh = _dec(receipt.get("energy_wh", "0"), "receipt energy_wh")
    else:
        energy_wh = stop - start if start is not None and stop is not None else ZERO
    payment = receipt.get("payment") or {}
    return SessionFact(
        station_id=station_id,
        session_id=session_id,
        opened_at=_time(opened_at),
        started_at=_time(started_at) if started_at else None,
        stopped_at=_time(stopped_at) if stopped_at else None,
        closed_at=_time(closed_at),
        source=source,
        payment_method=payment.get("method") or source,
        id_token=None if anonymised_at else id_token,
        stop_reason=stop_reason,
        final_phase=phase,
        meter_serial=meter_serial,
        meter_start_wh=start,
        meter_stop_wh=stop,
        energy_wh=energy_wh,
        currency=receipt.get("currency") or pay_currency or "",
        receipt_present=bool(receipt),
        amount_charged=_dec(receipt.get("amount_charged") or "0", "amount_charged"),
        net_amount=_dec(receipt.get("net_amount") or "0", "net_amount"),
        no_vat_amount=_dec(receipt.get("no_vat_amount") or "0", "no_vat_amount"),
        vat_rows=tuple(
            VatRow(_dec(v["percent"], "vat percent"), _dec(v["net"], "vat net"),
                   _dec(v["vat"], "vat"), _dec(v["gross"], "vat gross"))
            for v in receipt.get("vat", ())),
        idle_fee=sum((_dec(line.get("amount") or "0", "charge amount")
                      for line in receipt.get("charges", ())
                      if line.get("dimension") == "PARKING_TIME"), ZERO),
        payment_status=pay_status,
        payment_via=pay_via,
        card_scheme=scheme,
        amount_approved=_opt_dec(approved, "amount_approved"),
        amount_captured=_opt_dec(captured, "amount_captured"),
        refunds=refunds,
    )


def _receipt(session_id: str, text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        raise ReportError(f"session {session_id}: its receipt is not JSON") from None
    return data if isinstance(data, dict) else {}
