"""Synthetic fleet data for bench_fleet.py: N stations x D days of sessions as the Parquet
layout of terminal/report/parquet.py (the same schemas, station=/month= folders).

Generated set-wise, not session by session: DuckDB SQL draws every session of a batch of
stations at once (a station's daily count 6..24, mostly daytime starts, 10-60 minutes at
25-150 kW, 0.59 EUR/kWh gross with 19 % VAT, an idle fee on one session in 12, a refund
on one in 400, card/rfid/app/local payments, status rows: Available each morning,
Occupied spans, one fault in 50 days; each row's duration_s to the next, as the export
writes it), the result is cast to the exported schemas and
written with pyarrow.dataset per (station, month). The money is made consistent as a
receipt's: gross = net + vat.

    python bench/fleet_data.py ROOT [--stations 1000] [--days 365] [--layout month|day]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from terminal.report.parquet import SCHEMAS, station_dir

START = "2025-01-01"
TIMEZONE = "Europe/Berlin"
BATCH_STATIONS = 50

_SESSIONS = """
WITH st AS (
  SELECT s AS n, 'DE*EVT*E' || lpad(s::VARCHAR, 5, '0') AS station_id,
         6 + hash(s, 'load') % 19 AS per_day
  FROM range($first, $last) t(s)),
slots AS (
  SELECT n, station_id, d, k FROM st, range(0, $days) t1(d), range(0, 24) t2(k)
  WHERE k < per_day),
drawn AS (
  SELECT n, station_id, d, k,
         TIMESTAMPTZ '{start} 05:00:00+00' + to_days(d::INTEGER)
           + to_seconds((abs(hash(n, d, k, 't')) % 57600)::BIGINT) AS opened_at,
         60 + abs(hash(n, d, k, 'wait')) % 120 AS wait_s,
         600 + abs(hash(n, d, k, 'len')) % 3000 AS energy_s,
         CASE WHEN abs(hash(n, d, k, 'idle')) % 12 = 0
              THEN 1200 + abs(hash(n, d, k, 'il')) % 2400
              ELSE abs(hash(n, d, k, 'id')) % 300 END AS idle_s,
         25 + abs(hash(n, d, k, 'kw')) % 126 AS kw,
         abs(hash(n, d, k, 'pay')) % 20 AS pay
  FROM slots),
timed AS (
  SELECT *, opened_at + to_seconds(wait_s) AS started_at,
         opened_at + to_seconds(wait_s + energy_s) AS stopped_at,
         opened_at + to_seconds(wait_s + energy_s + idle_s) AS closed_at,
         round(kw * energy_s / 3.6, 1)::DECIMAL(18,3) AS energy_wh
  FROM drawn),
priced AS (
  SELECT *, round(energy_wh * 0.00059, 2)::DECIMAL(18,4) AS energy_gross,
         CASE WHEN idle_s >= 1200 THEN round((idle_s - 900) / 60 * 0.10, 2)
              ELSE 0 END::DECIMAL(18,4) AS idle_fee
  FROM timed),
money AS (
  SELECT *, (energy_gross + idle_fee)::DECIMAL(18,4) AS gross,
         round((energy_gross + idle_fee) / 1.19, 2)::DECIMAL(18,4) AS net
  FROM priced)
SELECT station_id,
       (closed_at AT TIME ZONE '{tz}')::DATE AS local_date,
       station_id || '-' || d || '-' || k AS session_id,
       opened_at, started_at, stopped_at, closed_at,
       (wait_s + energy_s + idle_s)::DOUBLE AS duration_s, energy_s::DOUBLE AS energy_s,
       idle_s::DOUBLE AS idle_s,
       CASE WHEN pay < 9 THEN 'card' WHEN pay < 16 THEN 'rfid' WHEN pay < 19 THEN 'app'
            ELSE 'local' END AS source,
       CASE WHEN pay < 9 THEN 'card' WHEN pay < 16 THEN 'rfid' WHEN pay < 19 THEN 'app'
            ELSE 'local' END AS payment_method,
       'tok' || (abs(hash(n, d, k, 'tok')) % 5000) AS id_token, 'ev' AS stop_reason,
       'closed' AS final_phase, 'MTR-' || n AS meter_serial,
       NULL::DECIMAL(18,3) AS meter_start_wh, NULL::DECIMAL(18,3) AS meter_stop_wh,
       energy_wh, 'EUR' AS currency, true AS receipt_present,
       gross AS amount_charged, net AS net_amount, (gross - net) AS vat_amount,
       0::DECIMAL(18,4) AS no_vat_amount, idle_fee,
       CASE WHEN abs(hash(n, d, k, 'ref')) % 400 = 0 THEN least(gross, 5)
            ELSE 0 END::DECIMAL(18,4) AS refunded,
       CASE WHEN pay < 9 THEN 'captured' END AS payment_status,
       CASE WHEN pay < 9 THEN 'gateway' END AS payment_via,
       CASE WHEN pay < 9 THEN 'visa' END AS card_scheme,
       CASE WHEN pay < 9 THEN 50 END::DECIMAL(18,4) AS amount_approved,
       CASE WHEN pay < 9 THEN gross END::DECIMAL(18,4) AS amount_captured
