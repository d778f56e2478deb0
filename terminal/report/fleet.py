"""The fleet's figures: DuckDB queries over the Parquet facts of many stations.

Provides `fleet_report(root, *, until, now, threads, memory_limit) -> dict` (schema
"evterm.fleet/1"): per station and local month the sessions, energy and money (net, VAT,
no-VAT part, gross, idle fees, refunds, gross after refunds), the fleet's totals per
currency (the sums of those rows), per VAT rate, the payment mix, and per station and
month the seconds in each connector status (availability). Money and energy are summed as
DECIMAL by DuckDB and come back exact; in the dict they are strings, as in the station's
report ("evterm.report/1"). The layout read is terminal/report/parquet.py's.

The SQL statements are plain (year(), month(), count(CASE ...), sum(), GROUP BY): the
same text runs in Spark SQL and Trino over the same files (docs/reports.md, "Fleet scale").

Needs duckdb (the `reports` extra). On failure: `ReportError` (no sessions under the
folder, a file that is not this layout's Parquet).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from terminal.report.facts import ReportError, utc_iso
from terminal.report.parquet import TABLES

SCHEMA = "evterm.fleet/1"
ZERO = Decimal(0)
TENTH = Decimal("0.1")

# the one scan of the sessions: per station, local month, currency and payment method
# (the station-month rows, the payment mix and the no-VAT row are sums of these groups);
# refunds count in the month of their session's close
SESSIONS_SQL = """
SELECT station_id, year(local_date) AS y, month(local_date) AS m, currency,
       payment_method,
       count(*) AS sessions,
       count(CASE WHEN energy_wh > 0 THEN 1 END) AS sessions_with_energy,
       count(CASE WHEN no_vat_amount <> 0 THEN 1 END) AS sessions_no_vat,
       sum(energy_wh) AS energy_wh,
       sum(net_amount) AS net, sum(vat_amount) AS vat, sum(no_vat_amount) AS no_vat,
       sum(amount_charged) AS gross, sum(idle_fee) AS idle_fees, sum(refunded) AS refunds,
       max(closed_at) AS latest
FROM sessions
GROUP BY station_id, year(local_date), month(local_date), currency, payment_method
"""
# a receipt has one row per rate: count(*) counts sessions
VAT_SQL = """
SELECT currency, percent, count(*) AS sessions,
       sum(net) AS net, sum(vat) AS vat, sum(gross) AS gross
FROM vat_rows
GROUP BY currency, percent
ORDER BY currency, percent
"""
# each status row lasts `duration_s` (to the station's next row, written at export); a
# row left open (the last of an export without an end) lasts until the report's end.
# With an end given: the rows before it, clipped to it.
STATUS_UNTIL_SQL = """
SELECT station_id, year(local_date) AS y, month(local_date) AS m, status,
       sum(least(coalesce(duration_s, epoch($until) - epoch(changed_at)),
                 epoch($until) - epoch(changed_at))) AS seconds
FROM status WHERE changed_at < $until
GROUP BY station_id, year(local_date), month(local_date), status
"""
# Without one: the closed rows' sums, and for the open rows their count and the sum of
# their start times (open seconds = count x end - that sum, once the end is known: the
# latest session close or row end of the fleet)
STATUS_SQL = """
SELECT station_id, year(local_date) AS y, month(local_date) AS m, status,
       sum(duration_s) AS closed_s, count(*) - count(duration_s) AS open_rows,
       sum(CASE WHEN duration_s IS NULL THEN epoch(changed_at) END) AS open_epochs,
       max(epoch(changed_at) + coalesce(duration_s, 0)) AS last_end
