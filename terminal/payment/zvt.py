"""Card payment through an external payment terminal over ZVT (`[payment] terminal = zvt`).

Provides `ZvtPayments`, the `PaymentTerminal` (terminal.payment.port) of kind "zvt":
- `preauthorize(session_id, token, card, amount)`: the card was read by the terminal
  (a `TerminalCard`, terminal.payment.zvt_link); the payment is journaled 'requested'
  (via 'zvt') before Pre-authorisation (06 22) of the hold is sent (`amount`, the
  budget the driver picked; None: `preauth_amount`; BudgetError if it is not offered);
  approved -> the journal gets the approval time (`approved_at`, the hold's grace counts
  from it), the terminal's receipt number (it names the reservation), trace number,
  terminal id, card type and name, masked number and receipt lines; the approved amount
  (a partial approval is smaller) is the session's cost cap. Declined -> the terminal's
  result code as a reason code the driver's text knows (`reason_of`).
- holds (terminal.payment.holds, docs/payment.md; the keeping is shared with the
  built-in path, terminal.payment.keeping): a session that ended without energy for a
  reason other than the driver's keeps its reservation until the grace deadline
  (settlement wakes itself then and reverses it); `reuse_hold(token, session_id)` moves
  such a kept reservation to the same card's new session (no second pre-authorisation
  at the terminal). A reversal of an approved reservation publishes `hold_released`.
- `settle_due()`: a closed session's payment is booked or released: 'capture_pending'
  (with the bill's amount, at most the approved one) is journaled, then Book total
  (06 24) books it and the terminal releases the rest -> 'captured' with the booking's
  numbers and lines, and the session's receipt is rebuilt with the terminal's receipt
  lines (terminal.billing.bill_from_journal). A terminal that books only the whole
  reservation (Book total refused with B7 or 83 for less) first gets a Partial reversal
  (06 23) of the rest, journaled 'release_sent' before it is sent, then Book total
  again. No energy delivered (the bill charges nothing, terminal.billing) -> at once
  when the driver ended it, else at the grace deadline: 'void_pending', then Reversal
  (06 30) of the reservation -> 'voided'.
- `settle_now(reference)`: one payment's owed step at once (the end-of-day closing's
  repairs on this path, terminal.payment.zvt_repairs).
- `on_refund(refund)`, `run(interval_s, wake)`: as the built-in path; `run` settles
  once, then arms the card wait (`ZvtLink.arm`), then settles every interval.

Every step is committed before it is sent. Recovery (a lost connection, a timeout, a
restart after kill -9): the terminal is asked (Repeat receipt 06 20, its last
transaction) and a step is retried only when it was not done: a booking is recognised
by the reservation's trace number as its original trace, a reversal the terminal
already did answers B4 (already reversed); a 'requested' payment whose reservation the
terminal reports as its last transaction (approved, a receipt number no payment of ours
has) is reversed, else nothing was held. What cannot be decided is 'failed' with the
reason, for the operator and the end-of-day reconciliation.

Crash points (terminal.payment.faultpoint `ZVT_POINTS`): after the terminal took each
command (`zvt_preauth_sent`, `zvt_booking_sent`, `zvt_reversal_sent`) and after it
answered, before the journal says so (`..._answered`).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from drivers.readers.events import TerminalCard
from drivers.zvt import codes
from drivers.zvt.client import (
    ZvtConnectionError,
    ZvtConnectionLost,
    ZvtError,
    ZvtRefused,
    ZvtTimeout,
)
from drivers.zvt.results import TransactionResult
from terminal.backend.messages import Refund
from terminal.billing import bill_from_journal
from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import FaultLogger, fields, get_logger
from terminal.kernel.money import round_money
from terminal.payment.crypto import TokenKey
from terminal.payment.faultpoint import crash_point
from terminal.payment.holds import HoldStep
from terminal.payment.keeping import HoldKeeping
from terminal.payment.port import ZVT, PaymentSettings, PreauthOutcome
from terminal.payment.refunds import record_refund
from terminal.payment.zvt_link import ZvtLink
from terminal.periodic import run_periodically
from terminal.store import PaymentRow, PaymentStatus

if TYPE_CHECKING:
    from terminal.store import AsyncStore

log = get_logger("payment")

SETTLE_BATCH = 50
# Book total refused for an amount below the reservation: this terminal books only the
# whole reservation (B7 amount wrong, 83 function not possible)
CANNOT_BOOK_LESS = frozenset({codes.PREAUTH_AMOUNT_WRONG, 0x83})


class ZvtRefusedStep(ZvtError):
    """The terminal refused a step the booking needs: the payment is 'failed', for the
    operator."""
# the command names of drivers.zvt.client -> the crash point after the terminal took it
SENT_POINTS = {"pre-authorisation": "zvt_preauth_sent", "book total": "zvt_booking_sent",
               "reversal": "zvt_reversal_sent"}
# ZVT result codes -> the reason codes of terminal.kernel.driver_texts
REASONS = {0x05: "do_not_honor", 0x64: "tap_again", 0x65: "read_failed",
           0x6C: "tap_again", 0x6E: "blocked", 0x71: "insufficient_funds",
           0x78: "expired_card", 0x79: "expired_card", 0x7A: "unknown",
           0xC5: "card_not_supported", 0x67: "card_not_supported",
           0x68: "card_not_supported"}
UNAVAILABLE = frozenset({0x6B, 0x7D, 0x83, 0x9A, 0x9B, 0x9C, 0xA0, 0xA1, 0xA3, 0xE2, 0xFF})


def reason_of(code: int) -> str:
    """The driver's reason code of a ZVT result code."""
    if code in REASONS:
        return REASONS[code]
    if code in UNAVAILABLE:
        return "payment_unavailable"
    return "declined"


