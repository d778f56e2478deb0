"""Reading the daemon's values as the screens need them: its decimal strings, its ISO
UTC times and the technician's out-of-service mark, tolerant of absent or malformed
fields (a screen shows a neutral value rather than fail)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from terminal.kernel.clock import parse_time


def decimal_of(value: Any) -> Decimal | None:
    """A decimal from the daemon's decimal strings; None when absent or malformed."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def time_of(value: Any) -> datetime | None:
    """An aware datetime from the daemon's ISO UTC text; None when absent or malformed."""
    return parse_time(value, naive_as_utc=True)


def out_of_service(state: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The snapshot's `out_of_service` (set by a technician); None while in service."""
    value = state.get("out_of_service")
    return value if isinstance(value, Mapping) else None
