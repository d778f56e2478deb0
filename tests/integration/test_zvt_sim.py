"""`evterm sim zvt` as its own process, driven by the real ZVT client (drivers/zvt):
registration, pre-authorisation approved / declined / approved in part, book total
below the reservation (the rest released), partial reversal, reversal, abort, status
enquiry, end-of-day totals per card group, intermediate statuses and receipt lines, a
connection dropped mid-transaction and the outcome learnt afterwards, the state kept
across a restart, and bad options or requests named."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.zvt import codes
from drivers.zvt.client import (
    ZvtClient,
    ZvtConnectionError,
    ZvtConnectionLost,
    ZvtRefused,
    ZvtTimeout,
)
from hw_mocks.ports import free_port
from hw_mocks.rig import wait_ready
from hw_mocks.station_sim import control

TID = 29001006


@dataclass
class ZvtSim:
    ready: dict
    proc: subprocess.Popen
    control_path: str
    state_path: str

    @property
    def port(self) -> int:
        return int(self.ready["port"])

    def client(self, **kwargs: object) -> ZvtClient:
        return ZvtClient("127.0.0.1", self.port, **kwargs)  # type: ignore[arg-type]

    def control(self, cmd: str, **fields: object) -> dict:
        reply = control(self.control_path, {"cmd": cmd, **fields})
        assert reply["ok"], reply
        return reply["status"]


@pytest.fixture
def start_zvt() -> Iterator:
    """start_zvt(*options, folder=None) -> ZvtSim; the control socket and the state file
    in a short temporary folder (a Unix socket path stays under 108 bytes)."""
    procs: list[subprocess.Popen] = []
    dirs: list[str] = []

    def start(*args: str, folder: str | None = None) -> ZvtSim:
        if folder is None:
            folder = tempfile.mkdtemp(prefix="evzvt-")
            dirs.append(folder)
        control_path = os.path.join(folder, "control.sock")
        state_path = os.path.join(folder, "state.json")
        proc = subprocess.Popen(
            [sys.executable, "-m", "terminal.cli", "sim", "zvt", "--tcp",
             f"127.0.0.1:{free_port()}", "--control", control_path, "--state", state_path,
             *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return ZvtSim(wait_ready(proc, "zvt simulator"), proc, control_path, state_path)

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=5)
    for folder in dirs:
        shutil.rmtree(folder, ignore_errors=True)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_ready_line_and_registration(start_zvt) -> None:
    sim = start_zvt()
    assert sim.ready["event"] == "ready" and sim.ready["terminal_id"] == TID
    assert sim.ready["control"] == sim.control_path

    async def scenario() -> None:
        async with sim.client() as client:
            registration = await client.register(codes.DEFAULT_CONFIG)
            assert registration.terminal_id == TID and registration.status_byte == 0
        async with sim.client(currency="CHF") as client:
            with pytest.raises(ZvtRefused, match="84 6F") as refused:
                await client.register()
            assert refused.value.code == 0x6F

    run(scenario())
    assert sim.control("status")["config_byte"] == codes.DEFAULT_CONFIG


def test_preauth_approved_with_receipt_and_intermediate_statuses(start_zvt) -> None:
    sim = start_zvt()
    seen: list[str] = []

    async def scenario():
        async with sim.client(on_intermediate=lambda code, text: seen.append(text)) as client:
            await client.register()
            return await client.preauthorize(Decimal("50.00"))

    result = run(scenario())
    assert result.approved and result.result_text == "approved (no error)"
    assert result.amount == Decimal("50.00") and result.currency == "EUR"
    assert (result.trace_number, result.receipt_number) == (1, 1)
    assert result.card_type_name == "Visa" and result.card_name == "Visa"
    assert result.masked_pan == "************0010" and result.terminal_id == TID
    assert result.intermediate == ("insert card", "PT is waiting for response from FEP")
    assert seen == list(result.intermediate)
    assert result.receipt_lines[0] == "** RESERVIERUNG **"
    assert "BETRAG EUR 50,00" in result.receipt_lines
    assert sim.control("status")["reservations"]["1"]["amount_minor"] == 5000


def test_preauth_declined_by_option_and_by_control(start_zvt) -> None:
    sim = start_zvt("--decline", "05")

    async def preauth(amount: str):
        async with sim.client() as client:
            return await client.preauthorize(Decimal(amount))

    declined = run(preauth("20.00"))
    assert not declined.approved and declined.result_code == 0x05
    assert declined.result_text == "declined by the card issuer (do not honour)"
    assert declined.receipt_number is None
    sim.control("set", decline=None)
    sim.control("next", decline="51")
    host = run(preauth("20.00"))
    assert host.result_code == 0x51 and "host code 51" in host.result_text
    assert run(preauth("20.00")).approved  # "next" held for one transaction
    assert list(sim.control("status")["reservations"]) == ["1"]


def test_card_removed_gives_card_not_readable(start_zvt) -> None:
    sim = start_zvt("--card-removed")

    async def scenario():
        async with sim.client() as client:
            return await client.preauthorize(Decimal("20.00"))

    result = run(scenario())
    assert result.result_code == codes.CARD_NOT_READABLE and not result.approved
    assert sim.control("status")["reservations"] == {}


def test_partial_approval_and_book_total_below_it(start_zvt) -> None:
    sim = start_zvt("--partial", "30.00")

    async def scenario():
        async with sim.client() as client:
            held = await client.preauthorize(Decimal("50.00"))
            too_much = await client.book_total(held.receipt_number, Decimal("30.01"))
            booked = await client.book_total(held.receipt_number, Decimal("12.34"),
                                              held.trace_number)
            again = await client.book_total(held.receipt_number, Decimal("1.00"))
            return held, too_much, booked, again

    held, too_much, booked, again = run(scenario())
    assert held.approved and held.amount == Decimal("30.00")
    assert too_much.result_code == codes.PREAUTH_AMOUNT_WRONG
    assert booked.approved and booked.amount == Decimal("12.34")
    assert booked.original_trace == held.trace_number
    assert booked.receipt_number != held.receipt_number
    assert again.result_code == codes.PREAUTH_ERROR  # the reservation is closed
    status = sim.control("status")
    assert status["reservations"] == {}
    assert status["released_minor"] == 3000 - 1234
    assert [e["amount_minor"] for e in status["batch"].values()] == [1234]


def test_partial_reversal_then_reversal(start_zvt) -> None:
    sim = start_zvt()

    async def scenario():
        async with sim.client() as client:
            held = await client.preauthorize(Decimal("50.00"))
            part = await client.partial_reversal(held.receipt_number, Decimal("10.00"))
            reserved = sim.control("status")["reservations"][str(held.receipt_number)]
            full = await client.reverse(held.receipt_number)
            twice = await client.reverse(held.receipt_number)
            unknown = await client.reverse(999)
            return part, reserved, full, twice, unknown

    part, reserved, full, twice, unknown = run(scenario())
    assert part.approved and part.amount == Decimal("10.00")
    assert reserved["amount_minor"] == 4000
    assert full.approved and full.amount == Decimal("40.00")
    assert twice.result_code == codes.ALREADY_REVERSED
    assert unknown.result_code == codes.REVERSAL_NOT_POSSIBLE
    assert sim.control("status")["reservations"] == {}


def test_abort_while_the_card_is_awaited(start_zvt) -> None:
    sim = start_zvt()
    sim.control("next", slow_s=30)

    async def scenario():
        waiting = asyncio.Event()
        async with sim.client(on_intermediate=lambda code, text: waiting.set()) as client:
            task = asyncio.create_task(client.preauthorize(Decimal("50.00")))
            await waiting.wait()
            await client.abort()
            return await task

    result = run(scenario())
    assert result.result_code == codes.ABORTED and not result.approved
    assert sim.control("status")["reservations"] == {}


def test_abort_without_a_running_command_is_acknowledged(start_zvt) -> None:
    sim = start_zvt()

    async def scenario() -> None:
        async with sim.client() as client:
            await client.abort()
            assert (await client.status_enquiry()).ready

    run(scenario())


def test_status_enquiry(start_zvt) -> None:
    sim = start_zvt()

    async def scenario():
        async with sim.client() as client:
            return await client.status_enquiry()

    status = run(scenario())
    assert status.ready and status.text == "PT ready" and status.terminal_id == TID


def test_end_of_day_totals_per_card_group(start_zvt) -> None:
    sim = start_zvt()

    async def book(amount: str, booked: str) -> None:
        async with sim.client() as client:
            held = await client.preauthorize(Decimal(amount))
            assert (await client.book_total(held.receipt_number, Decimal(booked))).approved

    async def end_of_day():
        async with sim.client() as client:
            return await client.end_of_day()

    run(book("50.00", "12.34"))
    run(book("50.00", "7.66"))
    sim.control("set", card="girocard")
    run(book("30.00", "30.00"))
    result = run(end_of_day())
    assert result.approved and result.amount == Decimal("50.00")
    totals = result.totals
    assert totals is not None
    assert totals.counts["Visa"] == 2 and totals.amounts_minor["Visa"] == 2000
    assert totals.counts["girocard"] == 1 and result.totals_amount("girocard") == Decimal("30.00")
    assert totals.total_count == 3
    assert result.receipt_lines[0] == "** KASSENSCHNITT **"
    empty = run(end_of_day())
    assert empty.totals is not None and empty.totals.total_count == 0
    assert empty.amount == Decimal("0.00")


def test_slow_transaction_keeps_alive_and_a_text_block_receipt(start_zvt) -> None:
    sim = start_zvt("--slow-s", "1.5")

    async def scenario():
        async with sim.client(response_timeout_s=1.0) as client:
            await client.register(codes.DEFAULT_CONFIG | codes.PRINT_TEXT_BLOCK)
            return await client.preauthorize(Decimal("5.00"))

    result = run(scenario())
    assert result.approved
    assert result.intermediate.count("please wait") == 3
    assert result.receipt_lines[0] == "** RESERVIERUNG **" and len(result.receipt_lines) == 7


def test_connection_dropped_after_the_decision_then_the_outcome_is_asked(start_zvt) -> None:
    sim = start_zvt()
    sim.control("next", drop_after="status")

    async def scenario():
        client = sim.client()
        with pytest.raises(ZvtConnectionLost) as lost:
            await client.preauthorize(Decimal("50.00"))
        assert not client.connected
        last = await client.last_transaction()   # connects again
        status = await client.status_enquiry()
        await client.close()
        return lost.value, last, status

    lost, last, status = run(scenario())
    assert lost.acknowledged and lost.command == "pre-authorisation"
    assert lost.partial is not None and lost.partial.approved
    assert "connection lost after the terminal took it" in str(lost)
    assert last.approved and last.receipt_number == lost.partial.receipt_number
    assert last.amount == Decimal("50.00") and last.trace_number == lost.partial.trace_number
    assert last.receipt_lines[0] == "** RESERVIERUNG **"
    assert status.ready
    assert str(last.receipt_number) in sim.control("status")["reservations"]


@pytest.mark.parametrize("step", ["ack", "intermediate"])
def test_connection_dropped_before_the_decision(start_zvt, step: str) -> None:
    sim = start_zvt("--drop-after", step)

    async def scenario():
        client = sim.client()
        with pytest.raises(ZvtConnectionLost) as lost:
            await client.preauthorize(Decimal("50.00"))
        sim.control("set", drop_after=None)
        last = await client.last_transaction()
        await client.close()
        return lost.value, last

    lost, last = run(scenario())
    assert lost.acknowledged and lost.partial is None
    assert last.result_code == codes.ABORTED
    assert sim.control("status")["reservations"] == {}


def test_the_state_survives_a_restart(start_zvt) -> None:
    folder = tempfile.mkdtemp(prefix="evzvt-")
    try:
        first = start_zvt(folder=folder)

        async def reserve():
            async with first.client() as client:
                return await client.preauthorize(Decimal("40.00"))

        held = run(reserve())
        first.proc.terminate()
        first.proc.wait(timeout=5)
        second = start_zvt(folder=folder)

        async def book():
            async with second.client() as client:
                return (await client.book_total(held.receipt_number, Decimal("25.00")),
                        await client.preauthorize(Decimal("1.00")))

        booked, next_one = run(book())
        assert booked.approved and booked.amount == Decimal("25.00")
        assert next_one.trace_number == held.trace_number + 2  # counters kept
        state = json.loads(Path(second.state_path).read_text())
        assert [e["amount_minor"] for e in state["batch"].values()] == [2500]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_bad_options_and_requests_are_named(start_zvt, tmp_path: Path) -> None:
    bad = subprocess.run(
        [sys.executable, "-m", "terminal.cli", "sim", "zvt", "--tcp", "127.0.0.1:1",
         "--decline", "zz"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "decline: 'zz' is not a result code" in bad.stderr
    assert "Traceback" not in bad.stderr
    state = tmp_path / "state.json"
    state.write_text("{not json")
    broken = subprocess.run(
        [sys.executable, "-m", "terminal.cli", "sim", "zvt", "--tcp", "127.0.0.1:1",
         "--state", str(state)], capture_output=True, text=True, timeout=30)
    assert broken.returncode == 2 and "cannot be read" in broken.stderr
    sim = start_zvt()
    reply = control(sim.control_path, {"cmd": "set", "drop_after": "later"})
    assert not reply["ok"] and "drop_after: 'later' is not one of" in reply["error"]
    reply = control(sim.control_path, {"cmd": "set", "colour": "red"})
    assert not reply["ok"] and "unknown behaviour keys ['colour']" in reply["error"]


def test_client_errors_without_a_terminal() -> None:
    async def scenario() -> None:
        with pytest.raises(ZvtConnectionError, match="cannot connect"):
            await ZvtClient("127.0.0.1", free_port(), connect_timeout_s=2).status_enquiry()

        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read()  # a peer that never answers
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = ZvtClient("127.0.0.1", port, ack_timeout_s=0.2)
        with pytest.raises(ZvtTimeout, match=r"silent for 0\.2 s"):
            await client.preauthorize(Decimal("1.00"))
        assert not client.connected
        with pytest.raises(ValueError, match="amount"):
            await client.preauthorize(Decimal("1.001"))
        server.close()

    run(scenario())


def test_read_card_reports_the_presented_card_and_ends_with_6c_without_one(start_zvt) -> None:
    sim = start_zvt()

    async def scenario():
        async with sim.client() as client:
            await client.register()
            waiting = asyncio.create_task(client.read_card(5))
            await asyncio.sleep(0.2)
            sim.control("present", card="mastercard")
            card = await waiting
            preauth = await client.preauthorize(Decimal("30.00"))  # the card just read
            nothing = await client.read_card(1)  # no card within 1 s
            waiting = asyncio.create_task(client.read_card(30))
            await asyncio.sleep(0.2)
            await client.abort()  # the ECR needs the terminal: the wait ends at once
            aborted = await asyncio.wait_for(waiting, 5)
            return card, preauth, nothing, aborted

    card, preauth, nothing, aborted = run(scenario())
    assert card.approved and card.card_type == 0x06 and card.card_name == "MASTERCARD"
    assert card.masked_pan == "************4771" and card.expiry == "2812"
    assert card.card_sequence == 1 and card.intermediate == ("insert card",)
    assert preauth.approved and preauth.masked_pan == "************4771"
    assert (nothing.result_code, aborted.result_code) == (codes.ABORTED, codes.ABORTED)
    assert nothing.masked_pan is None and aborted.masked_pan is None
    status = sim.control("status")
    assert status["cards_read"] == 1 and status["presented"] is None


def test_present_names_a_known_card(start_zvt) -> None:
    sim = start_zvt()
    reply = control(sim.control_path, {"cmd": "present", "card": "diners-club"})
    assert reply["ok"] is False and "is not one of visa, mastercard" in reply["error"]
