"""Card data as read from a card, and how much of it may ever be shown.

- `CardData`: PAN, expiry and PAN sequence number as read from a card. Its repr and str
  are masked, so a stray log call cannot print the PAN. `CardDataError` never repeats
  the card number.
- `mask_pan()` (first 6 / last 4, PCI DSS 3.4.1), `last4()` for receipts, `scheme_name()`
  for the scheme printed on receipts, `card_expired()`.
- `SCHEMES` (every scheme id the EMV read knows), `DEFAULT_ACCEPTED_SCHEMES` and
  `parse_schemes(text)` for `[payment] accepted_schemes`.
The PAN's token and the gateway's envelope (cryptography) are terminal.payment.crypto's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from terminal.kernel.redact import luhn_ok


class CardDataError(ValueError):
    """Card data that cannot be used; the message never contains the card number."""


@dataclass(frozen=True)
class CardData:
    pan: str = field(repr=False)
    expiry_yymm: str | None = None
    pan_sequence: str | None = None

    def __post_init__(self) -> None:
        if not (self.pan.isascii() and self.pan.isdigit() and 12 <= len(self.pan) <= 19):
            raise CardDataError(f"card number: expected 12 to 19 digits, got {len(self.pan)} "
                                "characters")
        if not luhn_ok(self.pan):
            raise CardDataError("card number: check digit (Luhn) wrong")
        if self.expiry_yymm is not None and not re.fullmatch(r"\d{2}(0[1-9]|1[0-2])",
                                                             self.expiry_yymm):
            raise CardDataError("expiry: expected YYMM")

    def __repr__(self) -> str:
        return f"CardData(pan={mask_pan(self.pan)!r}, expiry=..., pan_sequence=...)"

    __str__ = __repr__


def card_expired(card: CardData, today: date) -> bool:
    """A card is valid through the last day of its expiry month (YYMM)."""
    if card.expiry_yymm is None:
        return False
    year, month = 2000 + int(card.expiry_yymm[:2]), int(card.expiry_yymm[2:])
    return (today.year, today.month) > (year, month)


SCHEME_NAMES = {
    "visa": "Visa", "vpay": "V PAY", "mastercard": "Mastercard", "maestro": "Maestro",
    "amex": "American Express", "discover": "Discover/Diners Club", "jcb": "JCB",
    "unionpay": "UnionPay", "interac": "Interac", "girocard": "girocard",
    "cb": "CB (Cartes Bancaires)",
}
SCHEMES: tuple[str, ...] = tuple(SCHEME_NAMES)
# what the terminal took before the setting existed (girocard and CB were unknown then)
DEFAULT_ACCEPTED_SCHEMES: tuple[str, ...] = (
    "visa", "vpay", "mastercard", "maestro", "amex", "discover", "jcb", "unionpay", "interac")


def scheme_name(scheme: str) -> str:
    """The name printed on receipts for an EMV scheme id."""
    return SCHEME_NAMES.get(scheme, scheme.title())


def parse_schemes(text: str) -> tuple[str, ...]:
    """Scheme ids from a comma-separated list ("visa, mastercard"), in the order given,
    without repeats. ValueError naming the allowed ids for an unknown one or an empty
    list."""
    schemes: list[str] = []
    unknown: list[str] = []
    for part in text.split(","):
        scheme = part.strip().lower()
        if not scheme:
            continue
        if scheme not in SCHEME_NAMES:
            unknown.append(part.strip())
        elif scheme not in schemes:
            schemes.append(scheme)
    allowed = ", ".join(SCHEMES)
    if unknown:
        raise ValueError(f"unknown card scheme {', '.join(unknown)}; a comma-separated list "
                         f"of: {allowed}")
    if not schemes:
        raise ValueError(f"at least one card scheme; a comma-separated list of: {allowed}")
    return tuple(schemes)


def mask_pan(pan: str) -> str:
    """The first 6 and the last 4 digits, every other digit `*` (PCI DSS 3.4.1: at most
    BIN + last 4), for every length from 13 to 19 digits. Shorter numbers (12-digit
    Maestro) keep at least 3 digits masked: 12 digits show the first 5."""
    shown_first = min(6, max(0, len(pan) - 7))
    return pan[:shown_first] + "*" * (len(pan) - shown_first - 4) + pan[-4:]


def last4(pan: str) -> str:
    return pan[-4:]
