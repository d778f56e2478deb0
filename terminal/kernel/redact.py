"""The one rule for keeping card numbers out of what the terminal writes or says.

- `card_numbers_in(text)`: runs of 13 to 19 digits (spaces or dashes between them
  allowed) that pass the Luhn check: what could be a card number.
- `scrub(text)`: free text (a driver's problem report, a log, an export) with each of
  them replaced by "[number removed]".
- `shown(value)`: a value as an error message may repeat it: short scalars only. Text
  over `MAX_SHOWN_CHARS` characters, or with a run of 12 or more digits once spaces and
  the separators `. _ / -` are taken out, is described by its length instead; a number
  with 12 or more digits is "a number".
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

MAX_SHOWN_CHARS = 40
PAN_CANDIDATE = re.compile(r"(?<![0-9])[0-9](?:[ -]?[0-9]){12,18}(?![0-9])")
_LONG_NUMBER = re.compile(r"\d{12,}")
_SEPARATORS = re.compile(r"[\s._/-]")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, char in enumerate(reversed(digits)):
        n = int(char)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _is_card_number(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 13 <= len(digits) <= 19 and luhn_ok(digits)


def card_numbers_in(text: str) -> list[str]:
    """What in `text` could be a card number."""
    return [m.group() for m in PAN_CANDIDATE.finditer(text) if _is_card_number(m.group())]


def scrub(text: str) -> str:
    """`text` with anything that could be a card number replaced: free text from a
    driver or a log never carries one onwards."""
    return PAN_CANDIDATE.sub(
        lambda m: "[number removed]" if _is_card_number(m.group()) else m.group(), text)


def _has_long_number(text: str) -> bool:
    return _LONG_NUMBER.search(_SEPARATORS.sub("", text)) is not None


def shown(value: Any) -> str:
    """`value` as an error message may repeat it (see the module docstring)."""
    if isinstance(value, str):
        if len(value) > MAX_SHOWN_CHARS or _has_long_number(value):
            return f"a string of {len(value)} characters"
        return repr(value)
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int | float | Decimal):
        text = str(value)
        return "a number" if len(text) > MAX_SHOWN_CHARS or _has_long_number(text) else text
    return f"a {type(value).__name__}"
