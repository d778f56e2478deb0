"""The card hold policy: which amount is held, how long a hold without energy lives, when
a retried tap reuses it, and what is released (docs/payment.md, "Holds a driver can trust").

Provides, pure (no I/O, no clock of its own), for every card path (the built-in reader and
an external payment terminal alike: only a card `token`, amounts and journaled times go in):
- `parse_budget_choices(text)`: `[payment] budget_choices` as amounts, and
  `budget_problems(choices, preauth_amount)` the rule between that key and
  `[payment] preauth_amount` (the default hold must be one of the choices);
- `HoldPolicy`: the hold for a chosen budget (`hold_amount`, `check_budget`), the grace
  deadline of an approval (`grace_deadline`), what settlement does with an approved
  payment of a closed session (`settlement`: capture, void now, or keep for a retried
  tap), whether a tap may reuse a kept hold (`reusable`);
- `released(reserved, charged)`: what goes back to the card.

Rules:
- budget choices: 1 to MAX_BUDGET_CHOICES amounts, each above 0 and at most MAX_BUDGET,
  with at most 2 decimals, all different; `preauth_amount` is one of them (it is the
  hold when the driver picks none). An empty text means no picker (the hold is always
  `preauth_amount`).
- grace: a hold whose session delivered no energy lives at most `grace_s` after its
  approval (the approval time is journaled with the payment), or until its session's
  journaled `hold_until` when the driver's touches moved it (at most ten graces after
  the session opened, terminal.session.machine). A session that ended
  without energy because of the driver (stop button, the same card again, a cancel)
  is voided at once; one that ended for another reason (no vehicle plugged in in time,
  the vehicle drew nothing, a charger fault) keeps its hold until the deadline, so the
  same card tapped again starts a new session on it instead of a second hold.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation

MAX_BUDGET_CHOICES = 4  # buttons that fit the idle screen at 78 px and more
MAX_BUDGET = Decimal(1000)
BUDGET_PLACES = 2
DRIVER_STOPS = frozenset({"Local"})  # session stop reasons that are the driver's own


class BudgetError(ValueError):
    """A budget that is not offered; the message names the amounts that are."""


class HoldStep(enum.StrEnum):
    CAPTURE = "capture"  # energy was delivered: the bill's amount is captured
    VOID = "void"  # nothing to pay and nothing to wait for: released now
    KEEP = "keep"  # no energy, not the driver's stop, grace still running: kept for a retry


def parse_budget_choices(text: str) -> tuple[Decimal, ...]:
    """The amounts of `[payment] budget_choices` ("20.00, 50.00, 80.00"), in the order
    given; ValueError saying what is wrong. "" -> no choices."""
    if not text.strip():
        return ()
    parts = [part.strip() for part in text.split(",")]
    if len(parts) > MAX_BUDGET_CHOICES:
        raise ValueError(f"at most {MAX_BUDGET_CHOICES} amounts, got {len(parts)}")
    amounts: list[Decimal] = []
    for part in parts:
        try:
            amount = Decimal(part)
        except InvalidOperation:
            raise ValueError(f"{part[:20]!r} is not an amount (e.g. \"20.00\")") from None
        if not amount.is_finite() or amount <= 0 or amount > MAX_BUDGET:
            raise ValueError(f"{part[:20]!r}: expected an amount above 0 and at most "
                             f"{MAX_BUDGET}")
        exponent = amount.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > BUDGET_PLACES:
            raise ValueError(f"{part[:20]!r}: at most {BUDGET_PLACES} decimals")
        if amount in amounts:
            raise ValueError(f"{part[:20]!r} is given twice")
        amounts.append(amount)
    return tuple(amounts)


def budget_problems(choices_text: str, preauth_text: str) -> list[str]:
    """The rule between `budget_choices` and `preauth_amount`, as config problems."""
    try:
        choices = parse_budget_choices(choices_text)
        default = Decimal(preauth_text)
    except (ValueError, InvalidOperation):
        return []  # each key's own check reports it
    if choices and default not in choices:
        return [f"budget_choices = {choices_text!r}: expected preauth_amount "
                f"({preauth_text}, the hold when the driver picks none) among the choices"]
    return []


def released(reserved: Decimal, charged: Decimal) -> Decimal:
    """What goes back to the card: reserved - charged (never below 0)."""
    return max(reserved - charged, Decimal(0))


@dataclass(frozen=True)
class HoldPolicy:
    default_amount: Decimal  # [payment] preauth_amount
    choices: tuple[Decimal, ...]  # [payment] budget_choices; () = no picker
    grace_s: float  # [payment] hold_grace_s

    def check_budget(self, amount: Decimal) -> Decimal:
        """`amount` if it is one of the choices (compared as amounts: "20" is 20.00);
        BudgetError naming the offered ones otherwise."""
        for choice in self.choices:
            if choice == amount:
                return choice
        offered = ", ".join(str(choice) for choice in self.choices) or "none"
        raise BudgetError(f"amount: {amount} is not a budget offered here (offered: "
                          f"{offered})")

    def hold_amount(self, budget: Decimal | None) -> Decimal:
        """The amount to pre-authorise: the chosen budget, else the default."""
        return self.default_amount if budget is None else self.check_budget(budget)

    def grace_deadline(self, approved_at: datetime) -> datetime:
        """When a hold that saw no energy is released, unless the driver extended it."""
        return approved_at + timedelta(seconds=self.grace_s)

    def deadline(self, approved_at: datetime | None,
                 hold_until: datetime | None) -> datetime | None:
        """The hold's deadline, one source of truth: the session's journaled
        `hold_until` (set at the tap to `grace_deadline(approved_at)`, moved by the
        driver's touches), else the grace from the journaled approval; None without
        either."""
        if hold_until is not None:
            return hold_until
        return self.grace_deadline(approved_at) if approved_at is not None else None

    def settlement(self, *, delivered_wh: Decimal, stop_reason: str | None,
                   approved_at: datetime | None, now: datetime,
                   hold_until: datetime | None = None) -> HoldStep:
        """What to do with the approved payment of a closed session (`hold_until`: its
        session's journaled deadline, see `deadline`)."""
        if delivered_wh > 0:
            return HoldStep.CAPTURE
        deadline = self.deadline(approved_at, hold_until)
        if stop_reason in DRIVER_STOPS or approved_at is None or deadline is None:
            return HoldStep.VOID
        return HoldStep.KEEP if now < deadline else HoldStep.VOID

    def reusable(self, *, delivered_wh: Decimal, stop_reason: str | None,
                 approved_at: datetime | None, now: datetime,
                 hold_until: datetime | None = None) -> bool:
        """Whether a new tap of the same card may start a session on this kept hold."""
        return self.settlement(delivered_wh=delivered_wh, stop_reason=stop_reason,
                               approved_at=approved_at, now=now,
                               hold_until=hold_until) is HoldStep.KEEP
