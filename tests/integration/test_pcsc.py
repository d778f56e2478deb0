"""PcscReaders against a real private pcscd with vpcd slots; the cards are tapped by
`evterm sim tap` in their own processes (fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import statistics
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from smartcard import scard as real_scard

from drivers.readers import pcsc
from drivers.readers.emv import TerminalParams
from drivers.readers.events import EmvTap, ReaderEvent, ReaderState, RfidTap, TapFailed
from drivers.readers.pcsc import SERVICE, PcscReaders
from drivers.readers.reader import queue_emitter
from hw_mocks import pcscd as pcscd_module
from hw_mocks.cards import RFID_UIDS, TEST_PANS
from hw_mocks.pcscd import PcscdError, PcscdHandle, free_port_block
from terminal.kernel.cards import mask_pan
from tests.integration.conftest import TapProcess

PARAMS = TerminalParams(country_code="276", currency_code="978", amount_minor=5000)
GAP_S = 0.5  # between two cards in one vpcd slot: pcscd polls presence every 0.4 s
REMOVED = "card removed too early - tap again"
UNREADABLE = "card could not be read"

Tap = Callable[..., TapProcess]


class Watch:
    """The driver's queue, with the monotonic time each event was taken from it."""

    def __init__(self, readers: PcscReaders, queue: asyncio.Queue) -> None:
        self.readers = readers
        self.queue = queue
        self.received_s = 0.0

    async def next(self, timeout_s: float = 3.0) -> ReaderEvent:
        event = await asyncio.wait_for(self.queue.get(), timeout_s)
        self.received_s = time.monotonic()
        return event

    async def tap_event(self, timeout_s: float = 3.0) -> RfidTap | EmvTap | TapFailed:
        """The next tap event; reader state events are skipped."""
        deadline_s = time.monotonic() + timeout_s
        while True:
            event = await self.next(max(0.01, deadline_s - time.monotonic()))
            if not isinstance(event, ReaderState):
                return event

    async def until_ready(self, reader_names: list[str], timeout_s: float = 3.0
                          ) -> list[ReaderState]:
        """ReaderState events until pcscd and every named reader are ready."""
        wanted = {SERVICE, *reader_names}
        seen: list[ReaderState] = []
        while wanted:
            event = await self.next(timeout_s)
            assert isinstance(event, ReaderState), event
            seen.append(event)
            if event.state == "ready":
                wanted.discard(event.reader)
        return seen

    async def nothing_for(self, duration_s: float) -> None:
        with contextlib.suppress(TimeoutError):
            event = await self.next(duration_s)
            pytest.fail(f"unexpected event {event!r}")


@contextlib.asynccontextmanager
async def watching(pcscd: PcscdHandle, name_filter: tuple[str, ...] = (),
                   wait_ready: bool = True, params: TerminalParams = PARAMS,
                   **options: Any) -> AsyncIterator[Watch]:
    queue: asyncio.Queue = asyncio.Queue()
    readers = PcscReaders(lambda: params, name_filter, **options)
    readers.start(queue_emitter(asyncio.get_running_loop(), queue))
    watch = Watch(readers, queue)
    try:
        if wait_ready:
            await watch.until_ready([n for n in pcscd.reader_names
                                     if not name_filter or any(p in n for p in name_filter)])
        yield watch
    finally:
        await asyncio.to_thread(readers.stop)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def left(tap: TapProcess) -> dict:
    return await asyncio.to_thread(tap.wait_left)


@pytest.mark.parametrize("card", ["rfid-4", "rfid-7", "rfid-10"])
def test_rfid_card_gives_its_uid(pcscd: PcscdHandle, tap: Tap, card: str) -> None:
    async def body() -> None:
        async with watching(pcscd) as watch:
            held = tap(card, hold_s=0.6)
            event = await watch.tap_event()
            assert event == RfidTap(pcscd.reader_names[0], RFID_UIDS[card], "iso14443",
                                    event.at_monotonic_s)
            assert len(event.uid) in (8, 14, 20)
            assert held.in_field["at_monotonic_s"] <= event.at_monotonic_s <= watch.received_s
            assert (await left(held))["reason"] == "hold_elapsed"

    run(body())


