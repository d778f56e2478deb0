"""Every tap's decision, journaled for the operator's report (docs/reports.md).

Provides `TapLog(store)`: `record(...)` is called by the tap handler after the screen was
told the outcome; it only schedules the write (one row of the journal's `taps` table,
terminal.store.report_tables) on the store's thread, so the decision is never slowed
down by the journal. `drain()` waits for the writes still under way (tests, shutdown).

What is kept: when, which reader, card or RFID, accepted or declined, the reason code,
the id token (a card's token or an RFID UID; never a card number: the store refuses
text that looks like one), card presence to decision in ms, the session it opened.

On failure: a write that fails is logged (one line per failed tap) and forgotten; a tap
never fails for it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from terminal.kernel.logsetup import fields, get_logger

if TYPE_CHECKING:
    from terminal.kernel.clock import Clock
    from terminal.store import AsyncStore

log = get_logger("taps")

JOURNALED_RESULTS = frozenset({"accepted", "declined"})
"""The outcomes that are decisions about a token (a stop, "in use", a technician's
menu or a failed read are not)."""


class TapLog:
    def __init__(self, store: AsyncStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self._writes: set[asyncio.Task[None]] = set()

    def record(self, *, reader: str, kind: str, result: str, reason: str,
               token: str | None, decision_ms: float | None,
               session_id: str | None) -> None:
        """Schedule the tap's row (only accepted and declined outcomes are kept)."""
        if result not in JOURNALED_RESULTS:
            return
        at = self.clock.now()
        task = asyncio.get_running_loop().create_task(self._write(
            at=at, reader=reader, kind=kind, result=result, reason=reason, token=token,
            decision_ms=decision_ms, session_id=session_id))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _write(self, **row: object) -> None:
        store = self.store
        try:
            await store.call(store.store.add_tap, **row)
        except Exception as exc:  # a full disk, a locked journal: the tap stands
            log.error("tap not journaled", extra=fields(reader=row.get("reader"),
                                                        error=f"{type(exc).__name__}: {exc}"))

    async def drain(self) -> None:
        """Wait for the writes still under way."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)
