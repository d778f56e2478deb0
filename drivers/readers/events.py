"""What a card reader reports, whatever the reader: the events every reader driver
(PC/SC, serial 125 kHz) puts on the daemon's queue.

- `RfidTap`: an RFID/NFC card or 125 kHz tag was presented; `uid` is uppercase hex.
- `EmvTap`: a contactless payment card was read; `read` holds the card data (the PAN
  only inside `CardData`, whose repr is masked). The PAN never leaves memory: the daemon
  turns it into a token and an envelope at once and drops it.
- `TerminalCardTap`: a bank card read by an external payment terminal (ZVT Read card);
  `card` (`TerminalCard`) holds only what the terminal gives: card type, masked number,
  expiry, sequence number. The terminal keeps the full number; payment goes through it.
- `TapFailed`: a card was seen but could not be read; `reason` is for the log and a
  technician ("card removed too early - tap again"); `code` says what the driver is told:
  removed (tap again), unreadable (tap again, or try another card), not_supported (a
  payment card of no scheme the terminal knows), not_accepted (of known schemes the
  terminal is not set to take), see_phone (a phone's wallet wants the cardholder's
  confirmation first, then tap again); `tap_again` tells whether a second try can help.
- `ReaderState`: a reader appeared, went away, or its service (pcscd) went down/up.
  `state` is one of READER_STATES.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drivers.readers.emv import EmvRead

READER_STATES = ("ready", "absent", "service_down")


@dataclass(frozen=True)
class RfidTap:
    reader: str
    uid: str  # uppercase hex: 8, 14 or 20 digits (PC/SC) or 10 (EM4100)
    technology: str = "iso14443"  # or "em4100"
    at_monotonic_s: float = 0.0  # when the card was seen (time.monotonic)


@dataclass(frozen=True)
class EmvTap:
    reader: str
    read: EmvRead = field(repr=False)
    at_monotonic_s: float = 0.0

    def __repr__(self) -> str:
        return f"EmvTap(reader={self.reader!r}, read={self.read!r})"


@dataclass(frozen=True)
class TerminalCard:
    """What a payment terminal reports of a card it read: `card_type` (the ZVT card-type
    id), `card_name` (its name as the terminal spells it), `masked_pan` (masked by the
    terminal), `expiry` (YYMM), `card_sequence`; `scheme` is the scheme id
    (terminal.kernel.cards.SCHEMES) or "" when the type is not one we know."""

    card_type: int | None
    card_name: str
    masked_pan: str
    expiry: str | None
    card_sequence: int | None
    scheme: str = ""


@dataclass(frozen=True)
class TerminalCardTap:
    reader: str
    card: TerminalCard
    at_monotonic_s: float = 0.0


TAP_FAILURES = ("removed", "unreadable", "not_supported", "not_accepted", "see_phone")


@dataclass(frozen=True)
class TapFailed:
    reader: str
    reason: str
    tap_again: bool = True
    at_monotonic_s: float = 0.0
    code: str = "unreadable"  # one of TAP_FAILURES


@dataclass(frozen=True)
class ReaderState:
    reader: str
    state: str  # one of READER_STATES
    detail: str = ""


ReaderEvent = RfidTap | EmvTap | TerminalCardTap | TapFailed | ReaderState
