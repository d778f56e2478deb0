"""The value checks the option table names: each returns what is allowed, or None.

A check gets a value of the key's type (already checked) and returns a description of
what is allowed when the value is bad, None when it is fine. `or_empty(check)` lets
"" (none) through. Checks that need a driver, the tariff parser or the cryptography
package import it when they run, so reading the table imports none of them.
"""

from __future__ import annotations

import functools
import os
import re
import stat
import string
import zoneinfo
from collections.abc import Callable

Check = Callable[[str], str | None]

MAX_FILE_BYTES = 1 << 20  # a configuration, tariff, key or certificate file is far smaller


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
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return "an IANA time zone name such as Europe/Berlin"
    return None


def _parses(parse: Callable[[str], object], error: type[Exception], value: str) -> str | None:
    """None when `parse(value)` succeeds; else its error, which names what is allowed."""
    try:
        parse(value)
    except error as exc:
        return str(exc)
    return None


@functools.lru_cache(maxsize=64)
def meter_model(value: str) -> str | None:
    """A shipped model, by name (never a path), whose map loads (the shipped maps do
    not change while the program runs, so the answer is kept)."""
    from drivers.meter.registermap import (
        MODEL_NAME,
        MeterMapError,
        available_models,
        load_model,
        shipped_model_path,
    )

    if not MODEL_NAME.fullmatch(value):
        return ("the name of a shipped model (lower-case letters, digits and _, never a "
                "path), one of: " + ", ".join(available_models()))
    try:
        shipped_model_path(value)
        load_model(value)
    except MeterMapError as exc:
        return str(exc)
    return None


def modbus_url(device: str) -> Check:
    """A Modbus URL of `device` (meter, charger); the problem names the device."""

    def check(value: str) -> str | None:
        from drivers.meter.transport import TransportError, parse_modbus_url

        return _parses(lambda url: parse_modbus_url(url, device), TransportError, value)

    return check


def hex_key(value: str) -> str | None:
    """Empty, or a public key in hex (an even number of hex digits, at most 1024)."""
    text = value.strip()
    if not text:
        return None
    if len(text) > 1024 or len(text) % 2 or any(c not in "0123456789abcdefABCDEF" for c in text):
        return "hex digits (an even number, at most 1024), or empty"
    return None


def meter_url(value: str) -> str | None:
    """A Modbus URL, or an http:// URL (a signing meter's HTTP API; checked against the
    model by `meter_url_fits_model`)."""
    if value.startswith("http://"):
        return None if value.isprintable() and len(value) <= 1024 else \
            "a printable http://HOST:PORT URL of at most 1024 characters"
    return modbus_url("meter")(value)


def meter_url_fits_model(model_name: str, url: str) -> list[str]:
    """The URL's problem for the meter model (a signing model's driver parses it)."""
    from drivers.meter.registermap import MeterMapError, load_model
    from drivers.meter.signing_drivers import signing_url_problem

    try:
        model = load_model(model_name)
    except MeterMapError:
        return []  # the model's own check reports it
    if model.signs:
        problem = signing_url_problem(model, url)
    elif url.startswith("http://"):
        problem = f"model {model_name!r} is a Modbus meter; expected tcp:// or rtu://"
    else:
        problem = None
    return [f"url = {url!r}: {problem}"] if problem else []


def host(value: str) -> str | None:
    from drivers.meter.transport import host_problem

    return host_problem(value)


def charger_kind(value: str) -> str | None:
    from drivers.charger import CHARGER_KINDS

    return None if value in CHARGER_KINDS else "one of " + ", ".join(CHARGER_KINDS)


def _regular_file(value: str) -> str | None:
    """None when `value` names a regular file; else why not (never raises)."""
    if "\x00" in value:
        return "a path without NUL characters"
    try:
        info = os.stat(value)
    except OSError as exc:
        return f"cannot use the path: {exc.strerror or exc}"
    return None if stat.S_ISREG(info.st_mode) else "a regular file (this is not one)"