FROM status
GROUP BY station_id, year(local_date), month(local_date), status
"""
AVAILABLE = ("Available", "Occupied")


def table_glob(root: Path, table: str) -> str:
    """Every partition file of `table` (ROOT/TABLE/station=*/month=*/part-*.parquet)."""
    return str(root / table / "*" / "*" / "*.parquet")


def connect(root: Path, *, threads: int | None = None,
            memory_limit: str | None = None) -> tuple[duckdb.DuckDBPyConnection, set[str]]:
    """A DuckDB connection with a view per table that has files; the tables present."""
    if not (root / "sessions").is_dir():
        raise ReportError(f"{root}: has no sessions/ folder (not a Parquet export)")
    conn = duckdb.connect(":memory:")
    conn.execute("SET enable_progress_bar = false")
    if threads:
        conn.execute(f"SET threads = {int(threads)}")
    if memory_limit:
        conn.execute("SET memory_limit = $limit", {"limit": memory_limit})
    present = set()
    for table in TABLES:
        if not any((root / table).glob("*/*/*.parquet")):
            continue
        path = table_glob(root, table).replace("'", "''")
        conn.execute(f"CREATE VIEW {table} AS SELECT * FROM "
                     f"read_parquet('{path}', hive_partitioning = false)")
        present.add(table)
    if "sessions" not in present:
        raise ReportError(f"{root}: no session files under sessions/")
    return conn, present


def fleet_report(root: Path, *, until: datetime | None = None, now: datetime | None = None,
                 threads: int | None = None, memory_limit: str | None = None
                 ) -> dict[str, Any]:
    """The fleet's figures (module doc). `until`: where the last status row of each
    station ends (default: the latest session close or status row of the fleet)."""
    conn, present = connect(root, threads=threads, memory_limit=memory_limit)
    try:
        return _report(conn, present, root, until, now or datetime.now(UTC))
    except duckdb.Error as exc:
        raise ReportError(f"{root}: the Parquet files cannot be queried ({exc})") from None
    finally:
        conn.close()


def _report(conn: duckdb.DuckDBPyConnection, present: set[str], root: Path,
            until: datetime | None, now: datetime) -> dict[str, Any]:
    groups = _fetch(conn, SESSIONS_SQL)
    rows = _station_months(groups)
    spans = _status_spans(conn, until) if "status" in present else []
    end = until or max([g["latest"] for g in groups] + [
        datetime.fromtimestamp(s["last_end"], UTC) for s in spans])
    return {
        "schema": SCHEMA,
        "root": str(root),
        "generated_at": utc_iso(now),
        "until": utc_iso(end),
        "stations": len({r["station_id"] for r in rows}),
        "by_station_month": rows,
        "totals": _totals(rows),
        "by_vat_rate": _vat(conn, present, groups),
        "payment_mix": _payment_mix(groups),
        "availability": _availability(spans, end),
    }


def _fetch(conn: duckdb.DuckDBPyConnection, sql: str,
           params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params or {})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


COUNTED = ("sessions", "sessions_with_energy")
SUMMED = ("energy_wh", "net", "vat", "no_vat", "gross", "idle_fees", "refunds")


def _station_months(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The groups summed per station, month and currency (exact decimals)."""
    out: dict[tuple[str, str, str], dict[str, Any]] = {}
    for g in groups:
        key = (g["station_id"], f"{g['y']:04d}-{g['m']:02d}", g["currency"] or "")
        row = out.setdefault(key, {"station_id": key[0], "month": key[1],
                                   "currency": key[2], **dict.fromkeys(COUNTED, 0),
                                   **dict.fromkeys(SUMMED, ZERO)})
        for name in COUNTED:
            row[name] += g[name]
        for name in SUMMED:
            row[name] += _d(g[name])
    return [_money_row(out[key]) for key in sorted(out)]


def _money_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "energy_kwh": _kwh(row["energy_wh"]),
            "gross_after_refunds": str(row["gross"] - row["refunds"]),
            **{name: str(row[name]) for name in SUMMED}}


