"""The ZVT client's exchange against scripted peers on a loopback socket (each sends
fixed bytes): refusals, the waits (T3, the response timeout, an intermediate status's
timeout byte), unreadable bytes answered 84 9A, a connection lost before and after the
terminal took the command. The whole flows run against `evterm sim zvt` in
tests/integration/test_zvt_sim.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from drivers.zvt.client import (
    ZvtClient,
    ZvtConnectionLost,
    ZvtProtocolError,
    ZvtRefused,
    ZvtTimeout,
)

H = bytes.fromhex
Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, list[bytes]], Awaitable[None]]


async def with_peer(script: Script, use: Callable[[ZvtClient], Awaitable[object]],
                    **options: object) -> tuple[object, list[bytes]]:
    """Run `use(client)` against a peer playing `script`; (what use returned or the
    exception it raised, the bytes the peer received)."""
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await script(reader, writer, received)
        finally:
            writer.close()

    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = ZvtClient("127.0.0.1", port, **options)  # type: ignore[arg-type]
    try:
        outcome: object = await use(client)
    except Exception as exc:
        outcome = exc
    await client.close()
    server.close()
    return outcome, received


async def command(reader: asyncio.StreamReader, received: list[bytes]) -> None:
    head = await reader.readexactly(3)
    received.append(head + await reader.readexactly(head[2]))


async def acks(reader: asyncio.StreamReader, received: list[bytes], count: int) -> None:
    for _ in range(count):
        received.append(await reader.readexactly(3))


def preauth(client: ZvtClient) -> Awaitable[object]:
    return client.preauthorize(Decimal("10.00"))


def test_a_busy_terminal_refuses_with_84_9c() -> None:
    async def script(reader, writer, received) -> None:
        await command(reader, received)
        writer.write(H("849C00"))
        await reader.read()

    outcome, received = asyncio.run(with_peer(script, preauth))
    assert isinstance(outcome, ZvtRefused) and outcome.code == 0x9C
    assert "84 9C (please wait (repeat the request later))" in str(outcome)
    assert received[0] == H("06220A" "04000000001000" "490978")


def test_silence_after_the_ack_is_a_timeout_per_command() -> None:
    async def script(reader, writer, received) -> None:
        await command(reader, received)
        writer.write(H("800000"))
        await reader.read()

    outcome, _ = asyncio.run(with_peer(script, preauth, response_timeout_s=30.0,
                                       command_timeouts_s={"pre-authorisation": 0.3}))
    assert isinstance(outcome, ZvtTimeout)
    assert "pre-authorisation: the terminal was silent for 0.3 s" in str(outcome)


def test_an_intermediate_status_timeout_byte_extends_the_wait() -> None:
    async def script(reader, writer, received) -> None:
        await command(reader, received)
        writer.write(H("800000") + H("04FF020E03"))     # please wait, 3 s
        await acks(reader, received, 1)
        await asyncio.sleep(0.6)
        writer.write(H("040F02" "2700"))
        await acks(reader, received, 1)
        writer.write(H("060F00"))
        await acks(reader, received, 1)

    outcome, received = asyncio.run(with_peer(script, preauth, response_timeout_s=0.2))
    assert not isinstance(outcome, Exception), outcome
    assert outcome.approved and outcome.intermediate == ("please wait",)
    assert received[1:] == [H("800000")] * 3


def test_unreadable_bytes_are_answered_84_9a() -> None:
    async def script(reader, writer, received) -> None:
        await command(reader, received)
        writer.write(H("800000") + H("040F02" "C500"))   # BMP C5 is unknown
        received.append(await reader.readexactly(3))
        await reader.read()

    outcome, received = asyncio.run(with_peer(script, preauth))
    assert isinstance(outcome, ZvtProtocolError) and "unknown BMP C5" in str(outcome)
    assert received[1] == H("849A00")


@pytest.mark.parametrize("acknowledged", [False, True])
def test_a_connection_lost_says_whether_the_terminal_took_the_command(
        acknowledged: bool) -> None:
    async def script(reader, writer, received) -> None:
        await command(reader, received)
        if acknowledged:
            writer.write(H("800000") + H("04FF010A"))
            await acks(reader, received, 1)

    outcome, _ = asyncio.run(with_peer(script, preauth))
    assert isinstance(outcome, ZvtConnectionLost)
    assert outcome.acknowledged is acknowledged and outcome.partial is None
    stage = "after the terminal took it" if acknowledged else "before it was acknowledged"
    assert str(outcome) == f"ZVT pre-authorisation: connection lost {stage}"


def test_abort_code_ends_the_command_and_print_lines_are_kept() -> None:
    async def script(reader, writer, received) -> None:
        await command(reader, received)
        writer.write(H("800000") + H("040F02" "2705"))
        await acks(reader, received, 1)
        writer.write(H("06D10A00") + b"ABGELEHNT")
        await acks(reader, received, 1)
        writer.write(H("061E0105"))
        await acks(reader, received, 1)

    outcome, _ = asyncio.run(with_peer(script, preauth))
    assert not isinstance(outcome, Exception), outcome
    assert outcome.result_code == 0x05 and not outcome.approved
    assert outcome.receipt_lines == ("ABGELEHNT",)
