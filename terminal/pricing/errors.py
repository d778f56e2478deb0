"""Errors for bad tariffs and bad sessions: each names the path, the value and what is allowed."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

_SHOWN_CHARS = 80


def _show(value: Any) -> str:
    """The value as the message shows it: plain decimals (scientific when huge or tiny),
    JSON otherwise, at most _SHOWN_CHARS characters."""
    if isinstance(value, Decimal):
        plain = value.is_finite() and -30 <= value.adjusted() <= 30 and \
            value.as_tuple().exponent >= -30  # type: ignore[operator]
        text = format(value, "f") if plain else str(value)
    elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 128:
        text = f"an integer of about {int(value.bit_length() * 0.30103)} digits"
    else:
        try:
            text = json.dumps(value, default=str, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError):
            text = object.__repr__(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


class PricingInputError(ValueError):
    """Bad input to the pricing engine.

    `path` is the JSON path of the offending field (``elements[1].price_components[0].step_size``),
    `value` the value found there and `allowed` a description of what is allowed.
    """

    def __init__(self, path: str, value: Any, allowed: str) -> None:
        self.path = path
        self.value = value
        self.allowed = allowed
        super().__init__(f"{path or '<root>'}: invalid value {_show(value)}; allowed: {allowed}")


class TariffError(PricingInputError):
    """The tariff JSON or one of its fields is invalid."""


class TariffNotApplicableError(TariffError):
    """The tariff's validity (start_date_time/end_date_time) excludes the session start."""


class SessionInputError(PricingInputError):
    """The session (start, stop, samples) is invalid or inconsistent."""
