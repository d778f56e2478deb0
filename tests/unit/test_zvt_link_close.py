"""ZvtLink.close() ends the card wait even when a cancellation is lost: Python 3.11's
asyncio.wait_for returns a read that completed in the instant its task was cancelled and
drops the cancellation (seen as a test hanging in CI); close() cancels again, and a
stopped link starts no new Read card."""

from __future__ import annotations

import asyncio
import contextlib

from terminal.payment.zvt_link import ZvtLink


class SwallowingClient:
    """A terminal client whose Read card loses the first cancellation, as wait_for can."""

    def __init__(self) -> None:
        self.connected = True
        self.running: str | None = None
        self.reads = 0
        self.closed = False

    async def connect(self) -> None:
        pass

    async def register(self) -> None:
        pass

    async def read_card(self, timeout_s: int) -> None:
        self.reads += 1
        self.running = "read card"
        try:
            # the read "completed" as the task was cancelled: the cancel is gone
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(timeout_s)
            await asyncio.sleep(timeout_s)  # the terminal's answer to the next round
        finally:
            self.running = None

    async def close(self) -> None:
        self.closed = True


def test_close_ends_a_card_wait_whose_cancellation_was_lost() -> None:
    client = SwallowingClient()

    async def scenario() -> None:
        link = ZvtLink(client, read_card_timeout_s=3600)  # type: ignore[arg-type]
        link.start(lambda event: None)
        link.arm()
        while client.running != "read card":
            await asyncio.sleep(0.01)
        closing = asyncio.ensure_future(link.close())
        await asyncio.wait({closing}, timeout=10)  # a hang guard, not a speed target
        assert closing.done(), "close() still waits for the card wait"
        closing.result()

    asyncio.run(scenario())
    assert client.closed
    assert client.reads == 1  # no new Read card after the stop
