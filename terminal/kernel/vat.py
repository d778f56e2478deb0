"""The one rule for a VAT identification number the terminal carries (a company receipt).

Provides `check_vat_number(value, field)`: the number normalised (spaces, dots and dashes
taken out, letters upper-case) when it is a two-letter country prefix followed by 2 to 18
letters or digits, at most `MAX_VAT_CHARS` (20) characters in all, the limit of OCPP 2.1's
`vatNumber`; else `VatNumberError(field, problem)`, a ValueError naming the field. The
prefix is checked for its form, not against a list of countries (Greece's is EL, Northern
Ireland's XI); whether the number exists is the backend's business. A number with a run
of 13 to 19 digits that could be a card number (terminal.kernel.redact) is refused without
repeating it: no VAT number has one, and a card number typed there must never be stored,
printed or sent.
"""

from __future__ import annotations

import re

from terminal.kernel.redact import card_numbers_in, shown

MAX_VAT_CHARS = 20
_VAT = re.compile(r"^[A-Za-z]{2}[A-Za-z0-9]{2,18}$")  # ASCII only: "ß".upper() is "SS"
_SEPARATORS = re.compile(r"[\s.\-]")


class VatNumberError(ValueError):
    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def check_vat_number(value: object, field: str = "vat_number") -> str:
    """`value` as a normalised VAT number; VatNumberError naming `field` otherwise."""
    allowed = (f"a VAT number: a two-letter country prefix and letters or digits, at most "
               f"{MAX_VAT_CHARS} characters, such as DE123456789")
    if not isinstance(value, str) or len(value) > 64:
        raise VatNumberError(field, f"expected {allowed}, got {shown(value)}")
    number = _SEPARATORS.sub("", value)
    if card_numbers_in(number[2:]):
        raise VatNumberError(field, "this looks like a card number, not a VAT number; "
                                    "it was not kept")
    if not _VAT.match(number):
        raise VatNumberError(field, f"expected {allowed}, got {shown(value)}")
    return number.upper()
