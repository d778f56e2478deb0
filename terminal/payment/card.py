"""Card payment: pre-authorisation at the tap, capture or void at the end, refunds.

Provides `CardPayments`, used by the daemon:
- `preauthorize(session_id, token, read)`: the card data is sealed to the payment
  gateway at once (terminal.payment.crypto.seal) and the PAN dropped; the payment row is
  committed ('requested') before the backend is asked. Approved -> the session's cost cap
  is the approved amount (a partial approval lowers it); declined -> the reason code.
  Backend unreachable -> declined ("charger offline"), unless `[payment]
  offline_floor_limit` is set: then approved offline up to that limit, and the sealed
  envelope is kept (encrypted to the gateway; the terminal cannot open it) until the
  gateway has seen it. An expired card is declined without asking anyone.
- `settle_due()`: every payment whose session has closed is captured with the receipt's
  amount charged (never more than approved: the receipt caps it), or voided when the
  session delivered nothing to pay for. Each step is committed before it is sent
  ('capture_pending' / 'void_pending') and sent again after a restart or outage until
  the backend answers (captures and voids are idempotent by our reference). A capture the
  gateway refuses is marked 'failed' with its reason and logged for the operator.
- holds (terminal.payment.holds, docs/payment.md): `preauthorize(..., amount)` holds the
  budget the driver picked (None: `preauth_amount`); the approval time is journaled
  (`approved_at`). Settlement keeps an approved payment whose session closed without
  energy for a reason other than the driver's until the grace deadline (the session's
  journaled `hold_until`, which the driver's touches may have moved; waking itself
  then) and voids it then; `reuse_hold(token, session_id)` moves such a kept hold to the
  same card's new session (journaled, audited) instead of a second pre-authorisation.
  A void of an approved hold publishes `hold_released` for the screen. The keeping is
  terminal.payment.keeping `HoldKeeping`, shared with the ZVT path.
- `on_refund(refund)`: a refund the backend made (full or partial) is recorded on the
  session (duplicates by refund id are ignored) and the receipt is rebuilt with it.

Crash tests stop the process at two points of a pre-authorisation
(terminal.payment.faultpoint): after 'requested' is journaled, and after the gateway
approved but before the journal says so; after the restart the payment is voided.

On failure: nothing here raises into the daemon's loop for backend trouble; store errors
propagate (what cannot be journaled must not be acted on).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

from terminal.backend.api import Backend, BackendUnavailable
from terminal.backend.messages import CaptureRequest, PreauthRequest, Refund, VoidRequest
from terminal.kernel.cards import card_expired, last4, mask_pan
from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import FaultLogger, fields, get_logger
from terminal.kernel.money import round_money, to_minor_units
from terminal.payment.crypto import TokenKey, seal
from terminal.payment.faultpoint import crash_point
from terminal.payment.holds import HoldStep
from terminal.payment.keeping import HoldKeeping
from terminal.payment.port import BUILTIN, GATEWAY, PaymentSettings, PreauthOutcome
from terminal.payment.refunds import record_refund
from terminal.periodic import run_periodically
from terminal.store import PaymentRow, PaymentStatus

if TYPE_CHECKING:
    from drivers.readers.emv import EmvRead
    from terminal.store import AsyncStore

log = get_logger("payment")

SETTLE_BATCH = 50


__all__ = ["CardPayments", "PaymentSettings", "PreauthOutcome"]


class CardPayments(HoldKeeping):
    """The built-in path (`PaymentTerminal` of kind "builtin")."""

    kind = BUILTIN
    via = GATEWAY

    def __init__(
        self,
        settings: PaymentSettings,
        token_key: TokenKey,
        gateway_key: X25519PublicKey,
        backend: Backend,
        store: AsyncStore,
        clock: Clock,
        publish: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.token_key = token_key
        self.gateway_key = gateway_key
        self.backend = backend
        self.store = store
        self.clock = clock
        self._settling = asyncio.Lock()
        # a journal that cannot be written (disk full) fails every round alike: logged
        # once, then rate-limited; a payment that fails for another reason gets its
        # traceback once, then joins the rate-limited count
        self._faults = FaultLogger(log, "payment settlement", settings.fault_interval_s,
                                   clock)
        self._broken: set[str] = set()
        self._init_keeping()  # grace deadlines wake settlement (terminal.payment.keeping)
        self.publish = publish  # tells the local API's clients a receipt changed

    @property
    def preauth_minor(self) -> int:
        return to_minor_units(self.settings.preauth_amount, self.settings.currency)

    # ---- pre-authorisation --------------------------------------------------------------

    async def preauthorize(self, session_id: str, token: str, read: EmvRead,
                           amount: Decimal | None = None) -> PreauthOutcome:
        """Pre-authorise `amount` (a budget the driver chose; None = `preauth_amount`;
        BudgetError if it is not offered) on the card of `read`."""
        card = read.card
        settings = self.settings
        asked = settings.holds.hold_amount(amount)
        now = self.clock.now()
        reference = f"{session_id}:pay"
        base = {"scheme": read.scheme, "last4": last4(card.pan)}
        masked = mask_pan(card.pan)
        await self.store.call(
            self.store.store.add_payment, reference=reference, session_id=session_id,
            token=token, masked_pan=masked, scheme=read.scheme, last4=base["last4"],
            currency=settings.currency, amount_requested=asked, at=now,
        )
        crash_point("payment_requested")
        if card_expired(card, now.date()):
            return await self._declined(reference, "expired_card", base)
        envelope = seal(card, self.gateway_key, settings.station_id, reference)
        request = PreauthRequest(
            reference=reference, station_id=settings.station_id,
            amount=asked, currency=settings.currency, envelope=envelope,
            token=token, masked_pan=masked, scheme=read.scheme,
        )
        try:
            response = await asyncio.wait_for(self.backend.preauthorize(request),
                                              settings.request_timeout_s)
        except (BackendUnavailable, TimeoutError) as exc:
            return await self._offline(reference, envelope, base, str(exc) or "timeout",
                                       asked)
        crash_point("payment_answered")
        if not response.approved:
            return await self._declined(reference, response.reason or "declined", base)
        approved = min(response.amount_approved or asked, asked)
        approved = round_money(approved, settings.currency)
        if approved <= 0 or not response.psp_reference:
            # an approval without an amount or reference cannot be captured
            return await self._declined(reference, "gateway_error", base)
        approved_at = self.clock.now()
        await self.store.call(
            self.store.store.update_payment, reference, approved_at,
            status=PaymentStatus.APPROVED, amount_approved=approved,
            psp_reference=response.psp_reference, approved_at=approved_at,
        )
        log.info("card payment pre-authorised",
                 extra=fields(session=session_id, scheme=read.scheme, amount=approved,
                              psp_reference=response.psp_reference,
                              partial=approved < asked))
        return PreauthOutcome(True, None, approved, response.psp_reference,
                              approved_at=approved_at, **base)

    async def _declined(self, reference: str, reason: str, base: dict[str, str]) -> PreauthOutcome:
        await self.store.call(self.store.store.update_payment, reference, self.clock.now(),
                              status=PaymentStatus.DECLINED, reason=reason)
        log.info("card payment declined", extra=fields(reference=reference, reason=reason))
        return PreauthOutcome(False, reason, **base)

    async def _offline(self, reference: str, envelope: dict[str, Any], base: dict[str, str],
                       why: str, asked: Decimal) -> PreauthOutcome:
        limit = self.settings.offline_floor_limit
        if limit is None:
            log.warning("card payment declined: backend unreachable and no offline floor "
                        "limit", extra=fields(reference=reference, error=why))
            return await self._declined(reference, "offline_payment", base)
        amount = min(limit, asked)
        approved_at = self.clock.now()
        await self.store.call(
            self.store.store.update_payment, reference, approved_at,
            status=PaymentStatus.APPROVED, amount_approved=amount, offline=True,
            envelope_json=envelope, approved_at=approved_at,
        )
        log.warning("card payment accepted offline under the floor limit",
                    extra=fields(reference=reference, amount=amount, error=why))
        return PreauthOutcome(True, None, amount, None, offline=True,
                              approved_at=approved_at, **base)

    # ---- capture / void -----------------------------------------------------------------

    async def settle_due(self) -> int:
        """Move every due payment one or more steps on; returns how many were finished.
        Stops at the first backend outage or journal failure (the rest waits for the
        next round)."""
        async with self._settling:
            store = self.store.store
            try:
                due = await self.store.call(store.payments_to_settle)
            except (sqlite3.Error, OSError) as exc:
                self._faults.failed(f"journal: {type(exc).__name__}: {exc}")
                return 0
            finished = 0
            failing = False
            for payment in due[:SETTLE_BATCH]:
                try:
                    finished += await self._settle(payment)
                except (BackendUnavailable, TimeoutError) as exc:
                    log.info("payment settlement waits for the backend",
                             extra=fields(reference=payment.reference, error=str(exc)))
                    break
                except (sqlite3.Error, OSError) as exc:  # the same for every payment
                    self._faults.failed(f"journal: {type(exc).__name__}: {exc}")
                    return finished
                except Exception as exc:  # one bad payment must not hold up the others
                    failing = True
                    self._settlement_failed(payment.reference, exc)
            if not failing:
                self._faults.recovered()
            return finished

    def _settlement_failed(self, reference: str, exc: Exception) -> None:
        """A payment's settlement failed for a reason other than the backend or the
        journal: its traceback once, then counted with the other repeats."""
        if reference not in self._broken:
            self._broken.add(reference)
            log.exception("payment settlement failed; retried next round",
                          extra=fields(reference=reference))
        self._faults.failed(f"{reference}: {type(exc).__name__}: {exc}")

    async def _settle(self, payment: PaymentRow) -> int:
        store = self.store.store
        reference = payment.reference
        status = payment.status
        if status is PaymentStatus.REQUESTED:
            # the terminal went down while asking: whatever the gateway decided, undo it
            await self.store.call(store.update_payment, reference, self.clock.now(),
                                  status=PaymentStatus.VOID_PENDING, reason="interrupted")
            status = PaymentStatus.VOID_PENDING
        if status is PaymentStatus.APPROVED:
            step = await self._hold_step(payment)
            if step is HoldStep.KEEP:
                return 0  # kept for the same card's next tap until its grace deadline
            amount = (await self._amount_to_capture(payment) if step is HoldStep.CAPTURE
                      else Decimal(0))
            status = (PaymentStatus.CAPTURE_PENDING if amount > 0
                      else PaymentStatus.VOID_PENDING)
            await self.store.call(store.update_payment, reference, self.clock.now(),
                                  status=status, amount_captured=amount if amount > 0 else None)
            payment = replace(payment, status=status, amount_captured=amount)
        if status is PaymentStatus.CAPTURE_PENDING:
            return await self._capture(payment)
        if status is PaymentStatus.VOID_PENDING:
            return await self._void(payment)
        return 0

    async def _amount_to_capture(self, payment: PaymentRow) -> Decimal:
        charged = await self.store.call(self.store.store.amount_charged, payment.session_id)
        if charged is None:
            return Decimal(0)  # no energy delivered: nothing to pay
        return min(charged, _amount(payment, "amount_approved", payment.amount_approved))

    async def _capture(self, payment: PaymentRow) -> int:
        store = self.store.store
        reference = payment.reference
        amount = _amount(payment, "amount_captured", payment.amount_captured)
        timeout_s = self.settings.request_timeout_s
        psp_reference = payment.psp_reference
        if psp_reference is None:
            # approved offline: the gateway sees the card for the first time now
            response = await asyncio.wait_for(self.backend.preauthorize(PreauthRequest(
                reference=reference, station_id=self.settings.station_id, amount=amount,
                currency=payment.currency, envelope=payment.envelope or {},
                token=payment.token, masked_pan=payment.masked_pan,
                scheme=payment.scheme,
            )), timeout_s)
            if not response.approved or not response.psp_reference:
                return await self._failed(payment, f"offline payment declined later: "
                                                   f"{response.reason or 'no reference'}")
            psp_reference = response.psp_reference
            if response.amount_approved is not None and response.amount_approved < amount:
                amount = response.amount_approved  # partial: take what the bank allows
                log.error("offline payment approved only in part; the rest is lost",
                          extra=fields(reference=reference, amount=amount))
            await self.store.call(store.update_payment, reference, self.clock.now(),
                                  psp_reference=psp_reference, envelope_json=None,
                                  amount_captured=amount)
        result = await asyncio.wait_for(self.backend.capture(CaptureRequest(
            reference=reference, psp_reference=psp_reference, amount=amount,
            currency=payment.currency,
        )), timeout_s)
        if not result.ok:
            return await self._failed(payment, f"capture refused: {result.reason}")
        await self.store.call(store.update_payment, reference, self.clock.now(),
                              status=PaymentStatus.CAPTURED, envelope_json=None)
        log.info("card payment captured", extra=fields(
            session=payment.session_id, amount=amount, psp_reference=psp_reference))
        return 1

    async def _void(self, payment: PaymentRow) -> int:
        store = self.store.store
        reference = payment.reference
        if payment.psp_reference is not None or not payment.offline:
            result = await asyncio.wait_for(self.backend.void(VoidRequest(
                reference=reference, psp_reference=payment.psp_reference,
            )), self.settings.request_timeout_s)
            if not result.ok:
                return await self._failed(payment, f"void refused: {result.reason}")
        await self.store.call(store.update_payment, reference, self.clock.now(),
                              status=PaymentStatus.VOIDED, envelope_json=None)
        log.info("card payment voided", extra=fields(session=payment.session_id,
                                                     reference=reference))
        self._hold_released(payment)
        return 1

    async def _failed(self, payment: PaymentRow, reason: str) -> int:
        await self.store.call(self.store.store.update_payment, payment.reference,
                              self.clock.now(), status=PaymentStatus.FAILED, reason=reason)
        log.error("card payment needs the operator", extra=fields(
            session=payment.session_id, reference=payment.reference, reason=reason))
        return 1

    # ---- refunds --------------------------------------------------------------------------

    async def on_refund(self, refund: Refund) -> bool:
        """Record a refund and rebuild the receipt; False (logged) when it does not fit."""
        return await record_refund(self.store, self.clock, self.publish, refund)

    # ---- periodic -------------------------------------------------------------------------

    async def run(self, interval_s: float, wake: asyncio.Event) -> None:
        """Settle due payments every interval, or at once when `wake` is set (also at a
        kept hold's grace deadline)."""
        self._keep_waking(wake)
        await run_periodically(self.settle_due, interval_s, wake, lambda exc: log.error(
            "payment settlement failed; retrying", exc_info=exc))


def _amount(payment: PaymentRow, column: str, value: Decimal | None) -> Decimal:
    """An amount the payment's status implies is there; ValueError naming it if not."""
    if value is None:
        raise ValueError(f"payment {payment.reference} ({payment.status}) has no {column}")
    return value