@pytest.mark.parametrize(("card", "scheme", "aid"), [
    ("visa", "visa", "A0000000031010"),
    ("mastercard", "mastercard", "A0000000041010"),
    ("visa-61xx", "visa", "A0000000031010"),  # GET RESPONSE through pcscd
    ("mastercard-6cxx", "mastercard", "A0000000041010"),  # resend with Le
    ("girocard", "girocard", "A0000003591010028001"),
])
def test_payment_card_gives_emv_tap(pcscd: PcscdHandle, tap: Tap, card: str, scheme: str,
                                    aid: str) -> None:
    async def body() -> None:
        async with watching(pcscd) as watch:
            held = tap(card, hold_s=0.8)
            event = await watch.tap_event()
            assert isinstance(event, EmvTap), event
            assert event.reader == pcscd.reader_names[0]
            assert (event.read.scheme, event.read.aid) == (scheme, aid)
            assert event.read.card.pan == TEST_PANS[card]
            assert TEST_PANS[card] not in repr(event)
            assert mask_pan(TEST_PANS[card]) in repr(event)
            await left(held)

    run(body())


@pytest.mark.parametrize(("card", "reason", "tap_again", "code"), [
    ("broken-tlv", UNREADABLE, True, "unreadable"),
    ("unsupported-aid", "payment card of an unknown scheme", False, "not_supported"),
    ("phone-6986", "see phone for instructions - tap again", True, "see_phone"),
])
def test_unreadable_or_unsupported_payment_card_fails_with_a_reason(
        pcscd: PcscdHandle, tap: Tap, card: str, reason: str, tap_again: bool,
        code: str) -> None:
    async def body() -> None:
        async with watching(pcscd) as watch:
            held = tap(card, hold_s=0.6)
            event = await watch.tap_event()
            assert event == TapFailed(pcscd.reader_names[0], reason, tap_again,
                                      event.at_monotonic_s, code)
            await left(held)

    run(body())


DEFAULT_SCHEMES = ("visa", "vpay", "mastercard", "maestro", "amex", "discover", "jcb",
                   "unionpay", "interac")


def test_girocard_not_accepted_is_refused_and_a_co_badged_card_reads_maestro(
        pcscd: PcscdHandle, tap: Tap) -> None:
    async def body() -> None:
        params = TerminalParams("276", "978", 5000, accepted_schemes=DEFAULT_SCHEMES)
        async with watching(pcscd, params=params) as watch:
            held = tap("girocard", hold_s=0.6)
            event = await watch.tap_event()
            assert event == TapFailed(pcscd.reader_names[0],
                                      "payment card of a scheme not accepted here", False,
                                      event.at_monotonic_s, "not_accepted")
            assert (await left(held))["apdus"] == 2  # the UID and SELECT PPSE, no more
            await asyncio.sleep(GAP_S)
            held = tap("girocard-maestro", hold_s=0.8)
            event = await watch.tap_event()
            assert isinstance(event, EmvTap), event
            assert (event.read.scheme, event.read.aid) == ("maestro", "A0000000043060")
            await left(held)

    run(body())


@pytest.mark.parametrize(("card", "answered"), [
    ("rfid-4", 0),  # gone before the UID
    ("rfid-7", 1),  # gone at SELECT PPSE
    ("visa", 3),  # gone in the middle of the EMV read
])
def test_card_removed_mid_read(pcscd: PcscdHandle, tap: Tap, card: str,
                               answered: int) -> None:
    async def body() -> None:
        async with watching(pcscd) as watch:
            held = tap(card, hold_s=3.0, remove_after_apdus=answered)
            event = await watch.tap_event()
            assert event == TapFailed(pcscd.reader_names[0], REMOVED, True,
                                      event.at_monotonic_s, "removed")
            gone = await left(held)
            assert (gone["reason"], gone["apdus"]) == ("removed_after_apdus", answered)
            await watch.nothing_for(GAP_S)

    run(body())


def test_two_readers_at_once(pcscd: PcscdHandle, tap: Tap) -> None:
    async def body() -> None:
        async with watching(pcscd) as watch:
            first = tap("rfid-4", reader=0, hold_s=1.0)
            second = tap("visa", reader=1, hold_s=1.0)
            events = [await watch.tap_event(), await watch.tap_event()]
            by_reader = {event.reader: event for event in events}
            assert set(by_reader) == set(pcscd.reader_names)
            rfid, payment = by_reader[pcscd.reader_names[0]], by_reader[pcscd.reader_names[1]]
            assert isinstance(rfid, RfidTap) and rfid.uid == RFID_UIDS["rfid-4"]
            assert isinstance(payment, EmvTap) and payment.read.scheme == "visa"
            await left(first)
            await left(second)
            await watch.nothing_for(GAP_S)

    run(body())


