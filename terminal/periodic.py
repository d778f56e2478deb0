"""One way to run work every interval, or at once when woken.

`run_periodically(work, interval_s, wake, on_error)` clears `wake`, awaits `work()`,
then waits up to `interval_s` for `wake`; forever, until cancelled. A wake that comes
while the work runs is kept, so the work runs again at once. An exception from the work
goes to `on_error` and the loop goes on: a failing store or link never ends it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


async def run_periodically(work: Callable[[], Awaitable[object]], interval_s: float,
                           wake: asyncio.Event, on_error: Callable[[Exception], None]) -> None:
    while True:
        wake.clear()
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            on_error(exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval_s)
