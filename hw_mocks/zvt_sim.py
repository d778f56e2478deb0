"""`evterm sim zvt`: a ZVT payment terminal as a real program on TCP, speaking the bytes
of drivers/zvt (docs/zvt.md): Registration, Pre-authorisation with intermediate statuses,
Status information and receipt lines, Book total, Partial reversal, Reversal, Repeat
receipt (the last transaction), End-of-day totals per card group, Status enquiry,
Abort and Read card (06 C0: waits for a card "presented" on the control socket, then
reports its type, masked number, expiry and sequence number). What the next
transactions do is set by options or the control socket (JSON lines: {"cmd":
"set"|"next"|"status"|"reset"|"present"|"plant", ...}; "plant" puts a booking
nobody asked for into the batch or leaves a reservation open, for the reconciliation
tests); the reservations, the batch and the counters live in --state, so a restart
keeps them.

References read (no code copied): ZVT-Protokoll PA00P015 (the PT side of each command
flow; 2.21 Read Card 06 C0); Portalum/Portalum.Zvt unit tests (the message sequences
of a real terminal).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from drivers.zvt import codes
from drivers.zvt import messages as m
from drivers.zvt.apdu import ACK, Apdu, ApduError, Fields, is_ack, nak, split_frame
from hw_mocks.signals import stop_on_signals
from hw_mocks.zvt_sim_state import (
    CARDS,
    Behaviour,
    SimStateError,
    StateFile,
    behaviour_from,
    parse_amount,
)

MAX_LINE_BYTES = 65536
CURRENCY = "EUR"
CURRENCY_NUMERIC = 978
VU_NUMBER = "SIMVU0000000001"
INTERVAL_S = 0.5  # between two "please wait" statuses of a slow transaction
CARD_POLL_S = 0.05  # how often a Read card wait looks for a presented card
CARD_EXPIRY = "2812"  # YYMM of every simulated card


class Dropped(Exception):
    """The simulator closes the connection here (drop_after)."""


class Gone(Exception):
    """The ECR closed the connection."""


class ZvtSimulator:
    """The terminal: its state file, its behaviour and one ECR connection at a time."""

    def __init__(self, state: StateFile, behaviour: Behaviour, terminal_id: int = 29001006,
                 password: int = 0) -> None:
        self.store = state
        self.default = behaviour
        self.behaviour = behaviour
        self.once: Behaviour | None = None
        self.terminal_id = terminal_id
        self.password = password
        self.presented: str | None = None  # a card held to the reader, not yet read
        self.in_field: str | None = None  # the card a Read card reported last
        self.reads = 0  # Read card commands answered with a card
        self.waiting = False  # a Read card waits for a card now

    @property
    def state(self) -> Any:
        return self.store.state

    # --- the control socket ------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {**self.state.to_json(), "behaviour": self.behaviour.to_json(),
                "next": self.once.to_json() if self.once else None,
                "presented": self.presented, "cards_read": self.reads,
                "waiting_for_card": self.waiting}

    def handle(self, request: Any) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return {"ok": False, "error": 'expected {"cmd": "set"|"next"|"status"|"reset"|'
                    '"present"|"plant", ...}'}
        cmd = request["cmd"]
        try:
            if cmd == "set":
                self.behaviour = behaviour_from(request, self.behaviour, CURRENCY)
            elif cmd == "next":
                self.once = behaviour_from(request, self.behaviour, CURRENCY)
            elif cmd == "reset":
                self.behaviour, self.once = self.default, None
            elif cmd == "present":
                card = request.get("card", self.behaviour.card)
                if card not in CARDS:
                    return {"ok": False, "error": f"card: {card!r} is not one of "
                            f"{', '.join(CARDS)}"}
                self.presented = card
            elif cmd == "plant":
                self.plant(request)
            elif cmd != "status":
                return {"ok": False, "error": f"unknown cmd {cmd!r}; allowed: set, next, "
                        "status, reset, present, plant"}
        except SimStateError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "status": self.status()}

    def plant(self, request: dict[str, Any]) -> None:
        """A discrepancy no ECR caused (tests of the end-of-day reconciliation):
        {"cmd": "plant", "what": "booking"|"reservation", "card": ..., "amount": "1.23"}
        puts a booking into the batch or leaves a reservation open."""
        what, card = request.get("what"), request.get("card", "visa")
        if what not in ("booking", "reservation"):
            raise SimStateError(f"what: {what!r} is not booking or reservation")
        if card not in CARDS:
            raise SimStateError(f"card: {card!r} is not one of {', '.join(CARDS)}")
        amount = parse_amount(request.get("amount"), CURRENCY)
        card_type, card_name, pan = CARDS[card]
        receipt = str(self.state.take_receipt())
        if what == "booking":
            self.state.batch[receipt] = {"amount_minor": amount, "card_type": card_type}
        else:
            self.state.reservations[receipt] = {
                "amount_minor": amount, "trace": self.state.take_trace(),
                "card_type": card_type, "card_name": card_name, "masked_pan": pan}
        self.store.save()

    async def serve_control(self, reader: asyncio.StreamReader,
                            writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                if not line.strip():
                    continue
                try:
                    reply = self.handle(json.loads(line))
                except ValueError as exc:
                    reply = {"ok": False, "error": f"bad JSON: {exc}"}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()
        except (ConnectionError, ValueError):
            pass
        finally:
            writer.close()

    def take_behaviour(self) -> Behaviour:
        once, self.once = self.once, None
        return once or self.behaviour

    # --- the ECR connection ------------------------------------------------------------

    async def serve_ecr(self, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter) -> None:
        link = Link(reader, writer)
        try:
            while True:
                apdu = await link.read(None)
                await self.dispatch(link, apdu)
        except (Gone, Dropped, ConnectionError):
            pass
        finally:
            writer.transport.abort()

    async def dispatch(self, link: Link, apdu: Apdu) -> None:
        handlers = {
            m.REGISTRATION: self.registration, m.PREAUTH: self.preauth,
            m.BOOK_TOTAL: self.book_total, m.PARTIAL_REVERSAL: self.partial_reversal,
            m.REVERSAL: self.reversal, m.END_OF_DAY: self.end_of_day,
            m.REPEAT_RECEIPT: self.repeat_receipt, m.STATUS_ENQUIRY: self.status_enquiry,
            m.READ_CARD: self.read_card,
        }
        if is_ack(apdu):
            return
        if apdu.command == m.ABORT_REQUEST:
            link.write(ACK)
            return
        handler = handlers.get(apdu.command)
        link.abort_requested = False  # an abort ends the command it came in
        if handler is None:
            link.write(nak(0x83))
            return
        try:
            await handler(link, apdu)
        except ApduError:
            link.write(nak(codes.PROTOCOL_ERROR))

    async def registration(self, link: Link, apdu: Apdu) -> None:
        data = apdu.data
        if len(data) < 4:
            link.write(nak(codes.PROTOCOL_ERROR))
            return
        if len(data) >= 6 and int(data[4:6].hex()) != CURRENCY_NUMERIC:
            link.write(nak(0x6F))  # wrong currency
            return
        self.state.config_byte = data[3]
        self.store.save()
        link.write(ACK)
        await link.send(m.completion(0x00, self.terminal_id))

    async def status_enquiry(self, link: Link, apdu: Apdu) -> None:
        link.write(ACK)
        await link.send(Apdu(*m.STATUS_INFO, m.StatusInfo(
            result_code=0x00, terminal_id=self.terminal_id).encode()))
        await link.send(m.completion(None, self.terminal_id))

    async def repeat_receipt(self, link: Link, apdu: Apdu) -> None:
        link.write(ACK)
        last = self.state.last
        if last is None:
            await link.send(m.abort(0x83))
            return
        await link.send(Apdu(*m.STATUS_INFO, bytes.fromhex(last["status_info"])))
        await self.receipt(link, last["lines"], None)
        await link.send(m.completion(None, self.terminal_id))

    async def read_card(self, link: Link, apdu: Apdu) -> None:
        """06 C0: "insert card", then the card presented within the timeout in a Status
        information and Completion; none in time, or the ECR's abort: 06 1E 6C."""
        timeout_s = m.parse_read_card(apdu.data)
        link.write(ACK)
        await link.send(m.intermediate(codes.INSERT_CARD))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        card = None
        self.waiting = True
        try:
            while not link.abort_requested and loop.time() < deadline:
                if self.presented is not None:
                    card, self.presented = self.presented, None
                    break
                await link.idle(min(CARD_POLL_S, deadline - loop.time()))
        finally:
            self.waiting = False
        if card is None:
            await link.send(m.abort(codes.ABORTED))
            return
        card_type, card_name, pan = CARDS[card]
        self.in_field = card
        self.reads += 1
        info = self.info(result_code=0, card_type=card_type, card_name=card_name,
                         masked_pan=pan, expiry=CARD_EXPIRY, card_sequence=1)
        await link.send(Apdu(*m.STATUS_INFO, info.encode()))
        await link.send(m.completion(None, self.terminal_id))

    # --- the transactions --------------------------------------------------------------

    def info(self, **values: Any) -> m.StatusInfo:
        now = datetime.now()
        return m.StatusInfo(terminal_id=self.terminal_id, currency_numeric=CURRENCY_NUMERIC,
                            time=now.strftime("%H%M%S"), date=now.strftime("%m%d"),
                            vu_number=VU_NUMBER, **values)

    def remember(self, info: m.StatusInfo, lines: list[str]) -> None:
        self.state.last = {"status_info": info.encode().hex(), "lines": lines,
                           "result_code": info.result_code}
        self.store.save()

    async def fail(self, link: Link, code: int, behaviour: Behaviour,
                   trace: int | None = None) -> None:
        info = self.info(result_code=code, trace_number=trace,
                         additional_text=codes.result_text(code))
        self.remember(info, [])
        await self.finish(link, info, [], behaviour, final_code=code)

    async def finish(self, link: Link, info: m.StatusInfo, lines: list[str],
                     behaviour: Behaviour, final_code: int | None = None) -> None:
        """Status information, the receipt, then Completion (or Abort with the code)."""
        link.write(Apdu(*m.STATUS_INFO, info.encode()))
        if behaviour.drop_after == "status":
            raise Dropped
        await link.expect_ack()
        await self.receipt(link, lines, behaviour)
        if final_code is not None:
            await link.send(m.abort(final_code))
        else:
            await link.send(m.completion(None, self.terminal_id))

    async def receipt(self, link: Link, lines: list[str], behaviour: Behaviour | None) -> None:
        if lines and self.state.config_byte & codes.PRINT_TEXT_BLOCK:
            await link.send(m.print_block(lines, 2))
        elif lines:
            for i, line in enumerate(lines):
                last = i == len(lines) - 1
                await link.send(m.print_line(line, m.LAST_LINE if last else 0x00))
        if behaviour is not None and behaviour.drop_after == "receipt":
            raise Dropped

    async def card_phase(self, link: Link, behaviour: Behaviour) -> bool:
        """Intermediate statuses while the card is read and the host asked; False when
        the ECR aborted (06 B0)."""
        await link.send(m.intermediate(codes.INSERT_CARD))
        if behaviour.drop_after == "intermediate":
            raise Dropped
        waited = 0.0
        while waited < behaviour.slow_s and not link.abort_requested:
            step = min(INTERVAL_S, behaviour.slow_s - waited)
            await link.idle(step)
            waited += step
            await link.send(m.intermediate(codes.WAIT, int(INTERVAL_S * 4) + 1))
        if not link.abort_requested:
            await link.send(m.intermediate(codes.WAIT_FOR_HOST))
        return not link.abort_requested

    async def start(self, link: Link, behaviour: Behaviour) -> None:
        link.write(ACK)
        if behaviour.drop_after == "ack":
            raise Dropped

    async def preauth(self, link: Link, apdu: Apdu) -> None:
        fields = Fields.parse(apdu.data)
        amount = fields.bcd(0x04)
        behaviour = self.take_behaviour()
        if amount is None or amount == 0:
            link.write(nak(codes.PROTOCOL_ERROR))
            return
        try:
            await self.start(link, behaviour)
            if not await self.card_phase(link, behaviour):
                await self.fail(link, codes.ABORTED, behaviour)
                return
        except Dropped:
            self.remember(self.info(result_code=codes.ABORTED), [])
            raise
        if behaviour.card_removed:
            await self.fail(link, codes.CARD_NOT_READABLE, behaviour)
            return
        if behaviour.decline is not None:
            await self.fail(link, behaviour.decline, behaviour, self.state.take_trace())
            return
        approved = min(amount, behaviour.partial_minor or amount)
        card, self.in_field = self.in_field or behaviour.card, None  # the card just read
        card_type, card_name, pan = CARDS[card]
        info = self.info(result_code=0, amount_minor=approved,
                         trace_number=self.state.take_trace(),
                         receipt_number=self.state.take_receipt(),
                         turnover_number=self.state.take_turnover(), card_type=card_type,
                         card_name=card_name, masked_pan=pan, expiry=CARD_EXPIRY, card_sequence=1,
                         payment_type=0x60, aid="SIM0001", additional_text="GENEHMIGT")
        self.state.reservations[str(info.receipt_number)] = {
            "amount_minor": approved, "trace": info.trace_number, "card_type": card_type,
            "card_name": card_name, "masked_pan": pan}
        lines = self.lines("RESERVIERUNG", info, approved)
        self.remember(info, lines)
        await self.finish(link, info, lines, behaviour)

    def lines(self, title: str, info: m.StatusInfo, amount_minor: int) -> list[str]:
        euros = f"{amount_minor // 100},{amount_minor % 100:02d}"
        return [f"** {title} **", f"Terminal-ID: {self.terminal_id}",
                f"Beleg-Nr.: {info.receipt_number or 0:04d}",
                f"Trace-Nr.: {info.trace_number or 0:06d}",
                f"Karte: {info.card_name or ''}", f"Nr.: {info.masked_pan or ''}",
                f"BETRAG EUR {euros}"]

    async def book_total(self, link: Link, apdu: Apdu) -> None:
        fields = Fields.parse(apdu.data)
        receipt, amount = fields.bcd(0x87), fields.bcd(0x04)
        behaviour = self.take_behaviour()
        await self.start(link, behaviour)
        held = self.state.reservations.get(str(receipt))
        if held is None or amount is None:
            await self.fail(link, codes.PREAUTH_ERROR, behaviour)
            return
        if amount > held["amount_minor"] or (behaviour.whole_only
                                             and amount < held["amount_minor"]):
            await self.fail(link, codes.PREAUTH_AMOUNT_WRONG, behaviour)
            return
        await link.send(m.intermediate(codes.WAIT_FOR_HOST))
        del self.state.reservations[str(receipt)]
        self.state.released_minor += held["amount_minor"] - amount
        info = self.info(result_code=0, amount_minor=amount,
                         trace_number=self.state.take_trace(), original_trace=held["trace"],
                         receipt_number=self.state.take_receipt(),
                         turnover_number=self.state.take_turnover(),
                         card_type=held["card_type"], card_name=held["card_name"],
                         masked_pan=held["masked_pan"])
        if amount:
            self.state.batch[str(info.receipt_number)] = {
                "amount_minor": amount, "card_type": held["card_type"]}
        lines = self.lines("BUCHUNG", info, amount)
        self.remember(info, lines)
        await self.finish(link, info, lines, behaviour)

    async def partial_reversal(self, link: Link, apdu: Apdu) -> None:
        fields = Fields.parse(apdu.data)
        receipt, amount = fields.bcd(0x87), fields.bcd(0x04)
        behaviour = self.take_behaviour()
        await self.start(link, behaviour)
        held = self.state.reservations.get(str(receipt))
        if held is None or not amount:
            await self.fail(link, codes.PREAUTH_ERROR, behaviour)
            return
        if amount >= held["amount_minor"]:
            await self.fail(link, codes.PREAUTH_AMOUNT_WRONG, behaviour)
            return
        held["amount_minor"] -= amount
        self.state.released_minor += amount
        info = self.info(result_code=0, amount_minor=amount,
                         trace_number=self.state.take_trace(), original_trace=held["trace"],
                         receipt_number=receipt, card_type=held["card_type"],
                         card_name=held["card_name"], masked_pan=held["masked_pan"])
        lines = self.lines("TEILSTORNO", info, amount)
        self.remember(info, lines)
        await self.finish(link, info, lines, behaviour)

    async def reversal(self, link: Link, apdu: Apdu) -> None:
        if m.parse_password(apdu.data) != self.password:
            link.write(nak(0x83))
            return
        receipt = Fields.parse(apdu.data[3:]).bcd(0x87)
        behaviour = self.take_behaviour()
        await self.start(link, behaviour)
        key = str(receipt)
        entry = self.state.reservations.pop(key, None) or self.state.batch.pop(key, None)
        if entry is None:
            code = codes.ALREADY_REVERSED if receipt in self.state.reversed else \
                codes.REVERSAL_NOT_POSSIBLE
            await self.fail(link, code, behaviour)
            return
        self.state.reversed.append(receipt)
        info = self.info(result_code=0, amount_minor=entry["amount_minor"],
                         trace_number=self.state.take_trace(), receipt_number=receipt,
                         card_type=entry["card_type"])
        lines = self.lines("STORNO", info, entry["amount_minor"])
        self.remember(info, lines)
        await self.finish(link, info, lines, behaviour)

    async def end_of_day(self, link: Link, apdu: Apdu) -> None:
        behaviour = self.take_behaviour()
        await self.start(link, behaviour)
        await link.send(m.intermediate(codes.WAIT_FOR_HOST))
        counts = dict.fromkeys(m.TOTAL_GROUPS, 0)
        amounts = dict.fromkeys(m.TOTAL_GROUPS, 0)
        for entry in self.state.batch.values():
            group = m.total_group(entry["card_type"])
            counts[group] += 1
            amounts[group] += entry["amount_minor"]
        receipts = [int(k) for k in self.state.batch] or [0]
        totals = m.Totals(min(receipts), max(receipts), counts, amounts)
        info = self.info(result_code=0, amount_minor=totals.total_minor,
                         trace_number=self.state.take_trace(), totals=totals)
        lines = ["** KASSENSCHNITT **"] + [
            f"{group}: {counts[group]} / {amounts[group] // 100},{amounts[group] % 100:02d}"
            for group in m.TOTAL_GROUPS if counts[group]]
        self.state.batch.clear()
        self.remember(info, lines)
        await self.finish(link, info, lines, behaviour)


