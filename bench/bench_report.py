"""Benchmark of `evterm report` on a board's journal of 5 years; prints one JSON object.

Targets: the report of one board holding 5 years of sessions (50 a day) in under 5 s of
wall time, using under 200 MB of memory (peak RSS of the report's process).

How (the JSON says the same under "method"):
1. Templates: sessions journaled as the daemon journals them (bench_retention's
   `make_templates`: every poll through the session machine into `Store.commit`, the
   receipt from `bill_from_journal`), card ones with a captured payment.
2. The journal: `--years` years of `--per-day` sessions a day, each a copy of a template
   under a new id and start time (bench_retention's `Copier`, executemany, one
   transaction a day) of the rows the report reads: sessions, receipts, payments and
   refunds (one card session in 50 refunded, one in 500 above the refund threshold).
   The per-poll readings are not copied: the report never reads them (they only make
   the file larger). When the schema has the `taps` and `status_log` tables, a tap per
   session (one in 40 declined) and a fault-and-back pair of status rows a week are
   added, with the columns the tables share with `TapFact`/`StatusFact`.
3. `evterm report --db ... --since FIRST --until LAST --format json` runs as its own
   process (what an operator runs over SSH): wall time from start to exit, peak RSS
   from the child's `resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`, and its CPU time
   (user + system: what the wall time is on an otherwise idle machine).

    .venv/bin/python bench/bench_report.py [--years 5] [--per-day 50]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_retention import EPOCH, Copier, columns, make_templates, session_id, templates_for

from terminal.kernel.clock import iso_utc
from terminal.store import Store

REPO_ROOT = Path(__file__).resolve().parents[1]
TARGET_WALL_S = 5.0
TARGET_RSS_MB = 200.0
REPORT_TABLES = ("receipts", "payments", "refunds")
REFUND_EVERY = 50  # card sessions
BIG_REFUND_EVERY = 500
DECLINE_EVERY = 40


def build_journal(folder: Path, years: int, per_day: int) -> dict[str, Any]:
    """The journal of `years` years; returns what it holds."""
    templates = make_templates(folder)
    path = folder / "evterm.db"
    Store.open(path).close()
    source = sqlite3.connect(templates)
    target = sqlite3.connect(path, isolation_level=None)
    target.execute("PRAGMA synchronous=OFF")
    copier = Copier(source, target)
    copier.tables = ("sessions", *REPORT_TABLES)
    tables = {row[0] for row in target.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'")}
    extras = Extras(target, tables)
    drawn = _energy_per_template(copier)
    counter_wh = Decimal(1_000_000)
    days = years * 365
    shift = first_day(days) - EPOCH  # templates_for counts days from EPOCH
    sessions = refunds = cards = 0
    for day in range(days):
        target.execute("BEGIN")
        refund_rows = []
        counters = []
        for n, (template, start_at) in enumerate(templates_for(day, per_day)):
            start = start_at + shift
            sid = session_id("R", day, n)
            copier.copy(template, sid, start)
            counters.append((str(counter_wh), str(counter_wh + drawn[template]), sid))
            counter_wh += drawn[template]
            sessions += 1
            card = template.endswith("card")
            cards += card
            if card and cards % REFUND_EVERY == 0:
                amount = "25.00" if cards % BIG_REFUND_EVERY == 0 else "1.00"
                refund_rows.append((f"RF-{sid}", sid, sid, amount, "EUR", "bench",
                                    iso_utc(start + timedelta(days=1))))
            extras.tap(sid, start, card, sessions)
        extras.week(day, shift)
        target.executemany("INSERT INTO refunds (refund_id, reference, session_id, amount, "
                           "currency, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?)", refund_rows)
        target.executemany("UPDATE sessions SET meter_start_wh = ?, meter_stop_wh = ? "
                           "WHERE id = ?", counters)
        refunds += len(refund_rows)
        target.execute("COMMIT")
    target.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    target.close()
    source.close()
    return {"path": path, "sessions": sessions, "refunds": refunds, "days": days,
            "taps": extras.taps, "status_rows": extras.statuses,
            "extras_skipped": extras.skipped, "file_bytes": path.stat().st_size}


def _energy_per_template(copier: Copier) -> dict[str, Decimal]:
    """What each template's meter counted (the copies chain their counters on this)."""
    cols = copier.cols["sessions"]
    start, stop = cols.index("meter_start_wh"), cols.index("meter_stop_wh")
    return {name: Decimal(rows["sessions"][0][stop]) - Decimal(rows["sessions"][0][start])
            for name, rows in copier.rows.items()}


