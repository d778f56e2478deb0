"""Errors for bad tariffs and bad sessions: each names the path, the value and what is allowed."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    try:
        return json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


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