def test_one_tap_per_insertion(pcscd: PcscdHandle, tap: Tap) -> None:
    async def body() -> None:
        async with watching(pcscd) as watch:
            held = tap("rfid-4", hold_s=1.8)
            assert isinstance(await watch.tap_event(), RfidTap)
            await watch.nothing_for(1.2)  # still in the field: not read again
            await left(held)
            await asyncio.sleep(GAP_S)
            again = tap("rfid-4", hold_s=0.6)
            assert isinstance(await watch.tap_event(), RfidTap)
            await left(again)

    run(body())


def test_card_already_in_the_field_is_read_once_at_start(pcscd: PcscdHandle,
                                                         tap: Tap) -> None:
    async def body() -> None:
        held = tap("rfid-7", hold_s=1.5)
        await asyncio.sleep(GAP_S)  # pcscd has seen it
        async with watching(pcscd) as watch:
            event = await watch.tap_event()
            assert isinstance(event, RfidTap) and event.uid == RFID_UIDS["rfid-7"]
            await watch.nothing_for(0.6)
        await left(held)

    run(body())


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_pcscd_killed_and_restarted(pcscd: PcscdHandle, tap: Tap) -> None:
    records = Records()
    logger = logging.getLogger("evterm.pcsc")
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.INFO)

    async def body() -> None:
        async with watching(pcscd) as watch:
            assert watch.readers.states() == dict.fromkeys([SERVICE, *pcscd.reader_names],
                                                           "ready")
            pcscd.kill()
            down = await watch.next()
            assert (down.reader, down.state) == (SERVICE, "service_down")
            assert watch.readers.states() == {SERVICE: "service_down"}
            await watch.nothing_for(1.0)  # retries are not reported again
            await asyncio.to_thread(pcscd.start)
            await watch.until_ready(pcscd.reader_names, timeout_s=4.0)
            held = tap("rfid-10", hold_s=0.6)
            event = await watch.tap_event()
            assert isinstance(event, RfidTap) and event.uid == RFID_UIDS["rfid-10"]
            await left(held)

    try:
        run(body())
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    assert records.messages.count("pcscd unavailable") == 1, records.messages  # not per retry
    assert records.messages.count("pcscd available") == 2, records.messages


def test_pcscd_not_running_at_start(pcscd: PcscdHandle, tap: Tap) -> None:
    async def body() -> None:
        pcscd.stop()
        async with watching(pcscd, wait_ready=False) as watch:
            down = await watch.next()
            assert (down.reader, down.state) == (SERVICE, "service_down")
            await asyncio.to_thread(pcscd.start)
            await watch.until_ready(pcscd.reader_names, timeout_s=4.0)

    run(body())


def test_name_filter(pcscd: PcscdHandle, tap: Tap) -> None:
    second = pcscd.reader_names[1]

    async def body() -> None:
        async with watching(pcscd, name_filter=(second[-5:],)) as watch:
            assert watch.readers.states() == {SERVICE: "ready", second: "ready"}
            ignored = tap("rfid-4", reader=0, hold_s=0.6)
            await watch.nothing_for(0.8)
            await left(ignored)
            seen = tap("rfid-7", reader=1, hold_s=0.6)
            event = await watch.tap_event()
            assert event.reader == second
            await left(seen)

    run(body())


def test_stop_is_quick(pcscd: PcscdHandle) -> None:
    async def body() -> None:
        async with watching(pcscd) as watch:
            started_s = time.monotonic()
            await asyncio.to_thread(watch.readers.stop)
            assert time.monotonic() - started_s < 0.5

    run(body())


def test_latency_from_card_to_queue(pcscd: PcscdHandle, tap: Tap) -> None:
    """vpcd connect -> RfidTap taken from the queue: within pcscd's 0.4 s presence poll
    plus the read."""
    latencies_s: list[float] = []

    async def body() -> None:
        async with watching(pcscd) as watch:
            for _ in range(3):
                held = tap("rfid-4", hold_s=0.6)
                assert isinstance(await watch.tap_event(), RfidTap)
                latencies_s.append(watch.received_s - held.in_field["at_monotonic_s"])
                await left(held)
                await asyncio.sleep(GAP_S)

    run(body())
    assert max(latencies_s) < 1.0, latencies_s
    assert statistics.median(latencies_s) < 0.6, latencies_s