class Link:
    """One ECR connection: framed reads, writes, and the ECR's abort request noticed
    whenever the simulator reads."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.buffer = bytearray()
        self.abort_requested = False

    def write(self, apdu: Apdu) -> None:
        self.writer.write(apdu.encode())

    async def read(self, timeout_s: float | None) -> Apdu:
        while True:
            found = split_frame(bytes(self.buffer))
            if found is not None:
                del self.buffer[:found[1]]
                return found[0]
            chunk = await asyncio.wait_for(self.reader.read(4096), timeout_s)
            if not chunk:
                raise Gone
            self.buffer += chunk

    async def expect_ack(self, timeout_s: float = 5.0) -> None:
        while True:
            try:
                apdu = await self.read(timeout_s)
            except TimeoutError:
                raise Gone from None
            if apdu.command == m.ABORT_REQUEST:
                self.abort_requested = True
                self.write(ACK)
                continue
            if is_ack(apdu):
                return
            raise Gone  # the ECR is out of step

    async def send(self, apdu: Apdu) -> None:
        self.write(apdu)
        await self.writer.drain()
        await self.expect_ack()

    async def idle(self, seconds: float) -> None:
        """Wait `seconds`, noticing an abort request meanwhile."""
        try:
            apdu = await self.read(seconds)
        except TimeoutError:
            return
        if apdu.command == m.ABORT_REQUEST:
            self.abort_requested = True
            self.write(ACK)


async def serve(sim: ZvtSimulator, tcp: tuple[str, int], control_path: str | None) -> None:
    try:
        server = await asyncio.start_server(sim.serve_ecr, *tcp)
    except OSError as exc:
        raise OSError(f"cannot serve ZVT on {tcp[0]}:{tcp[1]}: {exc.strerror or exc}") from None
    control = None
    if control_path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(control_path)
        control = await asyncio.start_unix_server(sim.serve_control, path=control_path,
                                                  limit=MAX_LINE_BYTES)
    print(json.dumps({
        "event": "ready", "url": f"tcp://{tcp[0]}:{tcp[1]}", "host": tcp[0], "port": tcp[1],
        "control": control_path, "state": str(sim.store.path) if sim.store.path else None,
        "terminal_id": sim.terminal_id, "currency": CURRENCY,
        "behaviour": sim.behaviour.to_json(),
    }), flush=True)
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        server.close()
        if control is not None:
            control.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(control_path or "")


def run_forever(sim: ZvtSimulator, tcp: tuple[str, int], control_path: str | None) -> int:
    try:
        asyncio.run(serve(sim, tcp, control_path))
    except (OSError, RuntimeError) as exc:
        print(f"evterm sim zvt: {exc}", file=sys.stderr)
        return 2
    return 0


def open_state(path: str | None) -> StateFile:
    return StateFile(Path(path) if path else None)
