"""The payment terminal's interface: what the tap handler, the settlement task, the
backend inbox and the daemon use of card payment, whichever implementation takes the
card.

Provides:
- `PreauthOutcome`: a pre-authorisation's answer (approved amount = the session's cost
  cap; a decline's reason code, which terminal.kernel.driver_texts turns into words);
- `PaymentSettings`: what both implementations are configured with;
- `PaymentTerminal`: the protocol. `kind` is "builtin" (terminal.payment.card
  `CardPayments`: the PC/SC reader's EMV read, the backend's gateway) or "zvt"
  (terminal.payment.zvt `ZvtPayments`: an external payment terminal over ZVT).
  `preauthorize(session_id, token, card, amount)` holds `amount` (the hold: `[payment]
  preauth_amount` unless the driver chose a budget) on the card (`card` is an
  `EmvRead` for the built-in path, a `TerminalCard` for ZVT); `settle_due()` captures
  or voids what closed sessions owe; `run(interval_s, wake)` settles periodically;
  `on_refund(refund)` records a refund the backend made.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from terminal.kernel.cards import DEFAULT_ACCEPTED_SCHEMES
from terminal.payment.holds import HoldPolicy

if TYPE_CHECKING:
    from drivers.readers.emv import EmvRead
    from drivers.readers.events import TerminalCard
    from terminal.backend.messages import Refund
    from terminal.payment.crypto import TokenKey

BUILTIN = "builtin"
ZVT = "zvt"
TERMINAL_KINDS = (BUILTIN, ZVT)
GATEWAY = "gateway"  # payments.via of the built-in path (the ZVT path's is ZVT)


@dataclass(frozen=True)
class PreauthOutcome:
    approved: bool
    reason_code: str | None = None  # when declined: do_not_honor, offline, expired_card ...
    amount: Decimal | None = None  # approved amount = the session's cost cap
    psp_reference: str | None = None
    offline: bool = False
    scheme: str = ""
    last4: str = ""
    approved_at: datetime | None = None  # the grace period of the hold counts from here
    reused: bool = False  # a kept hold of the same card, moved to this session
    hold_until: datetime | None = None  # a reused hold's deadline (its last session's,
    # perhaps moved by touches); None: the grace from approved_at


@dataclass(frozen=True)
class PaymentSettings:
    station_id: str
    currency: str  # alpha-3, the tariff's
    preauth_amount: Decimal
    offline_floor_limit: Decimal | None
    request_timeout_s: float
    accepted_schemes: tuple[str, ...] = DEFAULT_ACCEPTED_SCHEMES  # [payment] accepted_schemes
    fault_interval_s: float = 60.0  # [logging] fault_interval_s: a repeating fault's log
    budget_choices: tuple[Decimal, ...] = ()  # [payment] budget_choices
    hold_grace_s: float = 180.0  # [payment] hold_grace_s

    @property
    def holds(self) -> HoldPolicy:
        return HoldPolicy(self.preauth_amount, self.budget_choices, self.hold_grace_s)


class PaymentTerminal(Protocol):
    kind: str
    settings: PaymentSettings
    token_key: TokenKey

    async def preauthorize(self, session_id: str, token: str, card: EmvRead | TerminalCard,
                           amount: Decimal | None = None) -> PreauthOutcome: ...

    async def reuse_hold(self, token: str, session_id: str) -> PreauthOutcome | None: ...

    async def settle_due(self) -> int: ...

    async def run(self, interval_s: float, wake: asyncio.Event) -> None: ...

    async def on_refund(self, refund: Refund) -> bool: ...
