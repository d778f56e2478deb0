"""The daemon's requests to the signing meter never leave a session waiting for an
answer that will not come: a failure becomes the answer's problem, and what the journal
could not take is kept and tried again at the next poll."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime

from terminal.session import BeginSigned, EndSigned, SignedEnd, SignedStart
from terminal.signed_requests import SignedRequests

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return NOW


class Signing:
    def __init__(self) -> None:
        self.begin_error: Exception | None = None
        self.end_errors: list[Exception] = []
        self.ends = 0

    async def begin(self, action: BeginSigned, live: object) -> SignedStart:
        if self.begin_error is not None:
            raise self.begin_error
        return SignedStart(NOW, action.session_id, None, None, "x")

    async def end(self, action: EndSigned, live: object) -> SignedEnd:
        self.ends += 1
        if self.end_errors:
            raise self.end_errors.pop(0)
        return SignedEnd(NOW, action.session_id, None, None, None)


def make(signing: Signing, commits_fail: list[bool]):
    applied: list[object] = []
    failures: list[str] = []

    async def apply(event: object) -> None:
        if commits_fail and commits_fail.pop(0):
            raise sqlite3.OperationalError("database or disk is full")
        applied.append(event)

    requests = SignedRequests(signing, Clock(), apply, apply, lambda: None,  # type: ignore[arg-type]
                              lambda session, exc: failures.append(session))
    return requests, applied, failures


def test_an_unexpected_error_becomes_the_answers_problem():
    signing = Signing()
    signing.begin_error = ValueError("garbage from the meter")
    requests, applied, _ = make(signing, [])

    async def go():
        requests.request(BeginSigned("S-1", None))
        await requests.settle()

    asyncio.run(go())
    (event,) = applied
    assert isinstance(event, SignedStart) and event.reading is None
    assert event.problem == "terminal error: ValueError: garbage from the meter"


def test_an_answer_the_journal_cannot_take_is_applied_again_at_the_next_poll():
    signing = Signing()
    requests, applied, failures = make(signing, [True, True, False])

    async def go():
        requests.request(EndSigned("S-1", "E"))
        await requests.settle()
        assert applied == [] and failures == ["S-1"]
        await requests.again()  # disk still full
        assert applied == []
        await requests.again()  # space again

    asyncio.run(go())
    assert len(applied) == 1 and isinstance(applied[0], SignedEnd)
    assert signing.ends == 1  # the meter was asked once


def test_a_document_the_journal_cannot_take_is_asked_for_again():
    signing = Signing()
    signing.end_errors = [sqlite3.OperationalError("database or disk is full")]
    requests, applied, failures = make(signing, [])

    async def go():
        requests.request(EndSigned("S-1", "E"))
        await requests.settle()
        assert applied == [] and failures == ["S-1"]
        await requests.again()
        await requests.settle()

    asyncio.run(go())
    assert signing.ends == 2 and len(applied) == 1
