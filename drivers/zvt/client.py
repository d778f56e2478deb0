"""An asyncio ZVT ECR client over TCP (port 20007 by convention).

One command at a time: the ECR sends it, the terminal acknowledges (80 00) within T3
(`ack_timeout_s`) or refuses (84 xx), then sends, each acknowledged by the ECR,
Intermediate statuses (04 FF, keep-alives: each restarts the wait, and the timeout byte
of one sets the next wait), a Status information (04 0F, the result fields), receipt
lines (06 D1 print line, 06 D3 print text block), and ends with Completion (06 0F) or
Abort (06 1E <result code>). Silence longer than the wait (`response_timeout_s`, the
spec's T4 for the ECR; per command in `command_timeouts_s`, end-of-day 120 s by default)
raises ZvtTimeout; the connection closing mid-command raises
ZvtConnectionLost, which carries what had arrived (the Status information, if it came).
After a loss, `last_transaction()` (Repeat receipt 06 20) tells the outcome; the trace
and receipt numbers of every result make idempotent retries possible.

References read (no code copied): ZVT-Protokoll PA00P015 chapters "Transport-protocol
TCP/IP" (T3/T4), 2.2 Registration, 2.8-2.10 Pre-authorisation/Partial reversal/Book
total, Reversal, Repeat receipt, End-of-day, Status enquiry, Abort; Portalum/Portalum.Zvt
src/Portalum.Zvt/ZvtClient.cs (the command flow); the Rust `zvt` crate used by EVerest's
RsPaymentTerminal (the pre-authorisation/partial-reversal flow of a charger, and its
card wait with Read card 06 C0 while the charger is idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from decimal import Decimal

from drivers.zvt import messages as m
from drivers.zvt.apdu import ACK, Apdu, ApduError, is_ack, is_nak, nak, split_frame
from drivers.zvt.codes import DEFAULT_CONFIG, intermediate_text, result_text
from drivers.zvt.results import (
    Registration,
    TerminalStatus,
    TransactionResult,
    result_from,
)
from terminal.kernel.money import check_amount, currency_numeric, to_minor_units

log = logging.getLogger(__name__)

DEFAULT_PORT = 20007
ACK_TIMEOUT_S = 5.0          # T3: the terminal's acknowledgement of a command
RESPONSE_TIMEOUT_S = 20.0    # the longest silence between the terminal's messages
# commands whose host connection may keep the terminal silent longer
COMMAND_TIMEOUTS_S = {"end-of-day": 120.0}


class ZvtError(Exception):
    """A ZVT command that did not come to an end; the subclasses say how."""


class ZvtConnectionError(ZvtError):
    """The terminal cannot be reached (connect refused or timed out)."""


class ZvtConnectionLost(ZvtError):
    """The connection closed while a command ran. `acknowledged`: the terminal had taken
    the command; `partial`: the result fields that had arrived (None: no Status
    information yet), so the outcome may be known or must be asked (last_transaction)."""

    def __init__(self, command: str, acknowledged: bool,
                 partial: TransactionResult | None) -> None:
        stage = "after the terminal took it" if acknowledged else "before it was acknowledged"
        known = (f"; the terminal had reported: {partial.result_text}"
                 if partial is not None and partial.receipt_number is not None else "")
        super().__init__(f"ZVT {command}: connection lost {stage}{known}")
        self.command = command
        self.acknowledged = acknowledged
        self.partial = partial


class ZvtTimeout(ZvtError):
    """The terminal was silent for longer than the wait (T3 for the ACK, the response
    timeout or an intermediate status's timeout afterwards)."""


class ZvtRefused(ZvtError):
    """The terminal refused the command with a negative acknowledgement 84 xx (84 9C:
    busy, repeat it later)."""

    def __init__(self, command: str, code: int) -> None:
        super().__init__(f"ZVT {command}: refused by the terminal, 84 {code:02X} "
                         f"({result_text(code)})")
        self.code = code


class ZvtProtocolError(ZvtError):
    """The terminal sent bytes this client cannot read."""


class ZvtClient:
    """The ECR side of one terminal. Amounts are Decimal in `currency`; everything a
    command returns is in a TransactionResult (see drivers/zvt/results.py)."""

    def __init__(self, host: str, port: int = DEFAULT_PORT, *, password: int = 0,
                 currency: str = "EUR", connect_timeout_s: float = 5.0,
                 ack_timeout_s: float = ACK_TIMEOUT_S,
                 response_timeout_s: float = RESPONSE_TIMEOUT_S,
                 command_timeouts_s: dict[str, float] | None = None,
                 on_intermediate: Callable[[int, str], None] | None = None,
                 on_acknowledged: Callable[[str], None] | None = None) -> None:
        self.host, self.port = host, port
        self.password = password
        self.currency = currency
        self.currency_numeric = int(currency_numeric(currency))
        self.connect_timeout_s = connect_timeout_s
        self.ack_timeout_s = ack_timeout_s
        self.response_timeout_s = response_timeout_s
        self.command_timeouts_s = dict(COMMAND_TIMEOUTS_S, **(command_timeouts_s or {}))
        self.on_intermediate = on_intermediate
        self.on_acknowledged = on_acknowledged  # the terminal took a command (80 00)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buffer = bytearray()
        self._lock = asyncio.Lock()
        self._running: str | None = None

    # --- connection --------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def connect(self) -> None:
        if self.connected:
            return
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.connect_timeout_s)
        except (OSError, TimeoutError) as exc:
            raise ZvtConnectionError(
                f"ZVT terminal {self.host}:{self.port}: cannot connect "
                f"({getattr(exc, 'strerror', None) or exc or 'timed out'})") from None
        self._buffer.clear()

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> ZvtClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- the commands ------------------------------------------------------------------

    async def register(self, config_byte: int = DEFAULT_CONFIG,
                       service_byte: int | None = None) -> Registration:
        """06 00 with the password, config byte and currency."""
        apdu = m.registration(self.password, config_byte, self.currency_numeric, service_byte)
        result, completion = await self._run("registration", apdu)
        if not result.approved:
            raise ZvtRefused("registration", result.result_code)
        fields = completion or {}
        return Registration(fields.get("status_byte"), fields.get("terminal_id"))

    async def preauthorize(self, amount: Decimal) -> TransactionResult:
        """06 22: reserve `amount`; the result's amount is what was approved (a partial
        approval is smaller), its receipt number names the reservation."""
        apdu = m.preauth(self._minor(amount, "amount"), self.currency_numeric)
        return (await self._run("pre-authorisation", apdu))[0]

    async def book_total(self, receipt_number: int, amount: Decimal,
                         trace_number: int | None = None) -> TransactionResult:
        """06 24: book `amount` (at most the reservation) of the reservation
        `receipt_number`; the terminal releases the rest."""
        apdu = m.book_total(receipt_number, self._minor(amount, "amount", zero_ok=True),
                            trace_number)
        return (await self._run("book total", apdu))[0]

    async def partial_reversal(self, receipt_number: int, amount: Decimal) -> TransactionResult:
        """06 23: release `amount` of the reservation; it stays open with the rest."""
        apdu = m.partial_reversal(receipt_number, self._minor(amount, "amount"))
        return (await self._run("partial reversal", apdu))[0]

    async def reverse(self, receipt_number: int) -> TransactionResult:
        """06 30: reverse the transaction or reservation `receipt_number` in full."""
        return (await self._run("reversal", m.reversal(self.password, receipt_number)))[0]

    async def end_of_day(self) -> TransactionResult:
        """06 50: close the batch; the result's totals are per card group (BMP 60)."""
        apdu = m.password_only(m.END_OF_DAY, self.password)
        return (await self._run("end-of-day", apdu))[0]

    async def last_transaction(self) -> TransactionResult:
        """06 20 Repeat receipt: the last transaction's Status information and receipt,
        to learn the outcome of a command whose connection was lost."""
        apdu = m.password_only(m.REPEAT_RECEIPT, self.password)
        return (await self._run("repeat receipt", apdu))[0]

    async def status_enquiry(self) -> TerminalStatus:
        """05 01: the terminal's status code (00 = ready) and id."""
        result, _ = await self._run("status enquiry",
                                    m.password_only(m.STATUS_ENQUIRY, self.password))
        return TerminalStatus(result.result_code, result.terminal_id)

    async def read_card(self, timeout_s: int) -> TransactionResult:
        """06 C0 Read card: the terminal waits up to `timeout_s` for a card; the result's
        card_type, card_name, masked_pan, expiry and card_sequence describe it (result
        6C: no card in time, or the wait was aborted with `abort()`)."""
        return (await self._run("read card", m.read_card(timeout_s),
                                silence_s=timeout_s + self.response_timeout_s))[0]

    @property
    def running(self) -> str | None:
        """The command now running, if any."""
        return self._running

    async def abort(self) -> None:
        """06 B0: ask the terminal to abort the running command (it then ends with 06 1E
        6C). Without a running command, the terminal's ACK is awaited here."""
        await self.connect()
        running = self._running is not None
        self._write(m.abort_request())
        if not running:
            async with self._lock:
                reply = await self._read(self.ack_timeout_s, "abort", acknowledged=False)
                if is_nak(reply):
                    raise ZvtRefused("abort", reply.instr)

    # --- the exchange ------------------------------------------------------------------

    def _minor(self, amount: Decimal, what: str, zero_ok: bool = False) -> int:
        value = check_amount(amount, what, currency=self.currency, zero_ok=zero_ok)
        return to_minor_units(value, self.currency)

    def _write(self, apdu: Apdu) -> None:
        if self._writer is None:
            raise ZvtConnectionError(f"ZVT terminal {self.host}:{self.port}: not connected")
        self._writer.write(apdu.encode())

    async def _read(self, timeout_s: float, command: str, acknowledged: bool,
                    partial: Callable[[], TransactionResult | None] = lambda: None) -> Apdu:
        while True:
            found = split_frame(bytes(self._buffer))
            if found is not None:
                apdu, used = found
                del self._buffer[:used]
                return apdu
            assert self._reader is not None
            try:
                chunk = await asyncio.wait_for(self._reader.read(4096), timeout_s)
            except TimeoutError:
                raise ZvtTimeout(f"ZVT {command}: the terminal was silent for "
                                 f"{timeout_s:g} s") from None
            except OSError:
                chunk = b""
            if not chunk:
                await self.close()
                raise ZvtConnectionLost(command, acknowledged, partial())
            self._buffer += chunk

    async def _run(self, command: str, apdu: Apdu,
                   silence_s: float | None = None) -> tuple[TransactionResult, dict | None]:
        async with self._lock:
            await self.connect()
            self._running = command
            try:
                return await self._exchange(command, apdu, silence_s)
            except (ZvtTimeout, ZvtProtocolError):
                await self.close()  # the exchange is out of step; start clean
                raise
            finally:
                self._running = None

    async def _exchange(self, command: str, apdu: Apdu,
                        silence_s: float | None) -> tuple[TransactionResult, dict | None]:
        self._write(apdu)
        reply = await self._read(self.ack_timeout_s, command, acknowledged=False)
        if is_nak(reply):
            raise ZvtRefused(command, reply.instr)
        if not is_ack(reply):
            raise ZvtProtocolError(f"ZVT {command}: expected 80 00, got {reply}")
        if self.on_acknowledged is not None:
            self.on_acknowledged(command)
        info: m.StatusInfo | None = None
        lines: list[str] = []
        shown: list[str] = []

        def partial() -> TransactionResult | None:
            return None if info is None else result_from(command, self.currency, info, None,
                                                         lines, shown)

        if silence_s is None:
            silence_s = self.command_timeouts_s.get(command, self.response_timeout_s)
        wait_s = silence_s
        while True:
            message = await self._read(wait_s, command, acknowledged=True, partial=partial)
            wait_s = silence_s
            if is_ack(message):  # the terminal's ACK of an abort request (06 B0)
                continue
            try:
                if message.command == m.INTERMEDIATE:
                    code, timeout = m.parse_intermediate(message.data)
                    shown.append(intermediate_text(code))
                    if timeout:
                        wait_s = max(float(timeout), silence_s)
                    if self.on_intermediate is not None:
                        self.on_intermediate(code, intermediate_text(code))
                elif message.command == m.STATUS_INFO:
                    info = m.parse_status_info(message.data)
                elif message.command == m.PRINT_LINE:
                    lines.append(m.parse_print_line(message.data)[1])
                elif message.command == m.PRINT_BLOCK:
                    lines.extend(m.parse_print_block(message.data)[1])
                elif message.command == m.COMPLETION:
                    self._write(ACK)
                    return (result_from(command, self.currency, info, None, lines, shown),
                            _completion_fields(message.data))
                elif message.command == m.ABORT:
                    self._write(ACK)
                    code = m.parse_abort(message.data)
                    return result_from(command, self.currency, info, code, lines, shown), None
                else:
                    log.info("ZVT %s: ignoring %s from the terminal", command, message)
            except ApduError as exc:
                self._write(nak(0x9A))
                raise ZvtProtocolError(f"ZVT {command}: {message}: {exc}") from None
            self._write(ACK)


def _completion_fields(data: bytes) -> dict:
    try:
        fields = m.Fields.parse(data)
    except ApduError:
        return {}
    return {"status_byte": fields.byte(0x19), "terminal_id": fields.bcd(0x29)}
