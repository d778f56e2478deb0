"""Benchmark of the fleet report at scale; prints one JSON object to stdout.

Target: DuckDB aggregates 1,000 stations x 1 year of sessions (Parquet, the layout of
terminal/report/parquet.py) in under 30 s on this machine's 2 cores.

How (the JSON says the same under "method"):
1. The data: bench/fleet_data.py draws the sessions set-wise in DuckDB (6..24 a day per
   station, ~5.5 million a year for 1,000 stations), their VAT rows and status rows, and
   writes them with pyarrow per (station, month). Cached under build/bench-fleet/ (keyed
   by stations, days and a hash of the generator and the schemas): a second run reuses it.
2. The query: `fleet_report` (terminal/report/fleet.py: per station and month, per VAT
   rate, payment mix, availability from the status rows) in a fresh process with
   `threads = 2`, run `--runs` times; each run's wall time is measured in that process and
   its peak memory (ru_maxrss of the finished child) here. The first run reads from the
   page cache as the machine left it after generating (warm), as an operator's re-run is.
3. Checks: the report's sessions equal the rows generated; per station-month
   net + VAT = gross; the totals are the rows' sums.
4. `--day-stations N`: also the same data of N stations partitioned by day
   (date=YYYY-MM-DD), queried the same way: the layout's cost per file, extrapolated
   linearly to the fleet's file count ("extrapolated": true).

    .venv/bin/python bench/bench_fleet.py [--stations 1000] [--days 365] [--runs 2]
        [--day-stations 0] [--cache build/bench-fleet] [--regenerate]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import duckdb
import pyarrow as pa
from fleet_data import generate

from terminal.report.parquet import SCHEMAS

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 30.0
THREADS = 2
_CHILD = """
import json, sys, time
from pathlib import Path
from terminal.report.fleet import fleet_report
started = time.perf_counter()
report = fleet_report(Path(sys.argv[1]), threads=int(sys.argv[2]))
seconds = time.perf_counter() - started
json.dump({"seconds": seconds, "report": report}, sys.stdout)
"""


def data_key(stations: int, days: int, layout: str) -> str:
    source = (Path(__file__).parent / "fleet_data.py").read_bytes()
    schemas = "".join(str(s) for s in SCHEMAS.values()).encode()
    digest = hashlib.sha256(source + schemas).hexdigest()[:12]
    return f"{layout}-{stations}x{days}-{digest}"


def dataset(cache: Path, stations: int, days: int, layout: str,
            regenerate: bool) -> tuple[Path, dict[str, Any]]:
    """The cached data set (made when missing); how it was made."""
    root = cache / data_key(stations, days, layout)
    stamp = root / "generated.json"
    if regenerate or not stamp.is_file():
        if cache.is_dir():  # other versions' data
            for old in cache.glob(f"{layout}-{stations}x{days}-*"):
                shutil.rmtree(old)
        started = time.perf_counter()
        rows = generate(root, stations=stations, days=days, layout=layout)
        made = {"rows": rows, "generate_s": round(time.perf_counter() - started, 1),
                "generated_now": True}
        stamp.write_text(json.dumps(made))
    else:
        made = {**json.loads(stamp.read_text()), "generated_now": False}
    files = [p for p in root.rglob("*.parquet")]
    made["files"] = {t: sum(1 for p in files if p.relative_to(root).parts[0] == t)
                     for t in made["rows"]}
    made["bytes"] = sum(p.stat().st_size for p in files)
    return root, made


def query(root: Path) -> dict[str, Any]:
    """fleet_report in a fresh process: its seconds and the child's peak memory."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(root), str(THREADS)],
                          capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"the fleet query failed: {done.stderr.strip()}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kb, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    out = json.loads(done.stdout)
    return {"seconds": round(out["seconds"], 2),
            # CPU seconds of the whole child (start-up included): what a busy machine
            # does not change; wall seconds / CPU seconds shows the parallelism got
            "cpu_s": round(cpu, 2), "load_average_1m": round(os.getloadavg()[0], 1),
            # ru_maxrss of children is the largest child so far: exact for the first run,
            # an upper bound after it
            "peak_rss_mb": round(max(peak_kb, before) / 1024, 1), "report": out["report"]}


def checks(report: dict[str, Any], sessions: int) -> dict[str, bool]:
    rows = report["by_station_month"]
    [total] = report["totals"]
    return {
        "sessions_equal_rows_generated": total["sessions"] == sessions,
        "net_plus_vat_is_gross": all(Decimal(r["net"]) + Decimal(r["vat"]) ==
                                     Decimal(r["gross"]) for r in rows),
        "total_is_the_rows_sum": Decimal(total["gross"]) == sum(Decimal(r["gross"])
                                                                for r in rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--day-stations", type=int, default=0, metavar="N",
                        help="also measure N stations partitioned by day (0: not)")
    parser.add_argument("--cache", type=Path, default=REPO / "build" / "bench-fleet")
    parser.add_argument("--regenerate", action="store_true")
    args = parser.parse_args()
    for name in ("stations", "days", "runs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: {getattr(args, name)} is not a count of 1 or more")
    root, made = dataset(args.cache, args.stations, args.days, "month", args.regenerate)
    runs = [query(root) for _ in range(args.runs)]
    report = runs[0].pop("report")
    for run in runs[1:]:
        run.pop("report")
    best = min(r["seconds"] for r in runs)
    result: dict[str, Any] = {
        "benchmark": "fleet", "python": platform.python_version(),
        "duckdb": duckdb.__version__, "pyarrow": pa.__version__, "cores": os.cpu_count(),
        "threads": THREADS, "stations": args.stations, "days": args.days,
        "layout": "station=/month=", "data": made, "runs": runs,
        "target_s": TARGET_S, "best_s": best, "pass": best < TARGET_S,
        "checks": checks(report, made["rows"]["sessions"]),
        "method": "DuckDB-drawn sessions written per station and month with pyarrow "
                  "(cached); fleet_report in a fresh process, threads=2, wall time inside "
                  "it, peak RSS of the child",
    }
    if args.day_stations:
        result["day_layout"] = day_layout(args, made)
    print(json.dumps(result, indent=2))
    return 0 if result["pass"] and all(result["checks"].values()) else 1


def day_layout(args: argparse.Namespace, month: dict[str, Any]) -> dict[str, Any]:
    """The same generator for N stations partitioned by day, queried the same way."""
    root, made = dataset(args.cache, args.day_stations, args.days, "day", args.regenerate)
    run = query(root)
    run.pop("report")
    files = sum(made["files"].values())
    fleet_files = files * args.stations // args.day_stations
    return {"stations": args.day_stations, "files": made["files"], "bytes": made["bytes"],
            "generate_s": made.get("generate_s"), "run": run,
            "fleet_files": fleet_files,
            "fleet_seconds": round(run["seconds"] * args.stations / args.day_stations, 1),
            "extrapolated": True,
            "month_layout_files": sum(month["files"].values())}


if __name__ == "__main__":
    sys.exit(main())
