"""EMV contactless read over an APDU transport (SKELETON: contract only, to be filled in).

Contract (other modules rely on it):
- `Transmit = Callable[[bytes], bytes]`: sends a C-APDU, returns the R-APDU with SW1 SW2
  as its last two bytes. A transport raises `CardGone` when the card left the field;
  `read_emv` lets `CardGone` propagate unchanged.
- `read_emv(transmit, terminal, today) -> EmvRead`; raises `NotEmvCard` when the card has
  no payment application (no PPSE, 6A82 etc.: the caller treats it as a plain RFID card),
  `EmvError(reason)` for anything else that went wrong (no supported AID, bad status
  word, malformed TLV, missing PAN...). Never any other exception for any card answer.
  An expired card is returned normally (the caller decides; `EmvRead.card.expiry_yymm`).
- `EmvError.reason` is short English for logs and never contains card data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from terminal.payment import CardData

Transmit = Callable[[bytes], bytes]


class CardGone(Exception):
    """The card left the field during the read (raised by the transport)."""


class EmvError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotEmvCard(EmvError):
    """No payment application on this card."""


@dataclass(frozen=True)
class TerminalParams:
    country_code: str  # ISO 3166-1 numeric, 3 digits, e.g. "276"
    currency_code: str  # ISO 4217 numeric, 3 digits, e.g. "978"
    amount_minor: int  # the pre-authorisation amount in minor units (9F02)


@dataclass(frozen=True)
class EmvRead:
    card: CardData = field(repr=False)
    aid: str  # hex, uppercase
    scheme: str  # visa, mastercard, amex, discover, jcb, unionpay, maestro, interac
    label: str  # application label (50) or preferred name, "" if none

    def __repr__(self) -> str:
        return f"EmvRead(card={self.card!r}, aid={self.aid!r}, scheme={self.scheme!r})"


def read_emv(transmit: Transmit, terminal: TerminalParams, today: date) -> EmvRead:
    raise NotImplementedError
