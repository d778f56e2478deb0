"""bench/bench_fleet.py runs on a small fleet: its generator writes the export's layout
and schemas, the fleet query over it agrees with the rows generated, a second run reuses
the cached data, the day layout is measured beside it. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

from terminal.report.parquet import SCHEMAS, station_dir

ROOT = Path(__file__).resolve().parents[2]


def bench(*args: str) -> dict:
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_fleet.py"), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_small_fleet_is_generated_queried_and_cached(tmp_path: Path) -> None:
    args = ("--stations", "3", "--days", "40", "--runs", "1", "--cache", str(tmp_path),
            "--day-stations", "2")
    result = bench(*args)
    assert result["benchmark"] == "fleet" and result["stations"] == 3
    assert result["checks"] == {"sessions_equal_rows_generated": True,
                                "net_plus_vat_is_gross": True,
                                "total_is_the_rows_sum": True}
    data = result["data"]
    assert data["generated_now"] and 3 * 40 * 6 <= data["rows"]["sessions"] <= 3 * 40 * 24
    assert data["files"]["sessions"] == 3 * 2  # 40 days from January 1st: two months
    assert result["runs"][0]["peak_rss_mb"] > 0 and result["runs"][0]["seconds"] > 0
    day = result["day_layout"]
    assert day["files"]["sessions"] == 2 * 40 and day["extrapolated"] is True
    [folder] = [p for p in tmp_path.iterdir() if p.name.startswith("month-3x40-")]
    part = next((folder / "sessions" / station_dir("DE*EVT*E00001")).glob("*/*.parquet"))
    assert pq.read_schema(part).remove_metadata() == SCHEMAS["sessions"]
    again = bench(*args[:-2])
    assert again["data"]["generated_now"] is False
    assert again["data"]["rows"] == data["rows"]
