"""BCD helpers of the ZVT protocol: packed BCD numbers, the LLVAR/LLLVAR length
prefixes (`F1 F8` = 18) and the masked card number of BMP 22 (digit `E` = masked,
`F` = padding).

References read (no code copied): ZVT-Protokoll PA00P015 chapter "Summary of utilised
BMPs"; Portalum/Portalum.Zvt src/Portalum.Zvt.UnitTest/BmpParserTest.cs (length vectors);
bezahl-online/zvt src/apdu/bmp/map.go (the BCD and LLVAR notes).
"""

from __future__ import annotations

from terminal.kernel.cards import mask_pan


class BcdError(ValueError):
    """A byte string that is not the BCD the field needs, or a number that does not fit."""


def encode_bcd(value: int, size: int) -> bytes:
    """`value` as `size` bytes of packed BCD, zero-padded left: (1234, 3) -> 00 12 34."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BcdError(f"BCD: expected a whole number >= 0, got {value!r}")
    digits = str(value)
    if len(digits) > size * 2:
        raise BcdError(f"BCD: {value} has more than {size * 2} digits")
    return bytes.fromhex(digits.rjust(size * 2, "0"))


def decode_bcd(data: bytes) -> int:
    """The number packed in `data`: 00 12 34 -> 1234; BcdError on a nibble above 9."""
    text = data.hex()
    if not text.isdigit():
        raise BcdError(f"BCD: {data.hex(' ')} has a nibble that is not a digit")
    return int(text) if text else 0


def encode_llvar_length(length: int, digits: int) -> bytes:
    """The ZVT length prefix of an LLVAR (digits 2) or LLLVAR (digits 3): 18 -> F1 F8."""
    if not 0 <= length < 10**digits:
        raise BcdError(f"length {length} does not fit {digits} digits")
    return bytes(0xF0 | int(d) for d in str(length).rjust(digits, "0"))


def decode_llvar_length(data: bytes) -> int:
    """F0 F1 F9 -> 19; BcdError when a byte is not Fx with x a digit."""
    total = 0
    for byte in data:
        if byte & 0xF0 != 0xF0 or byte & 0x0F > 9:
            raise BcdError(f"LLVAR length: {data.hex(' ')} is not Fx digits")
        total = total * 10 + (byte & 0x0F)
    return total


def decode_masked_pan(data: bytes) -> str:
    """The card number of BMP 22 as text, masked digits `*`: EE EE 47 71 -> ****4771.
    An unmasked number is masked here (first 6 and last 4 kept), so a full card number
    never leaves this function."""
    out = []
    for nibble in data.hex().upper():
        if nibble == "F":
            break
        if nibble == "E":
            out.append("*")
        elif nibble.isdigit():
            out.append(nibble)
        else:
            raise BcdError(f"card number: nibble {nibble} is neither a digit, E nor F")
    text = "".join(out)
    if "*" not in text and len(text) >= 12:
        text = mask_pan(text)
    return text


def encode_masked_pan(masked: str) -> bytes:
    """A masked card number as BMP 22 nibbles: `*` -> E, padded with F; it must be
    masked (a `*` in it) so a full card number is never encoded."""
    if "*" not in masked or any(c not in "0123456789*" for c in masked):
        raise BcdError("card number: only masked numbers (digits and *) are encoded")
    nibbles = masked.replace("*", "E")
    if len(nibbles) % 2:
        nibbles += "F"
    return bytes.fromhex(nibbles)
