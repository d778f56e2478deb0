"""Validating readers for JSON values: each failure names the path, the value and what is allowed.

Numbers become `Decimal` through their text (`Decimal(str(x))`), never through
float arithmetic. JSON text is parsed with `parse_float=Decimal`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from terminal.kernel.money import MAX_AMOUNT, MAX_PRICE_DECIMALS
from terminal.pricing.errors import PricingInputError

MAX_INTEGER = 1_000_000_000
"""The largest integer a tariff field takes (a step_size, a duration in seconds)."""
_MAX_INTEGER_BITS = 133  # about 40 digits; checked without converting a huge int to text


class FieldReader:
    """Reads and checks JSON fields, raising `error` (a PricingInputError subclass)."""

    def __init__(self, error: type[PricingInputError]) -> None:
        self.error = error

    def fail(self, path: str, value: Any, allowed: str) -> PricingInputError:
        """The error to raise for `value` at `path`."""
        return self.error(path, value, allowed)

    def loads(self, source: str | bytes) -> Any:
        """Parse JSON text exactly (numbers with a fraction become Decimal)."""

        def reject_constant(name: str) -> Any:
            raise self.fail("<json>", name, "finite JSON numbers (no NaN or Infinity)")

        try:
            return json.loads(source, parse_float=Decimal, parse_constant=reject_constant)
        except json.JSONDecodeError as exc:
            raise self.fail(
                "<json>", f"{exc.msg} at line {exc.lineno} column {exc.colno}", "valid JSON"
            ) from None
        except UnicodeDecodeError as exc:
            raise self.fail("<json>", str(exc), "UTF-8 JSON text") from None
        except RecursionError:
            raise self.fail("<json>", "nested too deeply", "JSON nested a few levels") from None
        except PricingInputError:
            raise
        except ValueError as exc:  # e.g. an integer of more than 4300 digits
            raise self.fail("<json>", str(exc)[:80], "valid JSON with bounded numbers") from None

    def obj(
        self, value: Any, path: str, *, required: tuple[str, ...], optional: tuple[str, ...]
    ) -> Mapping[str, Any]:
        """A JSON object with all `required` keys and no key outside required + optional."""
        if not isinstance(value, Mapping):
            raise self.fail(path, value, "a JSON object")
        known = required + optional
        for key in value:
            if key not in known:
                raise self.fail(
                    join(path, str(key)), value[key], "a known field: " + ", ".join(known)
                )
        for key in required:
            if key not in value:
                raise self.fail(join(path, key), None, "this field is required")
        return value

    def array(self, value: Any, path: str, *, min_items: int = 0) -> list[Any]:
        """A JSON array with at least `min_items` items."""
        if not isinstance(value, list):
            raise self.fail(path, value, "a JSON array")
        if len(value) < min_items:
            raise self.fail(path, value, f"an array with at least {min_items} item(s)")
        return value

    def number(
        self,
        value: Any,
        path: str,
        *,
        minimum: Decimal | int | None = None,
        maximum: Decimal | int | None = None,
        above: Decimal | int | None = None,
        places: int | None = None,
    ) -> Decimal:
        """A finite JSON number as Decimal, within the given bounds and with at most
        `places` decimals (when given)."""
        bounds = []
        if minimum is not None:
            bounds.append(f">= {minimum}")
        if above is not None:
            bounds.append(f"> {above}")
        if maximum is not None:
            bounds.append(f"<= {maximum}")
        allowed = " ".join(["a number", " and ".join(bounds)]).strip()
        if places is not None:
            allowed += f" with at most {places} decimals"
        if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
            raise self.fail(path, value, allowed)
        if isinstance(value, int) and value.bit_length() > _MAX_INTEGER_BITS:
            raise self.fail(path, "a huge integer", allowed)
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise self.fail(path, value, allowed) from None
        if (
            not number.is_finite()
            or (minimum is not None and number < minimum)
            or (above is not None and number <= above)
            or (maximum is not None and number > maximum)
            or (places is not None and -number.as_tuple().exponent > places)  # type: ignore[operator]
        ):
            raise self.fail(path, value, allowed)
        return number

    def amount(self, value: Any, path: str) -> Decimal:
        """A price or price limit: a number >= 0 within the terminal's amount bounds
        (terminal.kernel.money: at most MAX_AMOUNT, at most MAX_PRICE_DECIMALS decimals)."""
        return self.number(value, path, minimum=0, maximum=MAX_AMOUNT, places=MAX_PRICE_DECIMALS)

    def integer(self, value: Any, path: str, *, minimum: int, maximum: int = MAX_INTEGER) -> int:
        """A JSON integer from minimum to maximum (MAX_INTEGER unless given)."""
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or value.bit_length() > _MAX_INTEGER_BITS
            or not minimum <= value <= maximum
        ):
            shown = value
            if isinstance(value, int) and value.bit_length() > _MAX_INTEGER_BITS:
                shown = "a huge integer"
            raise self.fail(path, shown, f"an integer >= {minimum} and <= {maximum}")
        return value

    def string(self, value: Any, path: str, *, max_length: int | None = None) -> str:
        """A JSON string, optionally at most `max_length` characters."""
        if not isinstance(value, str) or (max_length is not None and len(value) > max_length):
            limit = f" of at most {max_length} characters" if max_length else ""
            raise self.fail(path, value, "a string" + limit)
        return value

    def choice(self, value: Any, path: str, choices: tuple[str, ...]) -> str:
        """One of `choices`."""
        if not isinstance(value, str) or value not in choices:
            raise self.fail(path, value, "one of " + ", ".join(choices))
        return value

    def time_of_day(self, value: Any, path: str) -> int:
        """ "HH:MM" (24 h, leading zeros) as minutes after midnight."""
        allowed = '"HH:MM" from "00:00" to "23:59"'
        if not isinstance(value, str) or len(value) != 5 or value[2] != ":":
            raise self.fail(path, value, allowed)
        hours, minutes = value[:2], value[3:]
        if not (hours.isdigit() and minutes.isdigit() and hours.isascii() and minutes.isascii()):
            raise self.fail(path, value, allowed)
        if int(hours) > 23 or int(minutes) > 59:
            raise self.fail(path, value, allowed)
        return int(hours) * 60 + int(minutes)

    def date(self, value: Any, path: str) -> date:
        """ "YYYY-MM-DD"."""
        allowed = 'a date "YYYY-MM-DD"'
        if not isinstance(value, str) or len(value) != 10 or not value.isascii():
            raise self.fail(path, value, allowed)
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise self.fail(path, value, allowed) from None

    def timestamp(self, value: Any, path: str, *, naive_is_utc: bool) -> datetime:
        """ISO 8601 / RFC 3339 date-time as an aware datetime.

        Without a UTC offset the value is UTC if `naive_is_utc` (OCPI DateTime) and an
        error otherwise.
        """
        allowed = 'an ISO 8601 date-time such as "2025-03-30T01:30:00Z"'
        if not naive_is_utc:
            allowed += " with a UTC offset"
        if not isinstance(value, str):
            raise self.fail(path, value, allowed)
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(path, value, allowed) from None
        if moment.tzinfo is None or moment.utcoffset() is None:
            if not naive_is_utc:
                raise self.fail(path, value, allowed)
            moment = moment.replace(tzinfo=UTC)
        return moment


def join(path: str, key: str) -> str:
    """Path of `key` inside the object at `path`."""
    return f"{path}.{key}" if path else key
