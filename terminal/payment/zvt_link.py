"""The one owner of the ZVT payment terminal's connection: payment commands and the card
wait, one at a time.

Provides `ZvtLink(client, ...)`:
- `command(run)`: runs `run(client)` (a pre-authorisation, booking, reversal, Repeat
  receipt ...) alone on the terminal. A Read card wait that is running is aborted first
  (06 B0; the terminal ends it with 6C) and re-armed after the command. The terminal is
  registered (06 00) whenever the connection is new.
- `end_of_day()`: ZVT End-of-day through the same serialisation; the TransactionResult.
- the card wait, as a card reader (drivers.readers.reader.CardReader: `start(emit)`,
  `stop()`, `states()`): once `arm()` was called (after the payments' recovery), the
  terminal is kept waiting for a card with Read card (06 C0) whenever no command wants
  it; a card it reports becomes a `TerminalCardTap` event (card type and scheme, masked
  number, expiry, sequence number: nothing more exists here). After a card the wait
  pauses `pause_after_card_s` so the tap's pre-authorisation finds the terminal free.
  Its state: "ready" (waiting or working), "absent" (cannot connect; tried again every
  `retry_s`).

Errors of the card wait are logged and retried; a command's errors go to its caller
(drivers.zvt.client: ZvtConnectionError, ZvtConnectionLost, ZvtTimeout, ZvtRefused,
ZvtProtocolError).

References read (no code copied): EVerest's RsPaymentTerminal module (it keeps the
terminal in a card read while the charger waits and interrupts it for payments).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from drivers.readers.events import ReaderEvent, ReaderState, TerminalCard, TerminalCardTap
from drivers.readers.reader import Emit
from drivers.zvt.client import ZvtClient, ZvtError
from drivers.zvt.results import TransactionResult
from terminal.kernel.logsetup import fields, get_logger

log = get_logger("zvt")

T = TypeVar("T")

READER_NAME = "zvt"
LOCK_POLL_S = 0.05  # how often a waiting command looks whether the card wait ended
STOP_RETRY_S = 0.2  # close(): how long to wait for the cancelled card wait before cancelling again
SCHEME_OF_CARD_TYPE = {0x05: "girocard", 0x06: "mastercard", 0x08: "amex", 0x0A: "visa",
                       0x0C: "discover", 0x0D: "vpay", 0x0E: "jcb", 0x2E: "maestro"}


def terminal_card(result: TransactionResult) -> TerminalCard | None:
    """The card a Read card reported; None when it reported none (no card, aborted)."""
    if not result.approved or not result.masked_pan:
        return None
    return TerminalCard(
        card_type=result.card_type,
        card_name=result.card_name or result.card_type_name or "",
        masked_pan=result.masked_pan,
        expiry=result.expiry,
        card_sequence=result.card_sequence,
        scheme=SCHEME_OF_CARD_TYPE.get(result.card_type or -1, ""),
    )


class ZvtLink:
    def __init__(self, client: ZvtClient, *, read_card_timeout_s: int = 60,
                 retry_s: float = 5.0, pause_after_card_s: float = 3.0,
                 monotonic_s: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.read_card_timeout_s = read_card_timeout_s
        self.retry_s = retry_s
        self.pause_after_card_s = pause_after_card_s
        self.monotonic_s = monotonic_s
        self._lock = asyncio.Lock()
        self._wanted = 0  # commands waiting for the terminal or running
        self._free = asyncio.Event()  # no command wants the terminal
        self._free.set()
        self._armed = asyncio.Event()
        self._reading = False
        self._registered = False
        self._state = "absent"
        self._emit: Emit | None = None
        self._task: asyncio.Task[None] | None = None
        self._quiet_until = 0.0
        self._stopped = False

    # ---- commands ---------------------------------------------------------------------

    async def command(self, run: Callable[[ZvtClient], Awaitable[T]]) -> T:
        self._wanted += 1
        self._free.clear()
        try:
            await self._acquire()
            try:
                await self._register()
                result = await run(self.client)
                self._state = "ready"
                return result
            finally:
                self._lock.release()
        finally:
            self._wanted -= 1
            if not self._wanted:
                self._free.set()

    async def end_of_day(self) -> TransactionResult:
        """ZVT End-of-day (06 50) through the serialised connection."""
        return await self.command(lambda client: client.end_of_day())

    async def _acquire(self) -> None:
        """The terminal for a command: a running card wait is aborted (once)."""
        aborted = False
        while True:
            if self._reading and not aborted and self.client.running == "read card":
                aborted = True
                try:
                    await self.client.abort()
                except (ZvtError, OSError) as exc:
                    log.info("ZVT card wait: abort failed", extra=fields(error=str(exc)))
            try:
                await asyncio.wait_for(self._lock.acquire(), LOCK_POLL_S)
                return
            except TimeoutError:
                continue

    async def _register(self) -> None:
        if self.client.connected and self._registered:
            return
        await self.client.connect()
        await self.client.register()
        self._registered = True

    # ---- the card wait (a card reader) ------------------------------------------------

    def arm(self) -> None:
        """Start waiting for cards (called once the payments are recovered)."""
        self._armed.set()

    def start(self, emit: Emit) -> None:
        self._emit = emit
        self._task = asyncio.get_running_loop().create_task(self._wait_for_cards(),
                                                            name="zvt-cards")

    def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()

    def states(self) -> dict[str, str]:
        return {READER_NAME: self._state}

    async def close(self) -> None:
        self.stop()
        task = self._task
        # Python 3.11's asyncio.wait_for returns a read that completed in the instant its
        # task was cancelled and drops the cancellation: cancel again until the card wait
        # has ended (it also leaves its loop once stopped)
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=STOP_RETRY_S)
        await self.client.close()

    async def _wait_for_cards(self) -> None:
        await self._armed.wait()
        while not self._stopped:
            await self._free.wait()
            pause_s = self._quiet_until - self.monotonic_s()
            if pause_s > 0:
                await asyncio.sleep(pause_s)
                continue
            try:
                result = await self._read_once()
            except (ZvtError, OSError) as exc:
                self._note_trouble(exc)
                await asyncio.sleep(self.retry_s)
                continue
            except Exception:  # never let the card wait die; the next round tries again
                log.exception("ZVT card wait failed; retrying")
                self._registered = False
                await asyncio.sleep(self.retry_s)
                continue
            if result is None:
                continue
            card = terminal_card(result)
            if card is not None:
                self._quiet_until = self.monotonic_s() + self.pause_after_card_s
                self._put(TerminalCardTap(READER_NAME, card, self.monotonic_s()))

    async def _read_once(self) -> TransactionResult | None:
        async with self._lock:
            if self._wanted:
                return None
            await self._register()
            self._reading = True
            try:
                result = await self.client.read_card(self.read_card_timeout_s)
            finally:
                self._reading = False
        if self._state != "ready":
            self._state = "ready"
            self._put_state()
        return result

    def _note_trouble(self, exc: BaseException) -> None:
        self._registered = False
        if self._state != "absent":
            log.warning("ZVT payment terminal not reachable; retrying",
                        extra=fields(error=str(exc)))
            self._state = "absent"
            self._put_state()

    def _put_state(self) -> None:
        self._put(ReaderState(READER_NAME, self._state))

    def _put(self, event: ReaderEvent) -> None:
        if self._emit is not None:
            self._emit(event)