class FakeScard:
    """A PC/SC service whose readers come and go (vpcd slots cannot be unplugged, and
    pcscd 1.9.9 does not re-read its reader configuration while running)."""

    def __init__(self) -> None:
        self.readers = ["reader A", "reader B"]
        self._reported = 0  # reader count the PnP pseudo reader last reported

    def __getattr__(self, name: str) -> Any:
        return getattr(real_scard, name)  # the constants

    def SCardEstablishContext(self, scope: int) -> tuple[int, int]:
        return real_scard.SCARD_S_SUCCESS, 1

    def SCardReleaseContext(self, ctx: int) -> int:
        return real_scard.SCARD_S_SUCCESS

    def SCardCancel(self, ctx: int) -> int:
        return real_scard.SCARD_S_SUCCESS

    def SCardListReaders(self, ctx: int, groups: list) -> tuple[int, list[str]]:
        if not self.readers:
            return real_scard.SCARD_E_NO_READERS_AVAILABLE, []
        return real_scard.SCARD_S_SUCCESS, list(self.readers)

    def SCardGetStatusChange(self, ctx: int, timeout_ms: int,
                             states: list) -> tuple[int, list]:
        answers = []
        changed = False
        for reader, current in states:
            if reader == "\\\\?PnP?\\Notification":
                count = len(self.readers) << 16
                if current != count:
                    changed = True
                    answers.append((reader, count | real_scard.SCARD_STATE_CHANGED, []))
                else:
                    answers.append((reader, current, []))
            elif reader not in self.readers:
                changed = True
                answers.append((reader, real_scard.SCARD_STATE_UNKNOWN
                                | real_scard.SCARD_STATE_CHANGED, []))
            elif current == real_scard.SCARD_STATE_UNAWARE:
                changed = True
                answers.append((reader, real_scard.SCARD_STATE_EMPTY
                                | real_scard.SCARD_STATE_CHANGED, []))
            else:
                answers.append((reader, current, []))
        if changed:
            return real_scard.SCARD_S_SUCCESS, answers
        time.sleep(timeout_ms / 1000)
        return real_scard.SCARD_E_TIMEOUT, answers


def test_reader_unplugged_and_back(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeScard()
    monkeypatch.setattr(pcsc, "scard", fake)

    async def body() -> None:
        queue: asyncio.Queue = asyncio.Queue()
        readers = PcscReaders(lambda: PARAMS, poll_timeout_s=0.05)
        readers.start(queue_emitter(asyncio.get_running_loop(), queue))
        watch = Watch(readers, queue)
        try:
            await watch.until_ready(["reader A", "reader B"])
            fake.readers.remove("reader B")
            assert await watch.next() == ReaderState("reader B", "absent")
            assert readers.states() == {SERVICE: "ready", "reader A": "ready",
                                        "reader B": "absent"}
            fake.readers.append("reader B")
            assert await watch.next() == ReaderState("reader B", "ready")
            fake.readers.clear()
            assert {await watch.next(), await watch.next()} == {
                ReaderState("reader A", "absent"), ReaderState("reader B", "absent")}
            await watch.nothing_for(0.3)
        finally:
            await asyncio.to_thread(readers.stop)

    run(body())


def test_full_queue_drops_events_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pcsc, "scard", FakeScard())
    records = Records()
    logger = logging.getLogger("evterm.readers")
    logger.addHandler(records)
    level = logger.level
    logger.setLevel(logging.INFO)

    async def body() -> None:
        queue: asyncio.Queue = asyncio.Queue(maxsize=1)
        readers = PcscReaders(lambda: PARAMS, poll_timeout_s=0.05)
        readers.start(queue_emitter(asyncio.get_running_loop(), queue))
        try:
            await asyncio.sleep(0.3)
            assert queue.get_nowait() == ReaderState(SERVICE, "ready")
            assert readers.states() == dict.fromkeys([SERVICE, "reader A", "reader B"],
                                                     "ready")
        finally:
            await asyncio.to_thread(readers.stop)

    try:
        run(body())
    finally:
        logger.removeHandler(records)
        logger.setLevel(level)
    assert records.messages.count("card reader event dropped: queue full") == 2, records.messages


def listening(port: int) -> socket.socket:
    sock = socket.socket()
    sock.bind(("0.0.0.0", port))
    sock.listen(1)
    return sock


def test_vpcd_port_in_use(pcsc_folder: str, monkeypatch: pytest.MonkeyPatch) -> None:
    taken = free_port_block(2)
    with listening(taken + 1):
        fixed = PcscdHandle(pcsc_folder, readers=2, base_port=taken)
        try:
            with pytest.raises(PcscdError,
                               match=rf"port\(s\) \[{taken}, {taken + 1}\] \(in use\?\)"):
                fixed.start()
            assert not fixed.running
        finally:
            fixed.stop()
        free = free_port_block(2)
        blocks = iter([taken, free])
        monkeypatch.setattr(pcscd_module, "free_port_block", lambda count: next(blocks))
        picked = PcscdHandle(pcsc_folder, readers=2)  # picks the taken block first
        picked.start()
        try:
            assert picked.ports == [free, free + 1]
        finally:
            picked.stop()
