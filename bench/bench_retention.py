"""Benchmark of the retention policy; prints one JSON object to stdout.

Targets: 10 years at 50 sessions a day fit in under 1 GB under the default policy
([retention] defaults, docs/retention.md), and no batch of the job holds the journal
for more than 20 ms (a poll's commit waits at most one batch).

How (the JSON says the same under "method"):
1. Templates: sessions journaled as the daemon journals them (every poll of a 1 Hz
   meter through the session machine into `Store.commit`, terms frozen at the start,
   the receipt from `bill_from_journal`), of 20, 30 and 45 minutes, some paid by card.
2. Phase "policy": `--days` days (default 45) of 50 sessions a day, each a copy of a
   template under a new id and start time (readings and all, SQL mirroring the schema),
   messages delivered a minute after they were queued, payments captured. Then the real
   `Retention` job runs to idle at the end of that span with the default policy
   (thinning after 30 days is due for the first sessions), every journal call timed.
   Recomputed bills of thinned sessions are compared with their receipts.
3. Phase "ten years": the rows of the sessions the job thinned and anonymised in phase
   1 are copied (new ids, times spread over 10 years) for every day older than the
   thinning period (with their delivered messages while within outbox_days), and
   unthinned copies of the templates for the recent days, so the file
   holds what 10 years under the policy leave; its size is measured after a
   checkpoint. The job is then run on it for one day's worth of due work (thinning,
   pruning, anonymising, and the sessions passing the legal period), every call timed.
   The 10 years are built by replicating what the job produced rather than by running
   the job 182,500 times (that would take hours); "extrapolated": false because the
   file measured really holds 10 years of rows.

    .venv/bin/python bench/bench_retention.py [--days 45] [--years 10] [--per-day 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stats import percentile

from terminal.billing import bill_from_journal
from terminal.config import parse_config
from terminal.kernel.clock import iso_utc
from terminal.retention import Retention, RetentionSettings
from terminal.store import AsyncStore, PaymentStatus, Store
from tests.unit.retention_helpers import charge

TARGET_DB_BYTES = 1_000_000_000
TARGET_HOLD_MS = 20.0
EPOCH = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)  # a Monday; the tariff is valid from 2025
TEMPLATE_MINUTES = (10, 15, 25)  # 50 a day of these: about 14 h of charging a day
CARD_EVERY = 3  # one session in three paid by card
SESSION_TABLES = ("readings", "transitions", "receipts", "payments", "refunds", "outbox")


class BenchClock:
    speed = 1.0

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    def monotonic_s(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def make_templates(folder: Path) -> Path:
    """Sessions journaled through the session machine (one per length, card and rfid)."""
    path = folder / "templates.db"
    store = Store.open(path)
    store.conn.execute("PRAGMA synchronous=OFF")
    energy = Decimal(1_000_000)
    for i, minutes in enumerate(TEMPLATE_MINUTES):
        for card in (False, True):
            sid = f"T-{minutes}-{'card' if card else 'rfid'}"
            auth = ({"card_scheme": "visa", "card_last4": "1111", "payment_reference": sid,
                     "cost_cap": Decimal(50)} if card else None)
            energy = charge(store, sid, EPOCH + timedelta(hours=i * 3 + card), minutes * 60,
                            token=f"k1.token{i}" if card else f"04A1B2C3{i:02d}",
                            source="card" if card else "rfid", energy_wh=energy,
                            idle_after_s=90, auth=auth)
            if card:
                store.add_payment(reference=sid, session_id=sid, token=f"k1.token{i}",
                                  masked_pan="411111******1111", scheme="visa", last4="1111",
                                  currency="EUR", amount_requested=Decimal(50), at=EPOCH)
                store.update_payment(sid, EPOCH, status=PaymentStatus.CAPTURED,
                                     psp_reference=f"PSP-{sid}",
                                     amount_captured=store.amount_charged(sid))
    store.close()
    return path


class Copier:
    """Copies a template session's rows under a new id, shifted in time (SQL mirroring
    the schema: every column copied, ids and times replaced)."""

    TIME_COLUMNS: ClassVar[dict[str, tuple[str, ...]]] = {
        "sessions": ("opened_at", "closed_at", "started_at", "stopped_at", "thinned_at",
                     "anonymised_at"),
        "readings": ("meter_time",), "transitions": ("at",), "receipts": ("created_at",),
        "payments": ("created_at", "updated_at"), "refunds": ("at",),
        "outbox": ("created_at", "delivered_at"),
    }

    def __init__(self, source: sqlite3.Connection, target: sqlite3.Connection) -> None:
        self.target = target
        self.rows: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
        self.cols = {t: columns(source, t) for t in ("sessions", *SESSION_TABLES)}
        self.t0: dict[str, datetime] = {}
        self.tables: tuple[str, ...] = ("sessions", *SESSION_TABLES)
        target.executemany("INSERT OR IGNORE INTO terms (id, digest, terms_json) VALUES "
                           "(?, ?, ?)", source.execute("SELECT id, digest, terms_json FROM terms"))
        for (sid, opened) in source.execute("SELECT id, opened_at FROM sessions"):
            self.t0[sid] = datetime.fromisoformat(opened)
            self.rows[sid] = {
                table: source.execute(
                    f"SELECT * FROM {table} WHERE {'id' if table == 'sessions' else 'session_id'}"
                    " = ?", (sid,)).fetchall()
                for table in ("sessions", *SESSION_TABLES)}

    @staticmethod
    def _shift(value: Any, delta: timedelta) -> Any:
        if not isinstance(value, str):
            return value
        moment = datetime.fromisoformat(value)
        shifted = moment + delta
        return iso_utc(shifted) if value.endswith("Z") else shifted.isoformat()

    def copy(self, template: str, sid: str, start: datetime) -> None:
        delta = start - self.t0[template]
        for table in self.tables:
            cols = self.cols[table]
            times = {cols.index(c) for c in self.TIME_COLUMNS[table]}
            out = []
            for row in self.rows[template][table]:
                values = list(row)
                for i in times:
                    values[i] = self._shift(values[i], delta)
                for name in ("id", "session_id", "reference", "payment_reference"):
                    if name in cols and values[cols.index(name)] == template:
                        values[cols.index(name)] = sid
                if table == "outbox":
                    values[cols.index("id")] = None
                    key = cols.index("idempotency_key")
                    values[key] = values[key].replace(template, sid)
                    values[cols.index("payload")] = values[cols.index("payload")].replace(
                        template, sid)
                if table == "receipts":
                    values[cols.index("receipt_json")] = values[
                        cols.index("receipt_json")].replace(template, sid)
                    values[cols.index("receipt_text")] = values[
                        cols.index("receipt_text")].replace(template, sid)
                if table == "payments":
                    values[cols.index("psp_reference")] = f"PSP-{sid}"
                out.append(values)
            if out:
                marks = ",".join("?" * len(cols))
                self.target.executemany(
                    f"INSERT INTO {table} ({','.join(cols)}) VALUES ({marks})", out)


def templates_for(day: int, per_day: int) -> list[tuple[str, datetime]]:
    """(template, start) of the sessions of one day: spread from 06:00 over 16 hours."""
    found = []
    for n in range(per_day):
        minutes = TEMPLATE_MINUTES[(day + n) % len(TEMPLATE_MINUTES)]
        kind = "card" if n % CARD_EVERY == 0 else "rfid"
        start = EPOCH + timedelta(days=day, hours=6, seconds=n * 16 * 3600 // per_day)
        found.append((f"T-{minutes}-{kind}", start))
    return found


def session_id(prefix: str, day: int, n: int) -> str:
    """A UUID as the daemon gives sessions (36 characters), from the day and number."""
    return str(uuid.UUID(int=(ord(prefix[0]) << 64) | (day * 1000 + n)))


def fill(copier: Copier, first_day: int, days: int, per_day: int, prefix: str,
         templates: list[str] | None = None) -> int:
    conn = copier.target
    count = 0
    for day in range(first_day, first_day + days):
        conn.execute("BEGIN")
        for n, (template, start) in enumerate(templates_for(day, per_day)):
            if templates is not None:
                template = templates[(day + n) % len(templates)]
            copier.copy(template, session_id(prefix, day, n), start)
            count += 1
        conn.execute("COMMIT")
    return count


def db_bytes(path: Path) -> dict[str, int]:
    os.sync()  # what was built without fsync is on disk: no job's fsync pays for it
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size, pages, free = (conn.execute(f"PRAGMA {p}").fetchone()[0]
                              for p in ("page_size", "page_count", "freelist_count"))
    conn.close()
    return {"file_bytes": path.stat().st_size, "live_bytes": (pages - free) * page_size,
            "free_bytes": free * page_size}


def run_job(store: Store, now: datetime, max_steps: int = 10_000_000) -> dict[str, Any]:
    """The real job to idle at `now`; every journal call timed."""
    config = parse_config({"station": {"id": "ST1", "operator": "Op"}})
    settings = RetentionSettings.from_config(config.retention)
    journal = AsyncStore(store)
    job = Retention(settings, journal, BenchClock(now))
    holds: list[float] = []
    slowest: list[tuple[float, str]] = []
    real = journal.call

    async def timed_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
        def timed() -> Any:
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                took = (time.perf_counter() - started) * 1000
                holds.append(took)
                slowest.append((took, getattr(fn, "__qualname__", str(fn))))
                slowest.sort(reverse=True)
                del slowest[5:]
        return await real(timed)

    journal.call = timed_call  # type: ignore[method-assign]

    async def go() -> int:
        for steps in range(max_steps):
            if not await job.step():
                return steps
        return max_steps

    started = time.perf_counter()
    steps = asyncio.run(go())
    journal._pool.shutdown(wait=True)
    return {"steps": steps, "journal_calls": len(holds), "wall_s": round(
        time.perf_counter() - started, 1), "hold_ms": {
        "p50": round(percentile(holds, 0.5), 3), "p99": round(percentile(holds, 0.99), 3),
        "max": round(max(holds, default=0.0), 3)},
        "slowest_calls_ms": [(round(ms, 3), name) for ms, name in slowest],
        "last_run": store.conn.execute(
            "SELECT value_json FROM retention_state WHERE key = 'last_run'").fetchone()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--per-day", type=int, default=50)
    args = parser.parse_args()
    config = parse_config({"station": {"id": "ST1", "operator": "Op"}}).retention
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        source = sqlite3.connect(make_templates(folder))
        per_session = {
            sid: {"readings": source.execute("SELECT COUNT(*) FROM readings WHERE "
                                             "session_id = ?", (sid,)).fetchone()[0]}
            for (sid,) in source.execute("SELECT id FROM sessions")}

        # ---- phase 1: the policy on a span of days, the real job
        path = folder / "policy.db"
        store = Store.open(path)
        store.conn.execute("PRAGMA synchronous=OFF")  # building; the job runs with FULL
        copier = Copier(source, store.conn)
        created = fill(copier, 0, args.days, args.per_day, "S-")
        store.conn.execute("UPDATE outbox SET delivered_at = created_at")
        store.conn.execute("PRAGMA synchronous=FULL")
        before = db_bytes(path)
        # the job runs when every session of the span is past the privacy period (and so
        # past the thinning and outbox periods): all of them are due
        now = EPOCH + timedelta(days=args.days + config.privacy_days + 1)
        # bills recomputed before and after (the copies' stored receipts keep their
        # template's times, so the recomputation is the reference)
        sample = [row[0] for row in store.conn.execute("SELECT id FROM sessions ORDER BY id")]
        sample = sample[:: max(1, len(sample) // 100)]
        bills = {sid: bill_from_journal(store, sid) for sid in sample}
        policy_run = run_job(store, now)
        thinned = [row[0] for row in store.conn.execute(
            "SELECT id FROM sessions WHERE thinned_at IS NOT NULL ORDER BY id")]
        checked = mismatched = 0
        for sid, bill in bills.items():
            again = bill_from_journal(store, sid)
            checked += 1
            mismatched += bill is None or again is None or again.receipt != bill.receipt
        kept_readings = store.conn.execute(
            "SELECT COUNT(*) FROM readings WHERE session_id IN (SELECT id FROM sessions "
            "WHERE thinned_at IS NOT NULL)").fetchone()[0]
        after = db_bytes(path)
        store.close()

        # ---- phase 2: ten years as the policy leaves them
        days_total = round(args.years * 365.25)
        recent_days = config.thin_readings_after_days
        ten = folder / "ten_years.db"
        big = Store.open(ten)
        big.conn.execute("PRAGMA synchronous=OFF")
        done = sqlite3.connect(path)
        thinned_copier = Copier(done, big.conn)
        done_templates = [sid for sid in thinned if sid in thinned_copier.t0]
        old_days = days_total - recent_days
        fill(thinned_copier, 0, old_days, args.per_day, "Y-", done_templates)
        recent = Copier(source, big.conn)
        fill(recent, old_days, recent_days, args.per_day, "Y-")
        # the delivered messages of thinned sessions still within outbox_days
        recent.tables = ("outbox",)
        fill(recent, old_days - max(0, config.outbox_days - recent_days),
             max(0, config.outbox_days - recent_days), args.per_day, "Y-")
        recent.tables = ("sessions", *SESSION_TABLES)
        big.conn.execute("UPDATE outbox SET delivered_at = created_at "
                         "WHERE delivered_at IS NULL")
        # what the job has not reached yet at the end of year 10: today's due work
        big.conn.execute("PRAGMA synchronous=FULL")
        sessions_total = big.conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        ten_before = db_bytes(ten)
        steady = run_job(big, EPOCH + timedelta(days=days_total + 1))
        big.close()
        ten_after = db_bytes(ten)
        source.close()
        done.close()
        total_s = round(time.perf_counter() - t0, 1)

    max_hold = max(policy_run["hold_ms"]["max"], steady["hold_ms"]["max"])
    result = {
        "bench": "retention",
        "machine": platform.machine(),
        "python": platform.python_version(),
        "policy": {"outbox_days": config.outbox_days,
                   "thin_readings_after_days": config.thin_readings_after_days,
                   "reading_interval_s": config.reading_interval_s,
                   "privacy_days": config.privacy_days, "legal_years": config.legal_years,
                   "step_budget_ms": config.step_budget_ms, "batch_rows": config.batch_rows},
        "method": ("templates journaled through the session machine (1 Hz polls), copied "
                   "by SQL; phase 1 runs the real job on --days days; phase 2 holds 10 "
                   "years: the job's thinned+anonymised sessions replicated for every day "
                   "past the thinning period (their delivered messages too while within "
                   "outbox_days), unthinned sessions for the recent days, then the job "
                   "runs on it for the day's due work; sessions between the thinning and "
                   "the privacy period are stored anonymised (their authorisation about "
                   "100 B smaller than in the field: under 1 MB in all)"),
        "extrapolated": False,
        "templates": per_session,
        "policy_span": {"days": args.days, "sessions": created, "before": before,
                        "after": after, "sessions_thinned": len(thinned),
                        "readings_per_thinned_session": round(
                            kept_readings / max(1, len(thinned)), 1),
                        "bills_recomputed": checked, "bills_different": mismatched,
                        "job": policy_run},
        "ten_years": {"years": args.years, "sessions_per_day": args.per_day,
                      "sessions": sessions_total, "db": ten_before, "after_job": ten_after,
                      "job": steady},
        "db_bytes": ten_before["file_bytes"],
        "target_db_bytes": TARGET_DB_BYTES,
        "max_hold_ms": max_hold,
        "target_hold_ms": TARGET_HOLD_MS,
        "total_s": total_s,
        "pass": ten_before["file_bytes"] < TARGET_DB_BYTES and max_hold <= TARGET_HOLD_MS
        and mismatched == 0,
    }
    print(json.dumps(result, indent=2, default=str))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
