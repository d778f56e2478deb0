"""Typed reads of the fields of one JSON object, shared by the backend messages
(terminal.backend.messages) and the MQTT protocol (terminal.backend.protocol).

Provides:
- `JsonFields(data, where, error)`: `raw`, `boolean`, `moment`, `obj` reads of one
  object's fields. A field that is missing, null or of the wrong kind raises
  `error(path, problem)`, `path` being `where.key` (`key` when `where` is empty); the
  problem never repeats a value that could be a card number (terminal.kernel.redact).
  Each user subclasses it with its own error class and its own stricter reads.
- `aware_time(value)`: an ISO-8601 string with a time zone as a datetime, else None.
- `time_json(moment)`, `decimal_json(value)`: the JSON form of an optional time (ISO-8601
  UTC) or amount (a string).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.kernel.clock import iso_utc, parse_time
from terminal.kernel.redact import shown

FieldErrorFactory = Callable[[str, str], Exception]


def aware_time(value: Any) -> datetime | None:
    """`value` as a datetime when it is an ISO-8601 string with a time zone, else None."""
    return parse_time(value)


def time_json(moment: datetime | None) -> str | None:
    return None if moment is None else iso_utc(moment)


def decimal_json(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


class JsonFields:
    """Typed access to the fields of one JSON object; errors name `where.key`."""

    max_time_chars: int | None = None  # a longer time string is refused unparsed

    def __init__(self, data: Any, where: str, error: FieldErrorFactory) -> None:
        self.error = error
        if not isinstance(data, dict):
            raise error(where or "payload", f"expected a JSON object, got {shown(data)}")
        self.data = data
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, problem: str) -> Exception:
        """The error for field `key`, to raise."""
        return self.error(self.path(key), problem)

    def raw(self, key: str, *, optional: bool = False) -> Any:
        value = self.data.get(key)
        if value is None and not optional:
            raise self.fail(key, "required field missing" if key not in self.data
                            else "must not be null")
        return value

    def boolean(self, key: str, *, default: bool | None = None) -> bool:
        value = self.raw(key, optional=default is not None)
        if value is None:
            return bool(default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {shown(value)}")
        return value

    def moment(self, key: str, *, optional: bool = False) -> datetime | None:
        value = self.raw(key, optional=optional)
        if value is None:
            return None
        limit = self.max_time_chars
        too_long = limit is not None and isinstance(value, str) and len(value) > limit
        moment = None if too_long else aware_time(value)
        if moment is None:
            raise self.fail(key, "expected an ISO-8601 time with a time zone such as "
                            f"2026-11-21T10:00:00Z, got {shown(value)}")
        return moment

    def obj(self, key: str, *, optional: bool = False) -> dict[str, Any] | None:
        value = self.raw(key, optional=optional)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a JSON object, got {shown(value)}")
        return dict(value)
