"""From the card readers to the tap handler, one tap at a time.

Provides `Identification(readers, taps)`: `start()` starts every reader
(drivers.readers.reader.CardReader) with an `emit` that hands its events, from the
reader's thread, to one queue on the event loop; one task gives them to the
`TapHandler` (terminal.identification.taps) in order. `states()` merges the readers' states for the
status snapshot; `dropped_taps` counts what a full queue dropped. `close()` stops the
readers and the task.

On failure: a reader that is down is reported through its state, never fatal; taps
queue up to `QUEUE_SIZE` and further ones are dropped with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from drivers.readers.events import ReaderEvent
from drivers.readers.reader import CardReader
from terminal.identification.taps import TapHandler
from terminal.kernel.logsetup import fields, get_logger

log = get_logger("identification")

QUEUE_SIZE = 32


class Identification:
    def __init__(self, readers: Sequence[CardReader], taps: TapHandler) -> None:
        self.readers = list(readers)
        self.taps = taps
        self.queue: asyncio.Queue[ReaderEvent] = asyncio.Queue(QUEUE_SIZE)
        self.dropped_taps = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()

        def emit(event: ReaderEvent) -> None:  # any thread
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(self.offer, event)

        self._task = asyncio.create_task(self._consume(), name="taps")
        for reader in self.readers:
            reader.start(emit)

    def offer(self, event: ReaderEvent) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped_taps += 1
            log.warning("card tap dropped: too many waiting",
                        extra=fields(reader=getattr(event, "reader", "?"),
                                     dropped=self.dropped_taps))

    async def _consume(self) -> None:
        while True:
            event = await self.queue.get()
            await self.taps.handle(event)

    def last_taps(self) -> dict[str, dict[str, Any]]:
        """The last outcome per reader (time, kind, result, reason; nothing of the card)."""
        return dict(self.taps.last_tap)

    def states(self) -> dict[str, str]:
        states: dict[str, str] = {}
        for reader in self.readers:
            states.update(reader.states())
        return states

    async def close(self) -> None:
        for reader in self.readers:
            reader.stop()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
