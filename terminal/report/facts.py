"""The report's facts: one flat, typed row per closed session, read from the journal.

Provides:
- `SessionFact` (what a report needs of one closed session: times, energy, the money
  as the receipt printed it, the payment and refunds) with `VatRow` and `RefundFact`;
- `open_read_only(path)`: the journal opened read-only (the daemon may be running);
- `iter_sessions(conn, station_id, since, until)`: the closed sessions whose close lies
  in [since, until), oldest first, streamed (a board holds years of them; SQLite's
  json_extract picks the receipt's few figures, Python does not parse its whole JSON;
  a receipt that is JSON but not an object counts as no receipt);
- `iter_taps(conn, since, until)` and `iter_status(conn, since, until)`: the journal's
  taps and status rows of [since, until), streamed (the status row in force at `since`
  first, moved to `since`);
- `TapFact` (a card or RFID tap and what was decided, how fast) and `StatusFact` (the
  connector's status from `at` until the next row: Available, Occupied, Faulted,
  Unavailable), the rows of the journal's `taps` and `status_log` tables;
- `to_json(fact)` / `session_from_json`, `tap_from_json`, `status_from_json`: the facts
  as JSON-ready dicts (Decimals and times as strings) and back: the export bundle's
  facts/*.jsonl lines.

Every amount is Decimal, every time an aware UTC datetime, energy in Wh. The receipt is
the source of the money: a session without a receipt (closed before the receipt was
written, e.g. at a power loss) has `receipt_present` False and zero amounts. The same
columns are what the Parquet export writes (docs/reports.md, "Export schema").

On failure: `ReportError` naming the file and what is wrong (missing, not a journal,
a row whose stored value cannot be read).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

ZERO = Decimal(0)
CARD_PATHS = ("gateway", "zvt")  # payments.via of a bank card payment


class ReportError(Exception):
    """The facts cannot be read; the message names the source and the problem."""


@dataclass(frozen=True, slots=True)
class VatRow:
    """One VAT rate of a receipt, as printed: gross = net + vat."""

    percent: Decimal
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True, slots=True)
class RefundFact:
    at: datetime
    amount: Decimal
    reason: str


@dataclass(frozen=True, slots=True)
class SessionFact:
    """A closed session as the report sees it.

    `payment_method` is the receipt's ("rfid", "app", "card", "local", ...; the session's
    source when no receipt exists). `amount_charged` is the gross amount the receipt
    charged (before refunds); `net_amount`/`vat_rows` are the receipt's; `no_vat_amount`
    is the part charged without VAT. `idle_fee` is the gross of the receipt's
    PARKING_TIME lines. `energy_s` is from energy start to energy stop, `idle_s` from
    energy stop to the close (the car still plugged in).
    """

    station_id: str
    session_id: str
    opened_at: datetime
    started_at: datetime | None
    stopped_at: datetime | None
    closed_at: datetime
    source: str
    payment_method: str
    id_token: str | None
    stop_reason: str | None
    final_phase: str
    meter_serial: str | None
    meter_start_wh: Decimal | None
    meter_stop_wh: Decimal | None
    energy_wh: Decimal
    currency: str
    receipt_present: bool
    amount_charged: Decimal
    net_amount: Decimal
    no_vat_amount: Decimal
    vat_rows: tuple[VatRow, ...]
    idle_fee: Decimal
    payment_status: str | None
    payment_via: str | None
    card_scheme: str | None
    amount_approved: Decimal | None
    amount_captured: Decimal | None
    refunds: tuple[RefundFact, ...]

    @property
    def paid_by_card(self) -> bool:
        """A bank card paid (the built-in reader's gateway or the ZVT terminal)."""
        return self.payment_via in CARD_PATHS or self.payment_method == "card"

    @property
    def refunded(self) -> Decimal:
        return sum((r.amount for r in self.refunds), ZERO)

    @property
    def energy_s(self) -> float:
        if self.started_at is None or self.stopped_at is None:
            return 0.0
        return max(0.0, (self.stopped_at - self.started_at).total_seconds())

    @property
    def idle_s(self) -> float:
        if self.stopped_at is None:
            return 0.0
        return max(0.0, (self.closed_at - self.stopped_at).total_seconds())

    @property
    def duration_s(self) -> float:
        """From open (the tap) to close."""
        return max(0.0, (self.closed_at - self.opened_at).total_seconds())


@dataclass(frozen=True, slots=True)
class TapFact:
    """A tap and its decision. `kind`: "card" or "rfid"; `result`: "accepted" or
    "declined"; `reason`: the decision's code (driver_texts); `token`: the id token
    (a card's token, never a card number; None once anonymised); `decision_ms`: from
    the card seen to the decision (None when unknown)."""

    at: datetime
    reader: str
    kind: str
    result: str
    reason: str
    token: str | None
    decision_ms: float | None
    session_id: str | None


@dataclass(frozen=True, slots=True)
class StatusFact:
    """The connector's status from `at` on (OCPP ConnectorStatus: Available, Occupied,
    Faulted, Unavailable) and why (e.g. "charger_fault", "out_of_service", "power_loss",
    "stopped", "started")."""

    at: datetime
    status: str
    cause: str


def to_json(fact: SessionFact | TapFact | StatusFact) -> dict[str, Any]:
    """The fact as JSON-ready data: Decimals and datetimes as strings, tuples as lists."""
    return {name: _jsonable(getattr(fact, name)) for name in fact.__slots__}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, VatRow | RefundFact):
        return to_json_row(value)
    return value


