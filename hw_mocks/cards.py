"""Virtual cards for the card emulators (SKELETON: contract, RFID cards only).

Contract: a `VirtualCard` has `name`, `atr` (bytes), `reset()` (power on / warm reset:
forget any selected application) and `apdu(command) -> response` (R-APDU incl. SW1 SW2;
never raises). Every card answers `FF CA 00 00 00` (GET DATA UID, as a PC/SC contactless
reader would) with its UID. `make_card(spec)` builds one from a catalogue name in
`CARD_NAMES` or `rfid:<hex uid>`; unknown names raise KeyError listing the known ones.
"""

from __future__ import annotations

from typing import Protocol

# ATR a PC/SC contactless reader synthesises for an ISO 14443-A card (PC/SC part 3)
RFID_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")

SW_OK = b"\x90\x00"
SW_INS_NOT_SUPPORTED = b"\x6d\x00"
SW_FILE_NOT_FOUND = b"\x6a\x82"


class VirtualCard(Protocol):
    name: str
    atr: bytes

    def reset(self) -> None: ...

    def apdu(self, command: bytes) -> bytes: ...


class RfidCard:
    """A plain RFID/NFC card (MIFARE-like): UID only, no applications."""

    def __init__(self, name: str, uid: bytes) -> None:
        if len(uid) not in (4, 7, 10):
            raise ValueError(f"uid: expected 4, 7 or 10 bytes, got {len(uid)}")
        self.name = name
        self.uid = uid
        self.atr = RFID_ATR

    def reset(self) -> None:
        pass

    def apdu(self, command: bytes) -> bytes:
        if command[:4] == b"\xff\xca\x00\x00":
            return self.uid + SW_OK
        if command[:2] == b"\x00\xa4":
            return SW_FILE_NOT_FOUND
        return SW_INS_NOT_SUPPORTED


RFID_UIDS = {
    "rfid-4": "1A2B3C4D",
    "rfid-7": "04A1B2C3D4E5F6",
    "rfid-10": "04A1B2C3D4E5F6A7B8C9",
}

CARD_NAMES: tuple[str, ...] = tuple(RFID_UIDS)


def make_card(spec: str) -> VirtualCard:
    if spec.startswith("rfid:"):
        try:
            uid = bytes.fromhex(spec[5:])
        except ValueError:
            raise KeyError(f"{spec!r}: expected rfid:<hex uid>") from None
        return RfidCard(spec, uid)
    if spec in RFID_UIDS:
        return RfidCard(spec, bytes.fromhex(RFID_UIDS[spec]))
    raise KeyError(f"unknown card {spec!r}; known: {', '.join(CARD_NAMES)}, rfid:<hex uid>")
