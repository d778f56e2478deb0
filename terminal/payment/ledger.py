"""The acquirer side of the end-of-day closing: what the gateway or the ZVT terminal
knows about the card payments of a period (docs/reconciliation.md).

Provides:
- `Closing`: one ledger's answer: its `source` ("gateway" or "zvt"), the period, the
  gateway's transactions one by one (`transactions`, terminal.backend.closing_messages
  `SettlementTransaction`) or the ZVT terminal's totals per card group (`totals`,
  `SchemeTotal`: count and amount);
- `Ledger`: the interface (`source`, `async closing(since, until) -> Closing`);
- `GatewayLedger(backend, station_id, timeout_s)`: the built-in path: the gateway's
  settlement batch (backend request `settlement_batch`);
- `ZvtLedger(end_of_day, currency, clock)`: the ZVT terminal's End-of-day (06 50),
  through a callable `end_of_day() -> TransactionResult` that the owner of the ZVT
  connection provides. It closes the terminal's batch: its totals are for everything
  booked since the terminal's previous end-of-day, whatever `since` says; with a clock,
  the closing's `until` is when the End-of-day was done.

On failure: `LedgerUnavailable(reason)` when the ledger cannot be asked (backend
unreachable or no answer in time; ZVT terminal not reachable or refusing); nothing is
changed then, and the closing is tried again later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from terminal.backend.api import BackendUnavailable
from terminal.backend.closing_messages import SettlementBatchRequest, SettlementTransaction

if TYPE_CHECKING:
    from drivers.zvt.results import TransactionResult
    from terminal.backend.api import Backend
    from terminal.kernel.clock import Clock


class LedgerUnavailable(Exception):
    """The ledger could not be asked; `reason` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class SchemeTotal:
    """The count and the amount booked of one scheme (a ZVT card group)."""

    scheme: str
    count: int
    amount: Decimal


@dataclass(frozen=True)
class Closing:
    source: str  # "gateway" or "zvt"
    since: datetime | None
    until: datetime
    currency: str
    transactions: tuple[SettlementTransaction, ...] = ()  # gateway: one by one
    totals: tuple[SchemeTotal, ...] | None = None  # zvt: per card group only


class Ledger(Protocol):
    @property
    def source(self) -> str: ...

    async def closing(self, since: datetime | None, until: datetime) -> Closing: ...


class GatewayLedger:
    """The gateway's settlement batch over the backend link."""

    source = "gateway"

    def __init__(self, backend: Backend, station_id: str, currency: str,
                 timeout_s: float) -> None:
        self.backend = backend
        self.station_id = station_id
        self.currency = currency
        self.timeout_s = timeout_s

    async def closing(self, since: datetime | None, until: datetime) -> Closing:
        request = SettlementBatchRequest(self.station_id, since, until)
        try:
            batch = await asyncio.wait_for(self.backend.settlement_batch(request),
                                           self.timeout_s)
        except BackendUnavailable as exc:
            raise LedgerUnavailable(f"gateway: {exc.reason}") from None
        except TimeoutError:
            raise LedgerUnavailable(f"gateway: no settlement batch within "
                                    f"{self.timeout_s:g} s") from None
        return Closing(self.source, since, until, self.currency, batch.transactions)


class ZvtLedger:
    """The ZVT terminal's end-of-day: totals and counts per card group."""

    source = "zvt"

    def __init__(self, end_of_day: Callable[[], Awaitable[TransactionResult]],
                 currency: str, clock: Clock | None = None) -> None:
        self.end_of_day = end_of_day
        self.currency = currency
        self.clock = clock  # the closing ends when the end-of-day is done

    async def closing(self, since: datetime | None, until: datetime) -> Closing:
        from drivers.zvt.client import ZvtError
        from drivers.zvt.messages import TOTAL_GROUPS

        try:
            result = await self.end_of_day()
        except ZvtError as exc:
            raise LedgerUnavailable(f"ZVT terminal: {exc}") from None
        except OSError as exc:
            raise LedgerUnavailable(f"ZVT terminal: {exc.strerror or exc}") from None
        if not result.approved:
            raise LedgerUnavailable(f"ZVT terminal refused the end-of-day: "
                                    f"{result.result_text}")
        if result.totals is None:
            raise LedgerUnavailable("ZVT terminal: the end-of-day carried no totals")
        totals = tuple(SchemeTotal(group, result.totals.counts[group],
                                   result.totals_amount(group)) for group in TOTAL_GROUPS)
        if self.clock is not None:
            until = max(until, self.clock.now())
        return Closing(self.source, since, until, result.currency, (), totals)