FROM money
"""
_VAT_ROWS = """
SELECT station_id, local_date, session_id, closed_at, currency, 19::DECIMAL(9,4) AS percent,
       net_amount AS net, vat_amount AS vat, amount_charged AS gross
FROM batch
"""
_STATUS = """
WITH days AS (
  SELECT 'DE*EVT*E' || lpad(s::VARCHAR, 5, '0') AS station_id, s AS n, d,
         TIMESTAMPTZ '{start} 04:00:00+00' + to_days(d::INTEGER) AS morning
  FROM range($first, $last) t(s), range(0, $days) t1(d)),
rows AS (
  SELECT station_id, morning AS changed_at, 'Available' AS status, 'ready' AS cause
  FROM days
  UNION ALL
  SELECT station_id, morning + to_seconds((abs(hash(n, d, 'f')) % 50000)::BIGINT),
         'Faulted', 'charger_fault' FROM days WHERE abs(hash(n, d)) % 50 = 0
  UNION ALL
  SELECT station_id, opened_at, 'Occupied', 'session' FROM batch
  UNION ALL
  SELECT station_id, closed_at, 'Available', 'unplugged' FROM batch)
SELECT station_id, (changed_at AT TIME ZONE '{tz}')::DATE AS local_date, changed_at,
       status, cause,
       epoch(coalesce(lead(changed_at) OVER (PARTITION BY station_id ORDER BY changed_at),
                      TIMESTAMPTZ '{start} 00:00:00+00' + to_days($days::INTEGER)))
         - epoch(changed_at) AS duration_s
FROM rows
"""


def generate(root: Path, *, stations: int, days: int, layout: str = "month") -> dict[str, int]:
    """Write the fleet under `root` (replaced); the number of rows per table."""
    if root.exists():
        shutil.rmtree(root)
    conn = duckdb.connect(":memory:")
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute("SET threads = 2")
    rows = {"sessions": 0, "vat_rows": 0, "status": 0}
    for first in range(0, stations, BATCH_STATIONS):
        params = {"first": first, "last": min(stations, first + BATCH_STATIONS),
                  "days": days}
        batch = conn.sql(_SESSIONS.format(start=START, tz=TIMEZONE),
                         params=params).to_arrow_table()
        conn.register("batch", batch)
        tables = {"sessions": batch,
                  "vat_rows": conn.sql(_VAT_ROWS).to_arrow_table(),
                  "status": conn.sql(_STATUS.format(start=START, tz=TIMEZONE),
                                     params=params).to_arrow_table()}
        conn.unregister("batch")
        for name, table in tables.items():
            _write(root / name, table.cast(SCHEMAS[name]), layout)
            rows[name] += table.num_rows
    conn.close()
    return rows


def _write(folder: Path, table: pa.Table, layout: str) -> None:
    """One file per (station, month) (or day), in station=/month= (or date=) folders."""
    ids = table.column("station_id")
    key = "%Y-%m" if layout == "month" else "%Y-%m-%d"
    dates = table.column("local_date")
    part = pa.compute.strftime(dates.cast(pa.timestamp("s")), format=key)
    keyed = table.append_column("station", ids) \
                 .append_column("month" if layout == "month" else "date", part)
    names = ["station", "month" if layout == "month" else "date"]
    # pyarrow escapes the folder names itself ("*" as %2A): as station_dir() does
    ds.write_dataset(keyed, folder, format="parquet",
                     partitioning=ds.HivePartitioning(
                         pa.schema([(n, pa.string()) for n in names])),
                     basename_template="part-{i}.parquet",
                     existing_data_behavior="overwrite_or_ignore", max_partitions=1_000_000,
                     max_open_files=4096,
                     file_options=ds.ParquetFileFormat().make_write_options(
                         compression="zstd"))
    first = ids[0].as_py()
    if not (folder / station_dir(first)).is_dir():
        raise SystemExit(f"{folder}: pyarrow named the folder of {first!r} otherwise than "
                         f"{station_dir(first)!r}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--layout", choices=("month", "day"), default="month")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = generate(args.root, stations=args.stations, days=args.days, layout=args.layout)
    print({"rows": rows, "seconds": round(time.perf_counter() - started, 1)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