def on_acknowledged(command: str) -> None:
    """The ZVT client's hook: the crash point after the terminal took a command."""
    point = SENT_POINTS.get(command)
    if point is not None:
        crash_point(point)


def _pt_fields(result: TransactionResult) -> dict[str, Any]:
    """What the journal keeps of a terminal's answer (the number only ever masked)."""
    return {"receipt_number": result.receipt_number, "trace_number": result.trace_number,
            "terminal_id": result.terminal_id, "card_type": result.card_type,
            "card_name": result.card_name, "masked_pan": result.masked_pan,
            "amount": str(result.amount) if result.amount is not None else None,
            "result_code": result.result_code, "lines": list(result.receipt_lines)}


def psp_reference_of(terminal_id: int | None, receipt_number: int) -> str:
    """The payment's reference on the receipt and towards the backend."""
    return f"zvt:{terminal_id or 0}:{receipt_number:04d}"


class ZvtPayments(HoldKeeping):
    """The external terminal's path (`PaymentTerminal` of kind "zvt")."""

    kind = ZVT
    via = ZVT

    def __init__(self, settings: PaymentSettings, token_key: TokenKey, link: ZvtLink,
                 store: AsyncStore, clock: Clock,
                 publish: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.settings = settings
        self.token_key = token_key
        self.link = link
        self.store = store
        self.clock = clock
        self.publish = publish
        self._settling = asyncio.Lock()
        self._faults = FaultLogger(log, "ZVT payment settlement", settings.fault_interval_s,
                                   clock)
        self._broken: set[str] = set()  # payments whose failure was logged in full
        self._init_keeping()  # grace deadlines wake settlement (terminal.payment.keeping)

    # ---- pre-authorisation --------------------------------------------------------------

    async def preauthorize(self, session_id: str, token: str, card: TerminalCard,
                           amount: Decimal | None = None) -> PreauthOutcome:
        settings = self.settings
        asked = settings.holds.hold_amount(amount)
        reference = f"{session_id}:pay"
        base = {"scheme": card.scheme, "last4": card.masked_pan[-4:]}
        await self.store.call(
            self.store.store.add_payment, reference=reference, session_id=session_id,
            token=token, masked_pan=card.masked_pan, scheme=card.scheme, last4=base["last4"],
            currency=settings.currency, amount_requested=asked, at=self.clock.now(),
            via=ZVT, pt={"card_type": card.card_type, "card_name": card.card_name},
        )
        try:
            result = await self.link.command(lambda pt: pt.preauthorize(asked))
        except (ZvtConnectionError, ZvtRefused) as exc:  # the terminal did not take it
            log.warning("ZVT pre-authorisation not possible",
                        extra=fields(reference=reference, error=str(exc)))
            return await self._declined(reference, "payment_unavailable", base, None)
        except ZvtError as exc:  # taken, the answer lost: ask the terminal
            found = await self._preauth_outcome(reference, exc)
            if found is None:
                return PreauthOutcome(False, "payment_unavailable", **base)
            result = found
        crash_point("zvt_preauth_answered")
        if not result.approved:
            return await self._declined(reference, reason_of(result.result_code), base,
                                        result)
        approved = round_money(min(result.amount or asked, asked), settings.currency)
        if approved <= 0 or result.receipt_number is None:
            # an approval without an amount or receipt number cannot be booked
            return await self._declined(reference, "payment_unavailable", base, result)
        psp = psp_reference_of(result.terminal_id, result.receipt_number)
        approved_at = self.clock.now()
        await self.store.call(
            self.store.store.update_payment, reference, approved_at,
            status=PaymentStatus.APPROVED, amount_approved=approved, psp_reference=psp,
            pt_json=_pt_fields(result), approved_at=approved_at,
        )
        log.info("ZVT payment pre-authorised",
                 extra=fields(session=session_id, scheme=card.scheme, amount=approved,
                              psp_reference=psp, partial=approved < asked))
        return PreauthOutcome(True, None, approved, psp, approved_at=approved_at, **base)

    async def _preauth_outcome(self, reference: str,
                               lost: ZvtError) -> TransactionResult | None:
        """After the answer of a pre-authorisation was lost: the reservation if the
        terminal made it (its last transaction), an Abort result if it did not; None
        when the terminal cannot be asked ('requested' stays, settlement releases it)."""
        payment = await self.store.call(self.store.store.payment, reference=reference)
        assert payment is not None
        try:
            found = await self._orphan_reservation(payment)
        except ZvtError as exc:
            log.warning("ZVT pre-authorisation outcome unknown; released by settlement",
                        extra=fields(reference=reference, error=f"{lost}; then {exc}"))
            return None
        log.info("ZVT pre-authorisation answer lost; the terminal's last transaction "
                 "tells", extra=fields(reference=reference, held=found is not None))
        return found or TransactionResult("pre-authorisation", codes.SYSTEM_ERROR,
                                          self.settings.currency)

    async def _declined(self, reference: str, reason: str, base: dict[str, str],
                        result: TransactionResult | None) -> PreauthOutcome:
        changes: dict[str, Any] = {}
        if result is not None:
            changes["pt_json"] = {**_pt_fields(result), "result_text": result.result_text}
        await self.store.call(self.store.store.update_payment, reference, self.clock.now(),
                              status=PaymentStatus.DECLINED, reason=reason, **changes)
        log.info("ZVT payment declined", extra=fields(
            reference=reference, reason=reason,
            result=f"{result.result_code:02X}" if result is not None else None))
        return PreauthOutcome(False, reason, **base)

    # ---- booking / reversal ---------------------------------------------------------------

    async def settle_due(self) -> int:
        """Move every due payment on; stops at the first terminal or journal trouble (the
        rest waits for the next round). Returns how many were finished."""
        async with self._settling:
            store = self.store.store
            try:
                due = await self.store.call(store.payments_to_settle, ZVT)
            except (sqlite3.Error, OSError) as exc:
                self._faults.failed(f"journal: {type(exc).__name__}: {exc}")
                return 0
            finished = 0
            failing = False
            for payment in due[:SETTLE_BATCH]:
                try:
                    finished += await self._settle(payment)
                except ZvtError as exc:
                    log.info("ZVT settlement waits for the terminal",
                             extra=fields(reference=payment.reference, error=str(exc)))
                    self._faults.failed(f"terminal: {exc}")
                    return finished
                except (sqlite3.Error, OSError) as exc:
                    self._faults.failed(f"journal: {type(exc).__name__}: {exc}")
                    return finished
                except Exception as exc:  # one bad payment must not hold up the others
                    failing = True
                    if payment.reference not in self._broken:
                        self._broken.add(payment.reference)
                        log.exception("ZVT settlement failed; retried next round",
                                      extra=fields(reference=payment.reference))
                    self._faults.failed(f"{payment.reference}: {type(exc).__name__}: {exc}")
            if not failing:
                self._faults.recovered()
            return finished

    async def settle_now(self, reference: str) -> PaymentRow | None:
        """One payment's owed step now (an end-of-day closing's repair): what
        `settle_due` would do, through the same journaled steps (a reservation of a
        closed session booked with its bill or released; a pending booking or reversal
        finished). The payment as the journal then has it; None when no ZVT payment has
        this reference. ZvtError when the terminal cannot be asked."""
        async with self._settling:
            store = self.store.store
            payment = await self.store.call(store.payment, reference=reference)
            if payment is None or payment.via != ZVT:
                return None
            await self._settle(payment)
            return await self.store.call(store.payment, reference=reference)

    async def _settle(self, payment: PaymentRow) -> int:
        store = self.store.store
        status = payment.status
        if status is PaymentStatus.REQUESTED:
            await self.store.call(store.update_payment, payment.reference, self.clock.now(),
                                  status=PaymentStatus.VOID_PENDING, reason="interrupted")
            payment = replace(payment, status=PaymentStatus.VOID_PENDING, reason="interrupted")
            status = PaymentStatus.VOID_PENDING
        if status is PaymentStatus.APPROVED:
            step = await self._hold_step(payment)
            if step is HoldStep.KEEP:
                return 0  # kept for the same card's next tap until its grace deadline
            charged = (await self.store.call(store.amount_charged, payment.session_id)
                       if step is HoldStep.CAPTURE else None)
            approved = payment.amount_approved or Decimal(0)
            amount = min(charged, approved) if charged is not None else Decimal(0)
            status = (PaymentStatus.CAPTURE_PENDING if amount > 0
                      else PaymentStatus.VOID_PENDING)
            await self.store.call(store.update_payment, payment.reference, self.clock.now(),
                                  status=status, amount_captured=amount if amount > 0 else None)
            payment = replace(payment, status=status, amount_captured=amount)
        if status is PaymentStatus.CAPTURE_PENDING:
            return await self._book(payment)
        if status is PaymentStatus.VOID_PENDING:
            return await self._reverse(payment)
        return 0

    async def _update_pt(self, payment: PaymentRow, **changes: Any) -> PaymentRow:
        pt = {**payment.pt, **changes.pop("pt", {})}
        await self.store.call(self.store.store.update_payment, payment.reference,
                              self.clock.now(), pt_json=pt, **changes)
        return replace(payment, pt_json=_json(pt), **{k: v for k, v in changes.items()
                                                      if k in ("status", "reason")})

    async def _book(self, payment: PaymentRow) -> int:
        pt = payment.pt
        amount = payment.amount_captured
        receipt = pt.get("receipt_number")
        if amount is None or receipt is None:
            return await self._failed(payment, "nothing to book: no amount or receipt number")
        retried = bool(pt.get("booking_sent"))
        if retried:  # an earlier attempt may have booked it
            done = await self._learn(lambda last: _is_booking_of(last, pt))
            if done is not None:
                return await self._booked(payment, done)
        else:
            payment = await self._update_pt(payment, pt={"booking_sent": True})
        try:
            if pt.get("release_sent") and "release" not in pt:
                payment = await self._release_rest(payment, amount)
            result = await self._send_booking(payment, receipt, amount)
            approved = payment.amount_approved or amount
            if not result.approved and result.result_code in CANNOT_BOOK_LESS \
                    and amount < approved and "release" not in payment.pt:
                # a terminal that books only the whole reservation: release the rest first
                payment = await self._release_rest(payment, amount)
                result = await self._send_booking(payment, receipt, amount)
        except ZvtRefusedStep as exc:
            return await self._failed(payment, str(exc))
        if result.approved:
            return await self._booked(payment, result)
        if result.result_code == codes.PREAUTH_ERROR and retried:
            return await self._failed(payment, "booking not confirmed: the terminal no "
                                      "longer knows the reservation (see end-of-day)")
        return await self._failed(payment, f"booking refused: {result.result_code:02X} "
                                  f"{result.result_text}")

    async def _send_booking(self, payment: PaymentRow, receipt: int,
                            amount: Decimal) -> TransactionResult:
        """Book total; a lost answer is learnt from the terminal (or raised)."""
        pt = payment.pt
        try:
            result = await self.link.command(lambda t: t.book_total(receipt, amount))
        except (ZvtConnectionLost, ZvtTimeout):
            done = await self._learn(lambda last: _is_booking_of(last, pt))
            if done is None:
                raise
            result = done
        crash_point("zvt_booking_answered")
        return result

    async def _release_rest(self, payment: PaymentRow, amount: Decimal) -> PaymentRow:
        """Partial reversal (06 23) of what the reservation holds beyond `amount`, once:
        'release_sent' is journaled before it is sent; after a loss the terminal's last
        transaction tells whether it was done. ZvtError when it cannot be known."""
        pt = payment.pt
        receipt = pt["receipt_number"]
        rest = (payment.amount_approved or amount) - amount
        if not pt.get("release_sent"):
            payment = await self._update_pt(payment, pt={"release_sent": True})
            result = None
        else:
            result = await self._learn(lambda last: _is_release_of(last, pt, rest))
        if result is None:
            try:
                result = await self.link.command(lambda t: t.partial_reversal(receipt, rest))
            except (ZvtConnectionLost, ZvtTimeout):
                result = await self._learn(lambda last: _is_release_of(last, pt, rest))
                if result is None:
                    raise
        if not result.approved:
            raise ZvtRefusedStep(f"partial reversal of {rest} refused: "
                                 f"{result.result_code:02X} {result.result_text}")
        log.info("ZVT reservation reduced before booking",
                 extra=fields(reference=payment.reference, released=rest))
        return await self._update_pt(payment, pt={"release": _pt_fields(result)})

    async def _booked(self, payment: PaymentRow, result: TransactionResult) -> int:
        booking = _pt_fields(result)
        await self._update_pt(payment, status=PaymentStatus.CAPTURED,
                              pt={"booking": booking})
        log.info("ZVT payment booked", extra=fields(
            session=payment.session_id, amount=result.amount,
            receipt_number=result.receipt_number))
        if booking["lines"]:
            await self._receipt_with_terminal_lines(payment.session_id)
        return 1

    async def _receipt_with_terminal_lines(self, session_id: str) -> None:
        """The session's receipt again, now with the terminal's booking receipt."""
        store = self.store.store
        bill = await self.store.call(bill_from_journal, store, session_id)
        if bill is None:
            return
        await self.store.call(store.replace_receipt, session_id, bill.receipt,
                              self.clock.now(), "terminal")
        if self.publish is not None:
            self.publish({"type": "receipt_updated", "session_id": session_id})

    async def _reverse(self, payment: PaymentRow) -> int:
        pt = payment.pt
        receipt = pt.get("receipt_number")
        if receipt is None:  # asked, no answer journaled: did the terminal hold money?
            orphan = await self._orphan_reservation(payment)
            if orphan is None:
                return await self._voided(payment, None, "nothing held")
            receipt = orphan.receipt_number
            payment = await self._update_pt(payment, pt=_pt_fields(orphan))
        assert receipt is not None
        try:
            result = await self.link.command(lambda t: t.reverse(receipt))
        except (ZvtConnectionLost, ZvtTimeout):
            done = await self._learn(lambda last: _is_reversal_of(last, receipt, pt))
            if done is None:
                raise
            result = done
        crash_point("zvt_reversal_answered")
        if result.approved:
            return await self._voided(payment, result, "released")
        if result.result_code == codes.ALREADY_REVERSED:
            return await self._voided(payment, result, "already released")
        return await self._failed(payment, f"reversal refused: {result.result_code:02X} "
                                  f"{result.result_text}")

    async def _orphan_reservation(self, payment: PaymentRow) -> TransactionResult | None:
        """The terminal's last transaction when it is a reservation of ours the journal
        never saw: approved, a receipt number no payment has, no original trace, at most
        the amount asked."""
        last = await self.link.command(lambda t: t.last_transaction())
        if not last.approved or last.receipt_number is None or last.original_trace \
                or last.amount is None or last.amount > payment.amount_requested:
            return None
        known = await self.store.call(self.store.store.payment_with_pt_receipt,
                                      last.receipt_number)
        return None if known is not None else last

    async def _voided(self, payment: PaymentRow, result: TransactionResult | None,
                      how: str) -> int:
        pt = {"reversal": _pt_fields(result)} if result is not None else {}
        await self._update_pt(payment, status=PaymentStatus.VOIDED, pt=pt)
        log.info("ZVT payment released", extra=fields(
            session=payment.session_id, reference=payment.reference, how=how))
        if result is not None:  # a reservation was released at the terminal
            self._hold_released(payment)
        return 1

    async def _learn(self, matches: Callable[[TransactionResult], bool]
                     ) -> TransactionResult | None:
        """The terminal's last transaction if it is the one looked for (Repeat receipt)."""
        last = await self.link.command(lambda t: t.last_transaction())
        return last if matches(last) else None

    async def _failed(self, payment: PaymentRow, reason: str) -> int:
        await self.store.call(self.store.store.update_payment, payment.reference,
                              self.clock.now(), status=PaymentStatus.FAILED, reason=reason)
        log.error("ZVT payment needs the operator", extra=fields(
            session=payment.session_id, reference=payment.reference, reason=reason))
        return 1

    # ---- refunds, periodic -------------------------------------------------------------

    async def on_refund(self, refund: Refund) -> bool:
        return await record_refund(self.store, self.clock, self.publish, refund)

    async def run(self, interval_s: float, wake: asyncio.Event) -> None:
        """Settle what a restart left first, then keep the terminal waiting for cards,
        and settle every interval or at once when `wake` is set."""
        self._keep_waking(wake)
        try:
            await self.settle_due()
        except Exception:
            log.exception("ZVT settlement failed; retrying")
        self.link.arm()
        await run_periodically(self.settle_due, interval_s, wake, lambda exc: log.error(
            "ZVT settlement failed; retrying", exc_info=exc))


def _is_booking_of(last: TransactionResult, pt: dict[str, Any]) -> bool:
    """A booking of the reservation `pt`: approved, its original trace the reservation's,
    a receipt number of its own (a partial reversal keeps the reservation's)."""
    return (last.approved and last.original_trace is not None
            and last.original_trace == pt.get("trace_number")
            and last.receipt_number != pt.get("receipt_number"))


def _is_release_of(last: TransactionResult, pt: dict[str, Any], rest: Decimal) -> bool:
    """The partial reversal of `rest` of the reservation `pt`."""
    return (last.approved and last.receipt_number == pt.get("receipt_number")
            and last.original_trace == pt.get("trace_number") and last.amount == rest)


def _is_reversal_of(last: TransactionResult, receipt: int, pt: dict[str, Any]) -> bool:
    """The reversal of reservation `receipt`: approved, the same receipt number, another
    trace number than the reservation's."""
    return (last.approved and last.receipt_number == receipt
            and last.trace_number != pt.get("trace_number") and not last.original_trace)


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, sort_keys=True)
