"""The retention job: the journal's old data pruned, thinned and anonymised in the
background, one small batch at a time (docs/retention.md).

Provides:
- `Retention(settings, store, clock)`: `run()` is the daemon's background task (through
  `terminal.periodic.run_periodically`); `step()` does at most one batch of work and
  says whether more is waiting. In order: delivered outbox messages past
  `outbox_days`, identifiers past `privacy_days`, sessions past the legal period, then
  the readings of sessions past `thin_readings_after_days`;
- `RetentionSettings.from_config(section)`;
- `thinning_plan(row, readings, max_gap_s)`: the seqs of the samples a closed session
  can lose, checked by pricing the session with and without them: the plan is empty
  unless both prices are identical.

One batch holds the journal's thread for at most `step_budget_ms` (plus its commit), so
a poll's commit waits at most that long; after each batch a passive checkpoint copies
the write-ahead log into the database, so no poll's commit meets a large log to copy.
While work remains the next batch follows after a short pause (`BUSY_PAUSE_S`), else
the job looks again after `interval_s`. Reading a session's readings into values and
pricing it to check its thinning run on a worker thread, not on the journal's.

On failure: an error of a batch is logged and the job goes on at its next run (what
was committed stays; nothing is half done). A session whose thinning does not price
identically, or cannot be priced, keeps every reading and is marked done.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from terminal.billing import Terms, price_readings, sample_of
from terminal.config import RetentionConfig
from terminal.kernel.clock import Clock, iso_utc
from terminal.kernel.logsetup import fields, get_logger
from terminal.periodic import run_periodically
from terminal.pricing.thinning import samples_needed
from terminal.signed_billing import SignedSummary
from terminal.store import AsyncStore
from terminal.store.retention import (
    Budget,
    RawReading,
    RetentionPolicy,
    RetentionTables,
    as_readings,
)

log = get_logger("retention")
T = TypeVar("T")

BUSY_PAUSE_S = 0.2
"""Pause between two batches while work remains (polls and other journal work go first)."""

DAYS_PER_YEAR = 365.25


@dataclass(frozen=True)
class RetentionSettings:
    enabled: bool = True
    policy: RetentionPolicy = field(default_factory=RetentionPolicy)
    reading_interval_s: float | None = None
    budget: Budget = field(default_factory=Budget)
    interval_s: float = 3600.0

    @classmethod
    def from_config(cls, section: RetentionConfig) -> RetentionSettings:
        """From the [retention] section of the configuration."""
        return cls(
            enabled=section.enabled,
            policy=RetentionPolicy(
                outbox_days=section.outbox_days,
                thin_after_days=section.thin_readings_after_days,
                privacy_days=section.privacy_days,
                legal_days=round(section.legal_years * DAYS_PER_YEAR),
            ),
            reading_interval_s=section.reading_interval_s or None,
            budget=Budget(max_rows=section.batch_rows, max_s=section.step_budget_ms / 1000),
            interval_s=section.interval_s,
        )


def thinning_plan(row: dict[str, Any], stored: list[RawReading],
                  max_gap_s: float | None) -> list[int]:
    """The seqs of the samples this closed session can lose with its price unchanged
    (checked by pricing it both ways); [] when none, or when it cannot be priced.
    `stored`: its readings as the journal holds them (`RetentionTables.raw_readings`)."""
    if row.get("tariff_json") is None or len(stored) <= 2:
        return []
    try:
        readings = as_readings(stored)
        terms = Terms.from_json(row["tariff_json"])
        samples = [sample_of(reading) for _, _, reading in readings]
        pinned = [kind != "sample" for _, kind, _ in readings]
        needed = samples_needed(terms.tariff, samples, pinned, terms.timezone,
                                terms.charging_threshold_w, max_gap_s)
        kept = [reading for (_, _, reading), keep in zip(readings, needed, strict=True) if keep]
        full = [reading for _, _, reading in readings]
        signed = SignedSummary.from_rows(row.get("signed_rows") or [])
        tariff = terms.tariff
        if signed is not None:  # priced as the bill is: clamped, by the allowed tariff
            kept, full, tariff = signed.readings(kept), signed.readings(full), \
                signed.tariff(tariff)
        if price_readings(terms, kept, tariff) != price_readings(terms, full, tariff):
            log.warning("thinning would change the price; every reading kept",
                        extra=fields(session=row["id"]))
            return []
    except (ValueError, ArithmeticError, KeyError, TypeError) as exc:
        log.warning("session cannot be priced for thinning; every reading kept",
                    extra=fields(session=row["id"], error=str(exc)))
        return []
    return [seq for (seq, _, _), keep in zip(readings, needed, strict=True) if not keep]


@dataclass
class _Thinning:
    session_id: str
    pending: list[int]


@dataclass
class RunSummary:
    """What the job did since it last found nothing to do."""

    started_at: str | None = None
    outbox_deleted: int = 0
    rows_anonymised: int = 0
    rows_expired: int = 0
    sessions_thinned: int = 0
    readings_deleted: int = 0
    journal_calls: int = 0
    longest_call_ms: float = 0.0

    def did_work(self) -> bool:
        return bool(self.outbox_deleted or self.rows_anonymised or self.rows_expired
                    or self.sessions_thinned or self.readings_deleted)

    def to_json(self, finished: datetime) -> dict[str, Any]:
        return {"started_at": self.started_at, "finished_at": iso_utc(finished),
                "outbox_deleted": self.outbox_deleted, "rows_anonymised": self.rows_anonymised,
                "rows_expired": self.rows_expired, "sessions_thinned": self.sessions_thinned,
                "readings_deleted": self.readings_deleted,
                "journal_calls": self.journal_calls,
                "longest_call_ms": round(self.longest_call_ms, 3)}


class Retention:
    """The retention job on the daemon's journal."""

    def __init__(self, settings: RetentionSettings, store: AsyncStore, clock: Clock,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.timer = timer
        self.tables = RetentionTables(store.store, settings.budget, timer)
        self.wake = asyncio.Event()
        self.summary = RunSummary()
        self._thinning: _Thinning | None = None

    async def run(self) -> None:
        """Forever: batches while there is work, then a look every `interval_s`."""
        if not self.settings.enabled:
            return
        await run_periodically(self.step_and_schedule, self.settings.interval_s, self.wake,
                               lambda exc: log.error("retention batch failed",
                                                     extra=fields(error=repr(exc))))

    async def step_and_schedule(self) -> bool:
        busy = await self.step()
        if busy:
            asyncio.get_running_loop().call_later(BUSY_PAUSE_S, self.wake.set)
        return busy

    async def step(self) -> bool:
        """At most one batch that changes the journal; True when more work waits."""
        now = self.clock.now()
        policy, summary = self.settings.policy, self.summary
        if summary.started_at is None:
            summary.started_at = iso_utc(now)
        if changed := await self._batch(self.tables.prune_outbox,
                                        now - timedelta(days=policy.outbox_days)):
            summary.outbox_deleted += changed
            await self._batch(self.tables.checkpoint)
            return True
        if changed := await self._batch(self.tables.anonymise,
                                        now - timedelta(days=policy.privacy_days), now):
            summary.rows_anonymised += changed
            await self._batch(self.tables.checkpoint)
            return True
        if changed := await self._batch(self.tables.expire,
                                        now - timedelta(days=policy.legal_days)):
            summary.rows_expired += changed
            await self._batch(self.tables.checkpoint)
            return True
        if await self._thin(now):
            return True
        if summary.did_work():
            record = summary.to_json(now)
            await self.store.call(self.tables.record_run, record, now)
            log.info("retention run done", extra=fields(**record))
        self.summary = RunSummary()
        return False

    async def _batch(self, fn: Callable[..., T], *args: Any) -> T:
        """One call on the journal's thread; how long it held the thread is noted."""
        def timed() -> tuple[T, float]:
            started = self.timer()
            result = fn(*args)
            return result, (self.timer() - started) * 1000

        timed.__qualname__ = getattr(fn, "__qualname__", timed.__qualname__)
        result, took_ms = await self.store.call(timed)
        self.summary.journal_calls += 1
        self.summary.longest_call_ms = max(self.summary.longest_call_ms, took_ms)
        return result

    async def _thin(self, now: datetime) -> bool:
        """One batch of thinning: plan the next session, or delete some of its samples,
        or mark it done; False when no session is due."""
        if self._thinning is None:
            before = now - timedelta(days=self.settings.policy.thin_after_days)
            found = await self._batch(self.tables.next_to_thin, before)
            if found is None:
                return False
            row, readings = found
            seqs = await asyncio.to_thread(thinning_plan, row, readings,
                                           self.settings.reading_interval_s)
            self._thinning = _Thinning(row["id"], seqs)
            return True
        plan = self._thinning
        if plan.pending:
            count = len(plan.pending)
            plan.pending = await self._batch(self.tables.drop_readings, plan.session_id,
                                             plan.pending) or []
            self.summary.readings_deleted += count - len(plan.pending)
            await self._batch(self.tables.checkpoint)
            return True
        await self._batch(self.tables.mark_thinned, plan.session_id, now)
        self._thinning = None
        self.summary.sessions_thinned += 1
        return True
