"""The daemon's requests to the signing meter, each in its own task.

Provides `SignedRequests`, owned by the daemon:
- `request(action)`: a `BeginSigned` / `EndSigned` the session machine asked for is sent
  (terminal.signed_metering.SignedMetering) in its own task, so the poll goes on; the
  answer (`SignedStart` / `SignedEnd`) is applied as the next event;
- the journal failing under the meter's documents keeps the request, asked again at
  the next poll (a meter answers an end it already signed with the same document); the
  journal failing under the answer's step keeps the answer, applied again at the next
  poll (`again()`, under the daemon's lock); any other error becomes the answer's
  problem (no energy, or not billed by energy) — a session never waits for an answer
  that will not come;
- `settle()`: wait for the requests under way.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import fields, get_logger
from terminal.session import BeginSigned, EndSigned, Event, SignedEnd, SignedStart, Step
from terminal.signed_metering import SignedMetering

log = get_logger("daemon")


class SignedRequests:
    def __init__(self, signing: SignedMetering | None, clock: Clock,
                 apply: Callable[[Event], Awaitable[Step]],
                 apply_locked: Callable[[Event], Awaitable[Step]],
                 outcome: Callable[[], Any],
                 journal_failed: Callable[[str, Exception], None]) -> None:
        self.signing = signing
        self.clock = clock
        self.apply = apply  # takes the daemon's lock
        self.apply_locked = apply_locked  # the caller holds it
        self.outcome = outcome  # the last poll's meter outcome (live values)
        self.journal_failed = journal_failed
        self.tasks: set[asyncio.Task[None]] = set()
        self.unapplied: list[SignedStart | SignedEnd] = []
        self.retry: list[BeginSigned | EndSigned] = []

    def request(self, action: BeginSigned | EndSigned) -> None:
        task = asyncio.create_task(self._answer(action), name="signed-meter")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def settle(self) -> None:
        while self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _answer(self, action: BeginSigned | EndSigned) -> None:
        assert self.signing is not None
        outcome = self.outcome()
        live = outcome.reading if outcome is not None else None
        event: SignedStart | SignedEnd
        try:
            if isinstance(action, BeginSigned):
                event = await self.signing.begin(action, live)
            else:
                event = await self.signing.end(action, live)
        except (sqlite3.Error, OSError) as exc:
            self.journal_failed(action.session_id, exc)
            self.retry.append(action)
            return
        except Exception as exc:
            log.exception("signed meter request failed", extra=fields(
                session=action.session_id, action=type(action).__name__))
            problem = f"terminal error: {type(exc).__name__}: {exc}"
            now = self.clock.now()
            event = SignedStart(now, action.session_id, None, None, problem) \
                if isinstance(action, BeginSigned) else \
                SignedEnd(now, action.session_id, None, None, problem)
        try:
            await self.apply(event)
        except (sqlite3.Error, OSError) as exc:
            self.journal_failed(action.session_id, exc)
            self.unapplied.append(event)

    async def again(self) -> None:
        """At each poll, under the daemon's lock: the answers the journal could not take,
        then the requests whose documents it could not take."""
        unapplied, self.unapplied = self.unapplied, []
        for index, event in enumerate(unapplied):
            try:
                await self.apply_locked(event)
            except (sqlite3.Error, OSError):
                self.unapplied = unapplied[index:] + self.unapplied
                return
        retry, self.retry = self.retry, []
        for action in retry:
            self.request(action)