class Extras:
    """Taps and status rows, when the journal has those tables (their columns named as
    TapFact's and StatusFact's fields; any other column is left to its default)."""

    TAP = ("at", "reader", "kind", "result", "reason", "token", "decision_ms", "session_id")
    STATUS = ("at", "status", "cause")

    def __init__(self, conn: sqlite3.Connection, tables: set[str]) -> None:
        self.conn = conn
        self.taps = self.statuses = 0
        self.skipped: list[str] = []
        self.tap_cols = self._cols("taps", self.TAP, tables)
        self.status_cols = self._cols("status_log", self.STATUS, tables)

    def _cols(self, table: str, wanted: tuple[str, ...], tables: set[str]) -> list[str]:
        if table not in tables:
            self.skipped.append(f"{table}: not in this journal's schema")
            return []
        return [c for c in columns(self.conn, table) if c in wanted]

    def _insert(self, table: str, cols: list[str], values: dict[str, Any]) -> bool:
        try:
            self.conn.execute(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                              f"({', '.join('?' * len(cols))})", [values[c] for c in cols])
        except sqlite3.Error as exc:
            self.skipped.append(f"{table}: {exc}")
            cols.clear()
            return False
        return True

    def tap(self, sid: str, start: Any, card: bool, n: int) -> None:
        if not self.tap_cols:
            return
        declined = n % DECLINE_EVERY == 0
        values = {"at": iso_utc(start - timedelta(seconds=5)), "reader": "pcsc",
                  "kind": "card" if card else "rfid",
                  "result": "declined" if declined else "accepted",
                  "reason": "declined" if declined else "accepted",
                  "token": f"tok{n % 997:05d}", "decision_ms": float(300 + n % 900),
                  "session_id": None if declined else sid}
        self.taps += self._insert("taps", self.tap_cols, values)

    def week(self, day: int, shift: timedelta) -> None:
        if not self.status_cols or day % 7:
            return
        at = EPOCH + shift + timedelta(days=day, hours=3)
        for moment, status in ((at, "Faulted"), (at + timedelta(minutes=20), "Available")):
            values = {"at": iso_utc(moment), "status": status, "cause": "charger_fault"}
            self.statuses += self._insert("status_log", self.status_cols, values)


def first_day(days: int) -> datetime:
    """Midnight (UTC) `days` days before today: the journal's days end yesterday, so the
    report's period lies wholly in the past (a period's part after now counts for
    neither utilisation nor availability)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days)


def run_report(path: Path, days: int) -> dict[str, Any]:
    first = first_day(days).date() - timedelta(days=1)  # local days: Berlin is ahead
    last = first_day(1).date()
    cmd = [sys.executable, "-m", "terminal.cli", "report", "--db", str(path),
           "--station-id", "DE*EVT*E0001", "--timezone", "Europe/Berlin",
           "--since", first.isoformat(), "--until", last.isoformat(), "--format", "json"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          check=False)
    wall_s = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    rss_kb = usage.ru_maxrss
    if done.returncode != 0:
        raise SystemExit(f"evterm report failed ({done.returncode}): {done.stderr}")
    report = json.loads(done.stdout)
    return {"wall_s": round(wall_s, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(rss_kb / 1024, 1),
            "sessions": report["totals"]["sessions"],
            "energy_kwh": report["totals"]["energy_kwh"], "gross": report["totals"]["gross"],
            "irregularities": len(report["irregularities"]), "command": cmd[1:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--years", type=int, default=5)
    parser.add_argument("--per-day", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        started = time.perf_counter()
        journal = build_journal(Path(tmp), args.years, args.per_day)
        build_s = time.perf_counter() - started
        result = run_report(journal["path"], journal["days"])
    out = {
        "bench": "report",
        "method": "5 years of journal rows (sessions, receipts, payments, refunds; taps and "
                  "status rows when the schema has them) copied from sessions journaled "
                  "through the session machine; `evterm report --format json` over all of "
                  "them as its own process; peak RSS of that process",
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "journal": {k: v for k, v in journal.items() if k != "path"},
        "build_s": round(build_s, 1),
        "report": result,
        "targets": {"wall_s": TARGET_WALL_S, "peak_rss_mb": TARGET_RSS_MB},
        "pass": result["wall_s"] < TARGET_WALL_S and result["peak_rss_mb"] < TARGET_RSS_MB,
    }
    print(json.dumps(out, indent=2))
    return 0 if out["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
