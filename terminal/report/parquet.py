"""The report's facts as Hive-partitioned Parquet, the form any engine can read at fleet scale.

Provides:
- `SCHEMAS`: the explicit Arrow schema of each table (`sessions`, `vat_rows`, `refunds`,
  `taps`, `status`): money decimal(18,4), energy decimal(18,3) in Wh, times
  timestamp[us, UTC], `local_date` the station's local date;
- `export_facts(root, sessions, taps, statuses, *, station_id, timezone, since, until)`:
  writes ROOT/TABLE/station=S/month=YYYY-MM/part-0.parquet for every month the facts
  touch (S the station id, percent-encoded as Hive escapes a path: `*` is `%2A`; the
  month is the local month of a session's close, of a tap, of a status row; a status
  row's `duration_s` runs to the next row, the last one's to `until`). A partition
  is rewritten whole, atomically: its rows inside [since, until) are replaced by the
  facts given, its rows outside are kept, so re-exporting a period is idempotent.
  Without `since` a table's span starts at its first fact, without `until` it ends at
  its last: what a pruned journal no longer holds stays in the archive;
- `station_dir(station_id)`, `TABLES`, `ExportCounts`.

Why months and not days: 1,000 stations x 365 days by day are ~365,000 files per table of
~15 sessions each; the query's cost is per file: measured here (bench/bench_fleet.py,
2 cores), 100 stations by day took 28 s (~280 s for the fleet), 1,000 stations by month
15 to 17 s (docs/reports.md, "Fleet scale").

Needs pyarrow (the `reports` extra, not installed on the board: see docs/reports.md).
On failure: `ReportError` naming what is wrong (an amount with more decimals than the
column holds, a time zone unknown, a file that cannot be written).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.parquet as pq

from terminal.report.daily import zone
from terminal.report.facts import ReportError, SessionFact, StatusFact, TapFact

MONEY = pa.decimal128(18, 4)
ENERGY = pa.decimal128(18, 3)
PERCENT = pa.decimal128(9, 4)
TIME = pa.timestamp("us", tz="UTC")
PART_NAME = "part-0.parquet"

_KEYS = [pa.field("station_id", pa.string(), nullable=False),
         pa.field("local_date", pa.date32(), nullable=False)]

SCHEMAS: dict[str, pa.Schema] = {
    "sessions": pa.schema([
        *_KEYS,
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("opened_at", TIME, nullable=False), pa.field("started_at", TIME),
        pa.field("stopped_at", TIME), pa.field("closed_at", TIME, nullable=False),
        pa.field("duration_s", pa.float64()), pa.field("energy_s", pa.float64()),
        pa.field("idle_s", pa.float64()),
        pa.field("source", pa.string()), pa.field("payment_method", pa.string()),
        pa.field("id_token", pa.string()), pa.field("stop_reason", pa.string()),
        pa.field("final_phase", pa.string()), pa.field("meter_serial", pa.string()),
        pa.field("meter_start_wh", ENERGY), pa.field("meter_stop_wh", ENERGY),
        pa.field("energy_wh", ENERGY, nullable=False),
        pa.field("currency", pa.string()), pa.field("receipt_present", pa.bool_()),
        pa.field("amount_charged", MONEY, nullable=False),
        pa.field("net_amount", MONEY, nullable=False),
        pa.field("vat_amount", MONEY, nullable=False),
        pa.field("no_vat_amount", MONEY, nullable=False),
        pa.field("idle_fee", MONEY, nullable=False),
        pa.field("refunded", MONEY, nullable=False),
        pa.field("payment_status", pa.string()), pa.field("payment_via", pa.string()),
        pa.field("card_scheme", pa.string()),
        pa.field("amount_approved", MONEY), pa.field("amount_captured", MONEY)]),
    "vat_rows": pa.schema([
        *_KEYS,
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("closed_at", TIME, nullable=False), pa.field("currency", pa.string()),
        pa.field("percent", PERCENT, nullable=False), pa.field("net", MONEY, nullable=False),
        pa.field("vat", MONEY, nullable=False), pa.field("gross", MONEY, nullable=False)]),
    "refunds": pa.schema([
        *_KEYS,
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("closed_at", TIME, nullable=False),
        pa.field("refunded_at", TIME, nullable=False),
        pa.field("currency", pa.string()), pa.field("amount", MONEY, nullable=False),
        pa.field("reason", pa.string())]),
    "taps": pa.schema([
        *_KEYS,
        pa.field("tapped_at", TIME, nullable=False), pa.field("reader", pa.string()),
        pa.field("kind", pa.string()), pa.field("result", pa.string()),
        pa.field("reason", pa.string()), pa.field("token", pa.string()),
        pa.field("decision_ms", pa.float64()), pa.field("session_id", pa.string())]),
    "status": pa.schema([
        *_KEYS,
        pa.field("changed_at", TIME, nullable=False), pa.field("status", pa.string()),
        pa.field("cause", pa.string()), pa.field("duration_s", pa.float64())]),
}
TABLES = tuple(SCHEMAS)
# the time that places a row in a partition and in an export's [since, until)
WINDOW_COLUMN = {"sessions": "closed_at", "vat_rows": "closed_at", "refunds": "closed_at",
                 "taps": "tapped_at", "status": "changed_at"}
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


@dataclass
class ExportCounts:
    """Rows and partition files written per table."""

    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    files: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))


def station_dir(station_id: str) -> str:
    """`station=...` with every character outside [A-Za-z0-9_.-] as %XX (Hive's escape)."""
    if not station_id:
        raise ReportError("station id: empty (a partition needs it)")
    return "station=" + "".join(c if c in _SAFE else "".join(f"%{b:02X}" for b in
                                                             c.encode()) for c in station_id)


def export_facts(root: Path, sessions: Iterable[SessionFact], taps: Iterable[TapFact],
                 statuses: Iterable[StatusFact], *, station_id: str, timezone: str,
                 since: datetime | None = None, until: datetime | None = None
                 ) -> ExportCounts:
    """Write the facts under `root`; the months they touch are rewritten (module doc)."""
    writer = _Writer(root, station_id, zone(timezone), since, until)
    for session in sessions:
        if session.station_id != station_id:
            raise ReportError(f"session {session.session_id}: station {session.station_id!r}"
                              f", not the export's {station_id!r}")
        writer.add_session(session)
    for tap in taps:
        writer.add("taps", tap.at, _tap_row(tap))
    for status, ends in _with_ends(statuses, until):
        writer.add("status", status.at, {
            "changed_at": status.at, "status": status.status, "cause": status.cause,
            "duration_s": None if ends is None else (ends - status.at).total_seconds()})
    writer.flush_all()
    return writer.counts


def _with_ends(statuses: Iterable[StatusFact], until: datetime | None
               ) -> Iterator[tuple[StatusFact, datetime | None]]:
    """Each status row with the time it ended: the next row's, the last one's `until`
    (None when the export has no end: it lasts up to the fleet query's end)."""
    last: StatusFact | None = None
    for status in statuses:
        if last is not None:
            yield last, status.at
        last = status
    if last is not None:
        yield last, until if until is not None and until > last.at else None


def _tap_row(tap: TapFact) -> dict[str, Any]:
    return {"tapped_at": tap.at, "reader": tap.reader, "kind": tap.kind, "result": tap.result,
            "reason": tap.reason, "token": tap.token, "decision_ms": tap.decision_ms,
            "session_id": tap.session_id}


def _session_row(s: SessionFact) -> dict[str, Any]:
    return {
        "session_id": s.session_id, "opened_at": s.opened_at, "started_at": s.started_at,
        "stopped_at": s.stopped_at, "closed_at": s.closed_at, "duration_s": s.duration_s,
        "energy_s": s.energy_s, "idle_s": s.idle_s, "source": s.source,
        "payment_method": s.payment_method, "id_token": s.id_token,
        "stop_reason": s.stop_reason, "final_phase": s.final_phase,
        "meter_serial": s.meter_serial, "meter_start_wh": s.meter_start_wh,
        "meter_stop_wh": s.meter_stop_wh, "energy_wh": s.energy_wh, "currency": s.currency,
        "receipt_present": s.receipt_present, "amount_charged": s.amount_charged,
        "net_amount": s.net_amount,
        "vat_amount": sum((row.vat for row in s.vat_rows), Decimal(0)),
        "no_vat_amount": s.no_vat_amount, "idle_fee": s.idle_fee, "refunded": s.refunded,
        "payment_status": s.payment_status, "payment_via": s.payment_via,
        "card_scheme": s.card_scheme, "amount_approved": s.amount_approved,
        "amount_captured": s.amount_captured}


class _Writer:
    """Rows buffered per (table, month); a month is written when the facts move past it
    (they come oldest first), the rest at the end. A month flushed twice in one export
    (facts out of order) keeps what the first flush wrote."""

    def __init__(self, root: Path, station_id: str, tz: ZoneInfo, since: datetime | None,
                 until: datetime | None) -> None:
        self.root, self.station_id, self.tz = root, station_id, tz
        self.since, self.until = since, until
        self.station = station_dir(station_id)
        self.buffers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.written: set[tuple[str, str]] = set()
        self.first: dict[str, datetime] = {}
        self.last: dict[str, datetime] = {}
        self.done = False
        self.counts = ExportCounts()

    def add_session(self, s: SessionFact) -> None:
        local = self.add("sessions", s.closed_at, _session_row(s))
        for row in s.vat_rows:
            self.add("vat_rows", s.closed_at, {
                "session_id": s.session_id, "closed_at": s.closed_at, "currency": s.currency,
                "percent": row.percent, "net": row.net, "vat": row.vat, "gross": row.gross},
                local)
        for refund in s.refunds:
            self.add("refunds", s.closed_at, {
                "session_id": s.session_id, "closed_at": s.closed_at, "refunded_at": refund.at,
                "currency": s.currency, "amount": refund.amount, "reason": refund.reason},
                local)

    def add(self, table: str, at: datetime, row: dict[str, Any],
            local: date | None = None) -> date:
        local = local or at.astimezone(self.tz).date()
        self.first[table] = min(self.first.get(table, at), at)
        self.last[table] = max(self.last.get(table, at), at)
        key = (table, f"{local:%Y-%m}")
        if key not in self.buffers:
            for older in [k for k in self.buffers if k[0] == table and k[1] < key[1]]:
                self._flush(older)
        self.buffers.setdefault(key, []).append(
            {"station_id": self.station_id, "local_date": local, **row})
        return local

    def flush_all(self) -> None:
        self.done = True
        for key in list(self.buffers):
            self._flush(key)
        self._clear_untouched()

    def window(self, table: str) -> tuple[datetime, datetime | None] | None:
        """The span of `table` this export replaces: [since, until) as given, else from
        its first fact to its last (until open while facts may still come). None: the
        table got no fact and no whole period was given, so nothing of it is replaced
        (a journal whose old rows were pruned never empties the archive's)."""
        if table not in self.first:
            if self.since is None or self.until is None:
                return None
            return self.since, self.until
        since = self.since if self.since is not None else self.first[table]
        if self.until is not None:
            return since, self.until
        return since, (self.last[table] + timedelta(microseconds=1) if self.done else None)

    def _clear_untouched(self) -> None:
        """Months inside the window that got no fact now hold only their rows outside it."""
        for table in TABLES:
            window = self.window(table)
            folder = self.root / table / self.station
            if window is None or not folder.is_dir():
                continue
            low = f"{window[0].astimezone(self.tz):%Y-%m}"
            high = f"{window[1].astimezone(self.tz):%Y-%m}" if window[1] else "9999"
            for part in sorted(folder.glob("month=*")):
                key = (table, part.name.removeprefix("month="))
                if key not in self.written and low <= key[1] <= high:
                    self._flush(key, rows=[])

    def _flush(self, key: tuple[str, str], rows: list[dict[str, Any]] | None = None) -> None:
        table, month = key
        new_rows = self.buffers.pop(key, []) if rows is None else rows
        schema = SCHEMAS[table]
        try:
            new = pa.Table.from_pylist(new_rows, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ReportError(f"{table} of {self.station_id}, {month}: a value does not fit "
                              f"its column ({exc})") from None
        folder = self.root / table / self.station / f"month={month}"
        kept = self._kept(folder, table, keep_all=key in self.written)
        merged = pa.concat_tables([kept, new]) if kept is not None else new
        merged = merged.sort_by([(WINDOW_COLUMN[table], "ascending")])
        if table == "status" and kept is not None:
            merged = _closed_spans(merged)
        self.written.add(key)
        _replace(folder, merged)
        self.counts.rows[table] += new.num_rows
        self.counts.files[table] += 1

    def _kept(self, folder: Path, table: str, keep_all: bool) -> pa.Table | None:
        """The partition's rows that stay: all (a second flush), or those outside the
        export's window."""
        parts = sorted(folder.glob("part-*.parquet")) if folder.is_dir() else []
        window = self.window(table)
        if not parts:
            return None
        try:
            old = pa.concat_tables([pq.read_table(p, schema=SCHEMAS[table]) for p in parts])
        except (OSError, pa.ArrowInvalid) as exc:
            raise ReportError(f"{folder}: cannot be read as this table ({exc})") from None
        if keep_all or window is None:
            return old
        times = old.column(WINDOW_COLUMN[table]).to_pylist()
        since, until = window
        outside = [at < since or (until is not None and at >= until) for at in times]
        return old.filter(pa.array(outside, pa.bool_()))


def _closed_spans(table: pa.Table) -> pa.Table:
    """Status rows merged from two exports: a row left open (no duration) that now has
    a successor in the partition ends at it."""
    times = table.column("changed_at").to_pylist()
    durations = table.column("duration_s").to_pylist()
    for n in range(len(durations) - 1):
        if durations[n] is None:
            durations[n] = (times[n + 1] - times[n]).total_seconds()
    index = table.schema.get_field_index("duration_s")
    return table.set_column(index, table.schema.field(index), pa.array(durations, pa.float64()))


def _replace(folder: Path, table: pa.Table) -> None:
    """The partition is `table` alone (atomic rename); an empty one is removed."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / PART_NAME
        if table.num_rows:
            temporary = folder / f".{PART_NAME}.{os.getpid()}.tmp"
            pq.write_table(table, temporary, compression="zstd")
            os.replace(temporary, target)
        else:
            target.unlink(missing_ok=True)
        for other in folder.glob("part-*.parquet"):
            if other.name != PART_NAME:
                other.unlink()
        if not table.num_rows and not any(folder.iterdir()):
            folder.rmdir()
    except OSError as exc:
        raise ReportError(f"{folder}: cannot be written ({exc})") from None