def _totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency, the sums of the station-month rows (so the total is their sum)."""
    out: dict[str, dict[str, Any]] = {}
    stations: dict[str, set[str]] = {}
    for row in rows:
        total = out.setdefault(row["currency"], {
            "currency": row["currency"], "stations": 0, **dict.fromkeys(COUNTED, 0),
            **dict.fromkeys(SUMMED, ZERO)})
        stations.setdefault(row["currency"], set()).add(row["station_id"])
        for name in COUNTED:
            total[name] += row[name]
        for name in SUMMED:
            total[name] += Decimal(row[name])
    return [_money_row({**t, "stations": len(stations[c])}) for c, t in out.items()]


def _vat(conn: duckdb.DuckDBPyConnection, present: set[str],
         groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency and rate; the part without VAT as a row whose percent is None."""
    rows = []
    if "vat_rows" in present:
        rows = [{"currency": r["currency"] or "", "percent": _pct(r["percent"]),
                 "sessions": r["sessions"], "net": str(_d(r["net"])),
                 "vat": str(_d(r["vat"])), "gross": str(_d(r["gross"]))}
                for r in _fetch(conn, VAT_SQL)]
    no_vat: dict[str, list[Any]] = {}
    for g in groups:
        if g["sessions_no_vat"]:
            entry = no_vat.setdefault(g["currency"] or "", [0, ZERO])
            entry[0] += g["sessions_no_vat"]
            entry[1] += _d(g["no_vat"])
    rows += [{"currency": currency, "percent": None, "sessions": count, "net": str(net),
              "vat": str(ZERO), "gross": str(net)}
             for currency, (count, net) in sorted(no_vat.items())]
    return rows


def _payment_mix(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency and method; share = sessions / the currency's sessions."""
    out: dict[tuple[str, str], list[Any]] = {}
    per_currency: dict[str, int] = {}
    for g in groups:
        currency = g["currency"] or ""
        entry = out.setdefault((currency, g["payment_method"] or ""), [0, ZERO, ZERO])
        entry[0] += g["sessions"]
        entry[1] += _d(g["energy_wh"])
        entry[2] += _d(g["gross"])
        per_currency[currency] = per_currency.get(currency, 0) + g["sessions"]
    ordered = sorted(out.items(), key=lambda item: (item[0][0], -item[1][0], item[0][1]))
    return [{"currency": currency, "method": method, "sessions": count,
             "share_percent": _share(count, per_currency[currency]),
             "energy_wh": str(energy), "gross": str(gross)}
            for (currency, method), (count, energy, gross) in ordered]


def _status_spans(conn: duckdb.DuckDBPyConnection,
                  until: datetime | None) -> list[dict[str, Any]]:
    if until is not None:
        return _fetch(conn, STATUS_UNTIL_SQL, {"until": until})
    return _fetch(conn, STATUS_SQL)


def _availability(spans: list[dict[str, Any]], until: datetime) -> list[dict[str, Any]]:
    """Per station and month: whole seconds in each status; available = Available +
    Occupied; percent = available_s / covered_s (both printed beside it)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    end = until.timestamp()
    for r in sorted(spans, key=lambda r: (r["station_id"], r["y"], r["m"], r["status"])):
        key = (r["station_id"], f"{r['y']:04d}-{r['m']:02d}")
        row = out.setdefault(key, {"station_id": key[0], "month": key[1], "covered_s": 0,
                                   "available_s": 0, "faulted_s": 0, "unavailable_s": 0})
        seconds = round(r["seconds"] if "seconds" in r else (
            (r["closed_s"] or 0.0) + r["open_rows"] * end - (r["open_epochs"] or 0.0)))
        row["covered_s"] += seconds
        if r["status"] in AVAILABLE:
            row["available_s"] += seconds
        elif r["status"] == "Faulted":
            row["faulted_s"] += seconds
        else:
            row["unavailable_s"] += seconds
    return [{**row, "percent": _share(row["available_s"], row["covered_s"])}
            for row in out.values()]


def _d(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


def _kwh(wh: Decimal) -> str:
    return str(wh / 1000)


def _pct(value: Any) -> str:
    return f"{Decimal(value).normalize():f}" if value is not None else ""


def _share(part: int, whole: int) -> str:
    return str((Decimal(part) * 100 / whole).quantize(TENTH)) if whole else "0.0"

