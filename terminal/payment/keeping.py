"""Keeping card holds, the I/O half of terminal.payment.holds, shared by both card paths
(terminal.payment.card `CardPayments`, terminal.payment.zvt `ZvtPayments`).

Provides `HoldKeeping`, a mixin for a `PaymentTerminal` that has `via` (its payments'
path: 'gateway' or 'zvt'), `settings`, `store`, `clock`, `publish` and `_settling` (the
lock its settlement holds):
- `_hold_step(payment)`: capture, void now, or keep the approved payment of a closed
  session (`HoldPolicy.settlement` on the session's energy, stop reason and journaled
  deadline `hold_until`, which the driver's touches move); a kept one wakes settlement
  at that deadline (`_wake_at`, once per deadline; the wake-up
  event is the one `run(interval_s, wake)` was given, set with `_keep_waking(wake)`;
  `_init_keeping()` in the class's __init__);
- `reuse_hold(token, session_id)`: the same card's retried tap within the grace period
  takes over the kept hold of the same path (`Store.kept_hold(token, via)`,
  `Store.move_payment`, audited) instead of a second pre-authorisation;
- `_hold_released(payment)`: tells the screen (`hold_released`) that the whole hold of a
  voided payment went back to the card.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from terminal.kernel.logsetup import fields, get_logger
from terminal.payment.holds import HoldStep
from terminal.payment.port import PaymentSettings, PreauthOutcome

if TYPE_CHECKING:
    from terminal.kernel.clock import Clock
    from terminal.store import AsyncStore, PaymentRow

log = get_logger("payment")

WAKE_MARGIN_S = 0.05  # after the deadline, so the clock's now is past it


class HoldKeeping:
    """Kept holds: the grace rule at settlement, reuse by a retried tap, the release
    event (see the module docstring for what the class using it must have)."""

    via: ClassVar[str]
    settings: PaymentSettings
    store: AsyncStore
    clock: Clock
    publish: Callable[[dict[str, Any]], None] | None
    _settling: asyncio.Lock
    _wake: asyncio.Event | None  # settlement's wake-up, set by run()
    _wakes: set[datetime]  # grace deadlines a wake-up is scheduled for

    def _init_keeping(self) -> None:
        """Called by the class's __init__: no wake-up yet, none scheduled."""
        self._wake = None
        self._wakes = set()

    def _keep_waking(self, wake: asyncio.Event) -> None:
        """Settlement's wake-up event (from `run`): set at a kept hold's deadline."""
        self._wake = wake

    async def _hold_step(self, payment: PaymentRow) -> HoldStep:
        """Capture, void, or keep the approved payment of a closed session
        (terminal.payment.holds); a kept one wakes settlement at its deadline."""
        store = self.store.store
        delivered, reason = await self.store.call(store.session_energy, payment.session_id)
        # the deadline as journaled with the session (moved by the driver's touches)
        hold_until = await self.store.call(store.session_hold_until, payment.session_id)
        policy = self.settings.holds
        step = policy.settlement(delivered_wh=delivered, stop_reason=reason,
                                 approved_at=payment.approved_at, now=self.clock.now(),
                                 hold_until=hold_until)
        deadline = policy.deadline(payment.approved_at, hold_until)
        if step is HoldStep.KEEP and deadline is not None:
            self._wake_at(deadline)
        return step

    def _wake_at(self, deadline: datetime) -> None:
        """Settlement runs again at `deadline` (the clock's time), once per deadline."""
        wakes = self._wakes
        if self._wake is None or deadline in wakes:
            return
        wakes.add(deadline)
        delay_s = max((deadline - self.clock.now()).total_seconds(), 0.0) / self.clock.speed
        wake = self._wake

        def fire() -> None:
            wakes.discard(deadline)
            wake.set()

        asyncio.get_running_loop().call_later(delay_s + WAKE_MARGIN_S, fire)

    async def reuse_hold(self, token: str, session_id: str) -> PreauthOutcome | None:
        """The same card tapped again while its last hold on this path is kept (its
        session ended without energy, not by the driver, within the grace period): the
        payment moves to `session_id` (journaled and audited) and its approval is
        returned; None when there is no such hold (then a new pre-authorisation is asked
        for)."""
        async with self._settling:  # never while settlement decides about the same hold
            store = self.store.store
            found = await self.store.call(store.kept_hold, token, self.via)
            if found is None:
                return None
            payment, session = found
            delivered, reason = await self.store.call(store.session_energy, session["id"])
            hold_until = await self.store.call(store.session_hold_until, session["id"])
            policy = self.settings.holds
            if not policy.reusable(delivered_wh=delivered, stop_reason=reason,
                                   approved_at=payment.approved_at, now=self.clock.now(),
                                   hold_until=hold_until):
                return None
            await self.store.call(store.move_payment, payment.reference, session_id,
                                  self.clock.now())
        log.info("card hold reused by the same card's new tap",
                 extra=fields(session=session_id, from_session=payment.session_id,
                              reference=payment.reference, amount=payment.amount_approved,
                              via=self.via))
        return PreauthOutcome(True, None, payment.amount_approved, payment.psp_reference,
                              offline=payment.offline, scheme=payment.scheme,
                              last4=payment.last4, approved_at=payment.approved_at,
                              reused=True,
                              hold_until=policy.deadline(payment.approved_at, hold_until))

    def _hold_released(self, payment: PaymentRow) -> None:
        """The screen says the whole hold of a voided payment went back to the card."""
        if self.publish is not None and payment.amount_approved is not None:
            self.publish({"type": "hold_released", "session_id": payment.session_id,
                          "amount": str(payment.amount_approved),
                          "currency": payment.currency})
