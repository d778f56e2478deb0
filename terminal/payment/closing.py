"""The end-of-day closing: reconcile, repair, Z-report (docs/reconciliation.md).

Provides `Closings(ledger, backend, store, clock, settings, repairs)`:
- `close(trigger)`: one closing, one at a time (a lock): the period runs from the last
  closing's end to now; the ledger's closing (terminal.payment.ledger) is compared with
  the journal's payments OF THE LEDGER'S PATH (`payments.via` = the ledger's source: a
  board that switched paths does not see the other path's payments as missing)
  (terminal.payment.reconcile; on the ZVT path, whose ledger has totals only, also the
  journal-side checks of terminal.payment.zvt_repairs); the closing and its Z-report are
  committed with the repairs planned (status 'repairing'), THEN the repairs are sent
  through `repairs` (terminal.payment.repairs `Repairer` of the ledger's path: the
  gateway's by default, `ZvtRepairs` on the ZVT path), each idempotent so a repeat
  after a crash books or releases nothing twice, each outcome journaled as it comes;
  finally the Z-report (terminal.payment.zreport) is marked done and queued for the
  backend in one transaction (outbox kind `z_report`). Returns the report (JSON) with
  its `status`: 'done', or 'repairing' while a repair waits for the gateway.
- `finish_unfinished()`: closings left 'repairing' (a crash, a repair waiting for the
  gateway) get their repairs sent again and are finished (`close` does this first).
- `last()`: the latest Z-report (JSON) or None; `recent(limit)`.
- `run()`: first finishes what a crash left unfinished, then the daily closing at
  `[payment] closing_time` (local time of `[station] timezone`); a closing that fails
  (ledger unreachable, journal error) is logged and tried again every `retry_s` until
  it succeeds. A closing time the terminal was down at is not made up: the next
  closing's period is longer.
- `next_closing(now, closing_time, zone)`: when the next daily closing is due.

On failure: `close` raises `LedgerUnavailable` (nothing stored) when the ledger cannot be
asked; a repair the gateway or the terminal refuses stays listed for the operator
('refused'); one that cannot be asked (gateway or ZVT terminal unreachable) is
'waiting' and sent again at the next closing. Store errors propagate: what cannot be
journaled is not acted on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from terminal.backend.closing_messages import Z_REPORT_KIND, ZReport
from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import fields, get_logger
from terminal.payment.ledger import Ledger, LedgerUnavailable
from terminal.payment.reconcile import reconcile
from terminal.payment.repairs import GatewayRepairs, Repairer
from terminal.payment.zreport import Repair, plan_repairs, with_repairs, z_report
from terminal.payment.zvt_repairs import STUCK, journal_findings
from terminal.store.closings import ClosingStore

if TYPE_CHECKING:
    from terminal.backend.api import Backend
    from terminal.store import AsyncStore

log = get_logger("payment")


@dataclass(frozen=True)
class ClosingSettings:
    station_id: str
    closing_time: time  # local, [payment] closing_time
    timezone: str  # [station] timezone
    request_timeout_s: float
    retry_s: float = 300.0
    # ZVT: a payment still in flight this long after its session closed is stuck
    stale_after_s: float = 3600.0


def parse_closing_time(text: str) -> time:
    """HH:MM as a time; ValueError naming the option otherwise."""
    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"[payment] closing_time: {text!r} is not a time HH:MM") from None


def next_closing(now: datetime, closing_time: time, zone: str) -> datetime:
    """The first moment at or after `now` (aware) whose local time is `closing_time`."""
    local = now.astimezone(ZoneInfo(zone))
    due = datetime.combine(local.date(), closing_time, ZoneInfo(zone))
    if due < local:
        due = datetime.combine(local.date() + timedelta(days=1), closing_time, ZoneInfo(zone))
    return due


class Closings:
    def __init__(self, ledger: Ledger, backend: Backend, store: AsyncStore, clock: Clock,
                 settings: ClosingSettings, repairs: Repairer | None = None) -> None:
        if repairs is None and ledger.source == "gateway":
            repairs = GatewayRepairs(backend, settings.request_timeout_s)
        if repairs is not None and repairs.path != ledger.source:
            raise ValueError(f"closing: the {ledger.source} ledger's repairs cannot go to "
                             f"the {repairs.path} path")
        self.repairs = repairs
        self.ledger = ledger
        self.backend = backend
        self.store = store
        self.clock = clock
        self.settings = settings
        self._lock = asyncio.Lock()
        self._postponed = 0  # daily closings in a row the ledger could not be asked for

    def _tables(self) -> ClosingStore:
        return ClosingStore(self.store.store)

    async def _call(self, method: str, *args: Any) -> Any:
        tables = self._tables()
        return await self.store.call(getattr(tables, method), *args)

    async def last(self) -> dict[str, Any] | None:
        row = await self._call("last")
        return None if row is None else dict(row["report"], status=row["status"])

    async def recent(self, limit: int = 10) -> list[dict[str, Any]]:
        return [dict(r["report"], status=r["status"]) for r in await self._call("recent", limit)]

    async def close(self, trigger: str) -> dict[str, Any]:
        async with self._lock:
            await self._finish_unfinished()
            last = await self._call("last")
            since = None if last is None else datetime.fromisoformat(last["period_end"])
            until = self.clock.now()
            if since is not None and until <= since:  # ids and periods never overlap
                until = since + timedelta(milliseconds=1)
            closing = await self.ledger.closing(since, until)
            until = max(until, closing.until)  # the ZVT end-of-day ends when it is done
            # read after the ledger: a payment that changed since `until` is in flight
            # for the comparison (terminal.payment.reconcile) and in the next period
            refs = {r for tx in closing.transactions for r in (tx.reference, tx.psp_reference)}
            payments = await self._call("payments", since, until, refs, closing.source)
            refunded = await self._call("refunded", [p.reference for p in payments])
            result = reconcile(payments, refunded, closing)
            if closing.source == "zvt":  # totals only: add what the journal shows
                stale = await self._call(
                    "stale", "zvt", [s.value for s in STUCK],
                    until - timedelta(seconds=self.settings.stale_after_s))
                result = replace(result, findings=result.findings + tuple(
                    journal_findings(stale, payments, closing.currency)))
            closing_id = "z" + until.strftime("%y%m%d%H%M%S%f")[:-3]  # to the ms
            repairs = plan_repairs(result.findings, closing_id)
            report = z_report(closing_id, self.settings.station_id, trigger, closing,
                              result, repairs, until)
            await self._call("add", closing_id, closing.source, trigger, since, until,
                             report, until)
            log.info("end-of-day closing", extra=fields(
                closing=closing_id, source=closing.source, payments=len(payments),
                findings=len(result.findings), repairs=len(repairs)))
            return await self._repair_and_finish(closing_id, report)

    async def finish_unfinished(self) -> int:
        async with self._lock:
            return await self._finish_unfinished()

    async def _finish_unfinished(self) -> int:
        rows = await self._call("unfinished")
        for row in rows:
            log.warning("finishing an interrupted closing", extra=fields(closing=row["id"]))
            await self._repair_and_finish(row["id"], row["report"])
        return len(rows)

    async def _repair_and_finish(self, closing_id: str, report: dict[str, Any]
                                 ) -> dict[str, Any]:
        repairs = [Repair.from_json(r) for r in report["repairs"]]
        for i, repair in enumerate(repairs):
            if repair.status in ("done", "refused"):
                continue
            repairs[i] = await self._send(repair)
            report = with_repairs(report, tuple(repairs))
            await self._call("update_report", closing_id, report, self.clock.now())
        if any(r.status == "waiting" for r in repairs):
            return dict(report, status="repairing")  # tried again by the next closing
        sent = ZReport.from_json(report)  # what the backend receives, checked
        await self._call("finish", closing_id, sent.to_json(), self.clock.now(),
                         Z_REPORT_KIND)
        self.backend.wake()
        if report["remaining"]:
            log.error("end-of-day closing: discrepancies for the operator", extra=fields(
                closing=closing_id, remaining=len(report["remaining"])))
        return dict(report, status="done")

    async def _send(self, repair: Repair) -> Repair:
        if self.repairs is None:
            return repair.outcome("refused", f"no repair path for the {self.ledger.source} "
                                  "ledger")
        return await self.repairs.send(repair)

    async def run(self) -> None:
        """The daily closing; runs until cancelled. A closing a crash left unfinished
        is finished first."""
        settings = self.settings
        await self._attempt(self.finish_unfinished)
        while True:
            due = next_closing(self.clock.now(), settings.closing_time, settings.timezone)
            await self.clock.sleep(max(0.0, (due - self.clock.now()).total_seconds()))
            while not await self._attempt(lambda: self.close("daily")):
                await self.clock.sleep(settings.retry_s)
            await self.clock.sleep(61)  # past the minute of the closing time

    async def _attempt(self, work: Callable[[], Awaitable[object]]) -> bool:
        """True when `work` ran; a failure is logged (the loop tries again later)."""
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except LedgerUnavailable as exc:
            self._postponed += 1  # the first at WARNING, the repeats once an hour
            level = logging.WARNING if self._postponed % 12 == 1 else logging.DEBUG
            log.log(level, "end-of-day closing postponed", extra=fields(
                error=exc.reason, attempts=self._postponed))
            return False
        except Exception:
            log.exception("end-of-day closing failed; tried again later")
            return False
        self._postponed = 0
        return True
