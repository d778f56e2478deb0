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

from terminal.report.facts import ReportError
from terminal.report.parquet import TABLES

SCHEMA = "evterm.fleet/1"
ZERO = Decimal(0)
TENTH = Decimal("0.1")

# per station and local month; refunds count in the month of their session's close
STATION_MONTH_SQL = """
SELECT station_id, year(local_date) AS y, month(local_date) AS m, currency,
       count(*) AS sessions,
       count(CASE WHEN energy_wh > 0 THEN 1 END) AS sessions_with_energy,
       sum(energy_wh) AS energy_wh,
       sum(net_amount) AS net, sum(vat_amount) AS vat, sum(no_vat_amount) AS no_vat,
       sum(amount_charged) AS gross, sum(idle_fee) AS idle_fees, sum(refunded) AS refunds
FROM sessions
GROUP BY station_id, year(local_date), month(local_date), currency
ORDER BY station_id, y, m, currency
"""
VAT_SQL = """
SELECT currency, percent, count(DISTINCT session_id) AS sessions,
       sum(net) AS net, sum(vat) AS vat, sum(gross) AS gross
FROM vat_rows
GROUP BY currency, percent
ORDER BY currency, percent
"""
NO_VAT_SQL = """
SELECT currency, count(*) AS sessions, sum(no_vat_amount) AS net
FROM sessions WHERE no_vat_amount <> 0
GROUP BY currency ORDER BY currency
"""
PAYMENT_SQL = """
SELECT currency, payment_method, count(*) AS sessions, sum(energy_wh) AS energy_wh,
       sum(amount_charged) AS gross
FROM sessions
GROUP BY currency, payment_method
ORDER BY currency, sessions DESC, payment_method
"""
# each status row lasts until the station's next one (the last: until `until`)
STATUS_SQL = """
WITH spans AS (
  SELECT station_id, local_date, status, changed_at,
         coalesce(lead(changed_at) OVER (PARTITION BY station_id ORDER BY changed_at),
                  $until) AS next_at
  FROM status)
SELECT station_id, year(local_date) AS y, month(local_date) AS m, status,
       sum(epoch(next_at) - epoch(changed_at)) AS seconds
FROM spans WHERE next_at > changed_at
GROUP BY station_id, year(local_date), month(local_date), status
ORDER BY station_id, y, m, status
"""
LATEST_SQL = "SELECT max(closed_at) FROM sessions"
LATEST_STATUS_SQL = "SELECT max(changed_at) FROM status"
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
    rows = [_station_month(r) for r in _fetch(conn, STATION_MONTH_SQL)]
    latest = [conn.execute(LATEST_SQL).fetchone()[0]]
    if "status" in present:
        latest.append(conn.execute(LATEST_STATUS_SQL).fetchone()[0])
    end = until or max(at for at in latest if at is not None)
    return {
        "schema": SCHEMA,
        "root": str(root),
        "generated_at": _iso(now),
        "until": _iso(end),
        "stations": len({r["station_id"] for r in rows}),
        "by_station_month": rows,
        "totals": _totals(rows),
        "by_vat_rate": _vat(conn, present),
        "payment_mix": _payment_mix(conn),
        "availability": _availability(conn, end) if "status" in present else [],
    }


def _fetch(conn: duckdb.DuckDBPyConnection, sql: str,
           params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params or {})
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _station_month(r: dict[str, Any]) -> dict[str, Any]:
    gross, refunds = _d(r["gross"]), _d(r["refunds"])
    return {"station_id": r["station_id"], "month": f"{r['y']:04d}-{r['m']:02d}",
            "currency": r["currency"] or "", "sessions": r["sessions"],
            "sessions_with_energy": r["sessions_with_energy"],
            "energy_wh": str(_d(r["energy_wh"])), "energy_kwh": _kwh(_d(r["energy_wh"])),
            "net": str(_d(r["net"])), "vat": str(_d(r["vat"])),
            "no_vat": str(_d(r["no_vat"])), "gross": str(gross),
            "idle_fees": str(_d(r["idle_fees"])), "refunds": str(refunds),
            "gross_after_refunds": str(gross - refunds)}


SUMMED = ("energy_wh", "net", "vat", "no_vat", "gross", "idle_fees", "refunds",
          "gross_after_refunds")


def _totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per currency, the sums of the station-month rows (so the total is their sum)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        total = out.setdefault(row["currency"], {
            "currency": row["currency"], "stations": set(), "sessions": 0,
            "sessions_with_energy": 0, **dict.fromkeys(SUMMED, ZERO)})
        total["stations"].add(row["station_id"])
        total["sessions"] += row["sessions"]
        total["sessions_with_energy"] += row["sessions_with_energy"]
        for name in SUMMED:
            total[name] += Decimal(row[name])
    return [{**t, "stations": len(t["stations"]), "energy_kwh": _kwh(t["energy_wh"]),
             **{name: str(t[name]) for name in SUMMED}} for t in out.values()]


def _vat(conn: duckdb.DuckDBPyConnection, present: set[str]) -> list[dict[str, Any]]:
    rows = []
    if "vat_rows" in present:
        rows = [{"currency": r["currency"] or "", "percent": _pct(r["percent"]),
                 "sessions": r["sessions"], "net": str(_d(r["net"])),
                 "vat": str(_d(r["vat"])), "gross": str(_d(r["gross"]))}
                for r in _fetch(conn, VAT_SQL)]
    rows += [{"currency": r["currency"] or "", "percent": None, "sessions": r["sessions"],
              "net": str(_d(r["net"])), "vat": "0.0000", "gross": str(_d(r["net"]))}
             for r in _fetch(conn, NO_VAT_SQL)]
    return rows


def _payment_mix(conn: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = _fetch(conn, PAYMENT_SQL)
    per_currency: dict[str, int] = {}
    for r in rows:
        per_currency[r["currency"]] = per_currency.get(r["currency"], 0) + r["sessions"]
    return [{"currency": r["currency"] or "", "method": r["payment_method"] or "",
             "sessions": r["sessions"],
             "share_percent": _share(r["sessions"], per_currency[r["currency"]]),
             "energy_wh": str(_d(r["energy_wh"])), "gross": str(_d(r["gross"]))}
            for r in rows]


def _availability(conn: duckdb.DuckDBPyConnection, until: datetime) -> list[dict[str, Any]]:
    """Per station and month: whole seconds in each status; available = Available +
    Occupied; percent = available_s / covered_s (both printed beside it)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for r in _fetch(conn, STATUS_SQL, {"until": until}):
        key = (r["station_id"], f"{r['y']:04d}-{r['m']:02d}")
        row = out.setdefault(key, {"station_id": key[0], "month": key[1], "covered_s": 0,
                                   "available_s": 0, "faulted_s": 0, "unavailable_s": 0})
        seconds = round(r["seconds"])
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


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()
