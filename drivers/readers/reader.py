"""What every card reader driver provides, and the one place that builds them.

- `CardReader`: `start(emit)` starts the reader's own thread, which calls `emit(event)`
  with every `drivers.readers.events` event (`emit` is safe to call from any thread);
  `stop()` ends it; `states()` maps each reader name to "ready", "absent" or
  "service_down".
- `ReaderSettings`: which readers a terminal has (the daemon fills it from `[readers]`).
- `open_readers(settings)`: the configured readers, not yet started. A new reader is
  one driver file plus one line here.
- `queue_emitter(loop, queue)`: an `emit` that hands events to an asyncio queue on
  `loop` (a full queue drops the event with a log line).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from drivers.readers.events import ReaderEvent
from terminal.kernel.logsetup import fields, get_logger

if TYPE_CHECKING:
    from drivers.readers.emv import TerminalParams

log = get_logger("readers")

Emit = Callable[[ReaderEvent], None]


class CardReader(Protocol):
    def start(self, emit: Emit) -> None: ...

    def stop(self) -> None: ...

    def states(self) -> dict[str, str]: ...


@dataclass(frozen=True)
class ReaderSettings:
    """pcsc: use PC/SC readers (names containing one of `pcsc_readers`, all when empty;
    `pcsc_socket` is pcscd's socket, empty for the default); `terminal_params` gives the
    EMV terminal data at the moment of a tap. serial_rfid_device: a 125 kHz reader's
    serial device (empty for none) at `serial_rfid_baud`."""

    pcsc: bool = False
    pcsc_readers: tuple[str, ...] = ()
    pcsc_socket: str = ""
    terminal_params: Callable[[], TerminalParams] | None = None
    serial_rfid_device: str = ""
    serial_rfid_baud: int = 9600


def open_readers(settings: ReaderSettings) -> list[CardReader]:
    readers: list[CardReader] = []
    if settings.pcsc:
        from drivers.readers.pcsc import open_pcsc

        readers.append(open_pcsc(settings))
    if settings.serial_rfid_device:
        from drivers.readers.serial_rfid import SerialRfidCardReader

        readers.append(SerialRfidCardReader(settings.serial_rfid_device,
                                            settings.serial_rfid_baud))
    return readers


def queue_emitter(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[ReaderEvent]) -> Emit:
    def put(event: ReaderEvent) -> None:  # runs on the loop
        try:
            queue.put_nowait(event)
        except asyncio.QueueFull:
            log.warning("card reader event dropped: queue full",
                        extra=fields(event=type(event).__name__,
                                     reader=getattr(event, "reader", "?")))

    def emit(event: ReaderEvent) -> None:
        with contextlib.suppress(RuntimeError):  # loop already closed
            loop.call_soon_threadsafe(put, event)

    return emit
