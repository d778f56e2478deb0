"""The value checks the option table names: each returns what is allowed, or None.

A check gets a value of the key's type (already checked) and returns a description of
what is allowed when the value is bad, None when it is fine. `or_empty(check)` lets
"" (none) through. Checks that need a driver, the tariff parser or the cryptography
package import it when they run, so reading the table imports none of them.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from pathlib import Path

Check = Callable[[str], str | None]


def or_empty(check: Check) -> Check:
    """`check`, but "" (none) is fine."""

    def optional(value: str) -> str | None:
        return None if value == "" else check(value)

    return optional


def non_empty_name(value: str) -> str | None:
    return None if value.strip() else "a non-empty name"


def timezone(value: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return "an IANA time zone name such as Europe/Berlin"
    return None


def _parses(parse: Callable[[str], object], error: type[Exception], value: str) -> str | None:
    """None when `parse(value)` succeeds; else its error, which names what is allowed."""
    try:
        parse(value)
    except error as exc:
        return str(exc)
    return None


def meter_model(value: str) -> str | None:
    from drivers.meter.registermap import MeterMapError, load_model

    return _parses(load_model, MeterMapError, value)


def meter_url(value: str) -> str | None:
    from drivers.meter.transport import TransportError, parse_meter_url

    return _parses(parse_meter_url, TransportError, value)


def charger_kind(value: str) -> str | None:
    from drivers.charger import CHARGER_KINDS

    return None if value in CHARGER_KINDS else "one of " + ", ".join(CHARGER_KINDS)


def tariff_file(value: str) -> str | None:
    from terminal.pricing import TariffError, load_tariff

    try:
        load_tariff(value)
    except OSError as exc:
        return f"cannot read the tariff file: {exc.strerror}"
    except TariffError as exc:
        return f"not a valid OCPI 2.2.1 tariff: {exc}"
    return None


def money(value: str) -> str | None:
    from terminal.kernel.money import AmountError, check_amount

    try:
        check_amount(value, "amount")
    except AmountError as exc:
        return f"an amount as text, e.g. \"50.00\", or \"\" for none: {exc.allowed}"
    return None


def country(value: str) -> str | None:
    return None if len(value) == 3 and value.isdigit() else (
        "an ISO 3166-1 numeric country code of 3 digits, e.g. \"276\" for Germany")


def card_schemes(value: str) -> str | None:
    from terminal.kernel.cards import parse_schemes

    return _parses(parse_schemes, ValueError, value)


def key_id(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_-]{1,16}", value) else "1 to 16 of A-Z a-z 0-9 _ -"


def existing_file(allowed: str) -> Check:
    """A path to an existing file; `allowed` says what the file is when it is not."""

    def check(value: str) -> str | None:
        return None if Path(value).is_file() else allowed

    return check


optional_file = or_empty(existing_file("an existing file (or empty)"))
pins_file = or_empty(existing_file(
    "an existing JSON file of technician PIN hashes (evterm service set-pin), or empty"))


def operator_key(value: str) -> str | None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(Path(value).read_bytes())
    except (OSError, ValueError):
        return "a readable PEM file with the operator's Ed25519 public key (or empty)"
    if not isinstance(key, Ed25519PublicKey):
        return "an Ed25519 public key in PEM (this file holds another kind of key)"
    return None


def octal_mode(value: str) -> str | None:
    return None if len(value) in (3, 4) and set(value) <= set("01234567") else \
        "octal digits such as 0660"


def url_template(*names: str) -> Check:
    """A URL template that may use exactly the placeholders `names`."""
    allowed = ", ".join("{" + n + "}" for n in names)

    def check(value: str) -> str | None:
        try:
            filled = value.format(**{n: "x" for n in names})
        except (KeyError, IndexError, ValueError, AttributeError, TypeError):
            return f"an http(s) URL whose only placeholders are {allowed} (or empty)"
        if not filled.startswith(("https://", "http://")) or any(c.isspace() for c in filled):
            return f"an http(s) URL without spaces, placeholders {allowed} (or empty)"
        return None

    return check


def at_most_chars(limit: int) -> Check:
    def check(value: str) -> str | None:
        return None if len(value) <= limit else f"at most {limit} characters"

    return check


def absolute_path(value: str) -> str | None:
    return None if value.startswith("/") else "an absolute path"