def read_file(value: str) -> tuple[bytes, str | None]:
    """The bytes of the regular file `value` (at most MAX_FILE_BYTES), or why it cannot
    be read; never raises, never blocks on a device or FIFO."""
    if why := _regular_file(value):
        return b"", why
    try:
        with open(value, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        return b"", f"cannot read the file: {exc.strerror or exc}"
    if len(data) > MAX_FILE_BYTES:
        return b"", f"a file of at most {MAX_FILE_BYTES} bytes"
    return data, None


def tariff_file(value: str) -> str | None:
    from terminal.pricing import TariffError, parse_tariff

    data, why = read_file(value)
    if why:
        return f"the tariff file: {why}"
    try:
        parse_tariff(data)
    except TariffError as exc:
        return f"not a valid OCPI 2.2.1 tariff: {exc}"
    except (ValueError, RecursionError) as exc:  # JSON nested too deeply, a huge integer
        return f"not a valid OCPI 2.2.1 tariff: {str(exc) or type(exc).__name__}"
    return None


def money(value: str) -> str | None:
    from terminal.kernel.money import AmountError, check_amount

    try:
        check_amount(value, "amount")
    except AmountError as exc:
        return f"an amount as text, e.g. \"50.00\", or \"\" for none: {exc.allowed}"
    return None


def budget_choices(value: str) -> str | None:
    from terminal.payment.holds import parse_budget_choices

    try:
        parse_budget_choices(value)
    except ValueError as exc:
        return f"amounts as text, comma-separated, e.g. \"20.00, 50.00, 80.00\": {exc}"
    return None


def country(value: str) -> str | None:
    return None if len(value) == 3 and value.isdigit() else (
        "an ISO 3166-1 numeric country code of 3 digits, e.g. \"276\" for Germany")


def card_schemes(value: str) -> str | None:
    from terminal.kernel.cards import parse_schemes

    return _parses(parse_schemes, ValueError, value)


def zvt_password(value: str) -> str | None:
    return None if re.fullmatch(r"[0-9]{6}", value) else (
        "the payment terminal's password: 6 digits, e.g. \"000000\"")


def clock_time(value: str) -> str | None:
    """A local time of day HH:MM (00:00 to 23:59)."""
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value)
    return None if match else "a time of day HH:MM from 00:00 to 23:59"


def key_id(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_-]{1,16}", value) else "1 to 16 of A-Z a-z 0-9 _ -"


def existing_file(allowed: str) -> Check:
    """A path to an existing, readable regular file; `allowed` says what the file is when
    it is not, followed by why."""

    def check(value: str) -> str | None:
        why = read_file(value)[1]
        return f"{allowed}: {why}" if why else None

    return check


optional_file = or_empty(existing_file("an existing file (or empty)"))
pins_file = or_empty(existing_file(
    "an existing JSON file of technician PIN hashes (evterm service set-pin), or empty"))


def operator_key(value: str) -> str | None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    data, why = read_file(value)
    if why:
        return f"a readable PEM file with the operator's Ed25519 public key (or empty): {why}"
    try:
        key = load_pem_public_key(data)
    except ValueError:
        return "a readable PEM file with the operator's Ed25519 public key (or empty)"
    if not isinstance(key, Ed25519PublicKey):
        return "an Ed25519 public key in PEM (this file holds another kind of key)"
    return None


def octal_mode(value: str) -> str | None:
    return None if len(value) in (3, 4) and set(value) <= set("01234567") else \
        "octal digits such as 0660"


def url_template(*names: str) -> Check:
    """A URL template that may use exactly the placeholders `names` (no format specs)."""
    allowed = ", ".join("{" + n + "}" for n in names)

    def check(value: str) -> str | None:
        bad = f"an http(s) URL whose only placeholders are {allowed} (or empty)"
        try:
            fields = list(string.Formatter().parse(value))
        except ValueError:
            return bad
        if any(name is not None and (name not in names or spec or conversion)
               for _, name, spec, conversion in fields):
            return bad
        filled = value.format(**{n: "x" for n in names})
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


def ocpi_country(value: str) -> str | None:
    """An ISO 3166-1 alpha-2 country code in capitals (OCPI `country_code`)."""
    return None if len(value) == 2 and value.isascii() and value.isupper() else (
        "an ISO 3166-1 alpha-2 country code in capitals, e.g. \"DE\"")


def ocpi_party(value: str) -> str | None:
    """An OCPI party id: 3 capital letters or digits (ISO 15118)."""
    return None if len(value) == 3 and value.isascii() and value.isalnum() and \
        value == value.upper() else "3 capital letters or digits, e.g. \"EVT\""


def country_alpha3(value: str) -> str | None:
    """An ISO 3166-1 alpha-3 country code in capitals (OCPI location `country`)."""
    return None if len(value) == 3 and value.isascii() and value.isalpha() and \
        value.isupper() else "an ISO 3166-1 alpha-3 country code in capitals, e.g. \"DEU\""


def coordinate(limit: int) -> Check:
    """A decimal degree text within +-`limit` with 1 to 7 decimals (OCPI GeoLocation)."""

    def check(value: str) -> str | None:
        wanted = f"a decimal number of degrees from -{limit} to {limit} with 1 to 7 " \
            "decimals, e.g. \"52.520008\""
        if not re.fullmatch(r"-?[0-9]{1,3}\.[0-9]{1,7}", value):
            return wanted
        return None if abs(float(value)) <= limit else wanted

    return check