def to_json_row(row: VatRow | RefundFact) -> dict[str, Any]:
    return {name: _jsonable(getattr(row, name)) for name in row.__slots__}


def session_from_json(data: dict[str, Any]) -> SessionFact:
    """A SessionFact from `to_json`'s dict (ReportError naming the field when wrong)."""
    try:
        return SessionFact(
            **{**data,
               "opened_at": _time(data["opened_at"]),
               "started_at": _opt_time(data["started_at"]),
               "stopped_at": _opt_time(data["stopped_at"]),
               "closed_at": _time(data["closed_at"]),
               **{k: _opt_dec(data[k], k) for k in _DECIMALS},
               "vat_rows": tuple(VatRow(*(_dec(v[k], f"vat_rows.{k}") for k in
                                          ("percent", "net", "vat", "gross")))
                                 for v in data["vat_rows"]),
               "refunds": tuple(RefundFact(_time(r["at"]), _dec(r["amount"], "refund"),
                                           str(r["reason"])) for r in data["refunds"])})
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"session fact {data.get('session_id')!r}: {exc!r}") from None


def tap_from_json(data: dict[str, Any]) -> TapFact:
    try:
        return TapFact(**{**data, "at": _time(data["at"])})
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"tap fact: {exc!r}") from None


def status_from_json(data: dict[str, Any]) -> StatusFact:
    try:
        return StatusFact(**{**data, "at": _time(data["at"])})
    except (KeyError, TypeError, ValueError) as exc:
        raise ReportError(f"status fact: {exc!r}") from None


_DECIMALS = ("meter_start_wh", "meter_stop_wh", "energy_wh", "amount_charged", "net_amount",
             "no_vat_amount", "idle_fee", "amount_approved", "amount_captured")


def open_read_only(path: Path) -> sqlite3.Connection:
    """The journal at `path`, read-only (safe beside the running daemon)."""
    if not path.is_file():
        raise ReportError(f"journal {path}: does not exist")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5)
        conn.execute("SELECT 1 FROM sessions LIMIT 1")
    except sqlite3.Error as exc:
        raise ReportError(f"journal {path}: cannot be read as a journal ({exc})") from None
    return conn


_FAR_PAST = "0000"
_FAR_FUTURE = "9999"


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


def iter_sessions(conn: sqlite3.Connection, station_id: str,
                       since: datetime | None = None,
                       until: datetime | None = None) -> Iterator[SessionFact]:
    """The closed sessions closed in [since, until), oldest first (None: unbounded)."""
    low = utc_iso(since) if since else "0000"
    high = utc_iso(until) if until else "9999"
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


_TAPS = """
SELECT at, reader, kind, result, reason, token, decision_ms, session_id FROM taps
WHERE at >= ? AND at < ? ORDER BY at, id
"""
_STATUS_AT = """
SELECT at, status, cause FROM status_log WHERE at <= ? ORDER BY at DESC, id DESC LIMIT 1
"""
_STATUS = "SELECT at, status, cause FROM status_log WHERE at {} ? AND at < ? ORDER BY at, id"


def iter_taps(conn: sqlite3.Connection, since: datetime | None = None,
              until: datetime | None = None) -> Iterator[TapFact]:
    """The taps of [since, until), oldest first, streamed (None: unbounded)."""
    low = _iso_z(since) if since else _FAR_PAST
    high = _iso_z(until) if until else _FAR_FUTURE
    try:
        for at, reader, kind, result, reason, token, decision_ms, session_id in \
                conn.execute(_TAPS, (low, high)):
            yield TapFact(_time(at), reader, kind, result, reason, token,
                          None if decision_ms is None else float(decision_ms), session_id)
    except ValueError as exc:
        raise ReportError(f"taps: a row cannot be read ({exc})") from None


def iter_status(conn: sqlite3.Connection, since: datetime | None = None,
                until: datetime | None = None) -> Iterator[StatusFact]:
    """The connector's status rows of [since, until), oldest first, streamed; with
    `since`, the row in force at `since` comes first, moved to `since` (so the period
    is covered from its start). Each row holds until the next one."""
    low = _iso_z(since) if since else _FAR_PAST
    high = _iso_z(until) if until else _FAR_FUTURE
    try:
        if since is not None:
            row = conn.execute(_STATUS_AT, (low,)).fetchone()
            if row is not None:
                yield StatusFact(since.astimezone(UTC), row[1], row[2])
        query = _STATUS.format(">" if since is not None else ">=")
        for at, status, cause in conn.execute(query, (low, high)):
            yield StatusFact(_time(at), status, cause)
    except ValueError as exc:
        raise ReportError(f"status_log: a row cannot be read ({exc})") from None


def utc_iso(at: datetime) -> str:
    """A time as the facts write it: ISO-8601 in UTC with +00:00."""
    return at.astimezone(UTC).isoformat()


def _iso_z(at: datetime) -> str:
    """As the taps and status rows are stored (terminal.kernel.clock.iso_utc)."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _time(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is UTC:  # the journal's times
        return at
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _opt_time(text: str | None) -> datetime | None:
    return None if text is None else _time(text)


def _dec(value: Any, what: str) -> Decimal:
    try:
        return Decimal(value if isinstance(value, str) else str(value))
    except InvalidOperation:
        raise ReportError(f"{what}: {value!r} is not a number") from None


def _opt_dec(value: Any, what: str) -> Decimal | None:
    return None if value is None else _dec(value, what)
