"""The messages between the terminal and the operator's backend (CSMS + payment gateway).

Provides frozen dataclasses with `to_json()` / `from_json()`:
- `TokenAuthRequest`/`TokenAuthResponse` (RFID/app tokens), `PreauthRequest`/
  `PreauthResponse`, `CaptureRequest`, `VoidRequest`, `CaptureResponse` (bank cards),
  and the downlink pushes `Refund` and `LocalListUpdate` (of `LocalListEntry`).
- `AuthStatus` (the OCPP statuses the terminal acts on), `TOKEN_TYPES`, `UPDATE_TYPES`,
  `REMOVED`, `ID_TOKEN` (the pattern of a token id).
- `MessageError(field, problem)`, a ValueError.

Validation happens on construction and in `from_json`: a missing field, a wrong type
or a value out of range raises `MessageError` whose `field` and text name the message
and the field. Money and energy are Decimal, carried as strings; times are ISO-8601
(UTC on output, an offset required on input). Unknown fields are ignored (fields are
only ever added). A token answer and a local list entry carry the same token info
(status, expiry, group, cost and energy caps, personal tariff, technician flag): one
piece of code (`_TokenInfo`) checks, reads and writes it for both.

Card data: a pre-authorisation carries the card as a token, a masked PAN and the
envelope of terminal.payment.crypto.seal, nothing else. A masked PAN that shows more than
the first 6 and last 4 digits is refused, and no error message repeats a value that
could be a card number.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from terminal.backend.json_fields import JsonFields, decimal_json, time_json
from terminal.kernel.money import MAX_AMOUNT, MAX_ENERGY_WH, AmountError, check_amount
from terminal.kernel.redact import shown


class MessageError(ValueError):
    """A message that is not what it must be; `field` is `Message.field[.sub]`."""

    def __init__(self, field_path: str, problem: str) -> None:
        self.field = field_path
        self.problem = problem
        super().__init__(f"{field_path}: {problem}")

    def within(self, where: str, model: str) -> MessageError:
        """The same problem in a message nested at `where` (`model.x` -> `where.x`)."""
        return MessageError(where + self.field.removeprefix(model), self.problem)


class AuthStatus(enum.StrEnum):
    """OCPP AuthorizationStatus values the terminal acts on."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    UNKNOWN = "Unknown"


# OCPP IdTokenEnumType: ISO14443 (13.56 MHz UID), ISO15693 / Local (125 kHz UID),
# Central (app / backend-issued), eMAID (contract id). Bank cards never go through
# token auth: they are pre-authorised.
TOKEN_TYPES = ("ISO14443", "ISO15693", "Local", "Central", "eMAID")
UPDATE_TYPES = ("Full", "Differential")
REMOVED = "Removed"

ID_TOKEN = re.compile(r"^[\x21-\x7e]{1,64}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CARD_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,16}\.[0-9a-f]{40}$")
_MASKED_PAN = re.compile(r"^\d{0,6}\*+\d{4}$")
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


# ---- validation helpers -----------------------------------------------------------------


def _require(ok: bool, where: str, problem: str) -> None:
    if not ok:
        raise MessageError(where, problem)


def _text(where: str, value: Any, *, max_len: int = 255, pattern: re.Pattern[str] | None = None,
          allowed: str = "") -> None:
    _require(isinstance(value, str), where, f"expected a string, got {shown(value)}")
    _require(0 < len(value) <= max_len, where,
             f"expected 1 to {max_len} characters, got {len(value)}")
    if pattern is not None:
        _require(bool(pattern.match(value)), where, f"expected {allowed}, got {shown(value)}")


def _optional_text(where: str, value: Any, max_len: int = 255) -> None:
    if value is not None:
        _text(where, value, max_len=max_len)


def _amount(where: str, value: Any, *, zero_ok: bool = False,
            maximum: Decimal = MAX_AMOUNT) -> None:
    """A Decimal within the terminal's bounds (terminal.kernel.money.check_amount)."""
    _require(isinstance(value, Decimal), where, f"expected a decimal amount, got {shown(value)}")
    try:
        check_amount(value, where, zero_ok=zero_ok, maximum=maximum)
    except AmountError as exc:
        raise MessageError(where, exc.reason) from None


def _optional_amount(where: str, value: Any, *, maximum: Decimal = MAX_AMOUNT) -> None:
    if value is not None:
        _amount(where, value, maximum=maximum)


def _moment(where: str, value: Any) -> None:
    _require(isinstance(value, datetime) and value.tzinfo is not None, where,
             f"expected a time with a time zone, got {shown(value)}")


def _currency(where: str, value: Any) -> None:
    _text(where, value, max_len=3, pattern=_CURRENCY,
          allowed="an ISO 4217 alpha-3 code such as EUR")


def _reference(where: str, value: Any) -> None:
    _text(where, value, max_len=64)


def _tariff(where: str, value: Any) -> None:
    if value is None:
        return
    _require(isinstance(value, dict), where, f"expected an OCPI tariff object, got {shown(value)}")
    from terminal.pricing import TariffError, parse_tariff

    try:
        parse_tariff(value)
    except TariffError as exc:
        raise MessageError(where, f"not a valid OCPI 2.2.1 tariff: {exc}") from None


def _status(where: str, value: Any) -> AuthStatus:
    try:
        return AuthStatus(value)
    except ValueError:
        raise MessageError(where, f"expected one of {', '.join(AuthStatus)}, "
                                  f"got {shown(value)}") from None


class _Fields(JsonFields):
    """Typed access to the fields of one JSON message; errors are MessageError naming
    `Message.key`. Text fields are read raw: the model checks them."""

    def __init__(self, data: Any, where: str) -> None:
        super().__init__(data, where, MessageError)

    def integer(self, key: str) -> int:
        value = self.raw(key)
        _require(isinstance(value, int) and not isinstance(value, bool), self.path(key),
                 f"expected an integer, got {shown(value)}")
        return int(value)

    def decimal(self, key: str, *, optional: bool = False) -> Decimal | None:
        value = self.raw(key, optional=optional)
        if value is None:
            return None
        if isinstance(value, str) and len(value) <= 40:
            try:
                return Decimal(value)
            except InvalidOperation:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            return Decimal(value)
        raise MessageError(self.path(key), f"expected a decimal number as a string such as "
                                           f"\"12.50\", got {shown(value)}")

    def array(self, key: str) -> list[Any]:
        value = self.raw(key)
        _require(isinstance(value, list), self.path(key), f"expected a JSON array, got "
                                                          f"{shown(value)}")
        return list(value)


# ---- token info ---------------------------------------------------------------------------


class _TokenInfo:
    """What a token answer and a local list entry both say about a token: its status,
    expiry, group, cost cap (incl. VAT, tariff currency), energy cap (Wh), personal OCPI
    tariff and technician flag; checked, read and written here for both. Each model
    names its expiry field (`_EXPIRY`) and says whether a status of None / "Removed"
    means "remove the token" (`_REMOVABLE`); errors name `Model.field`."""

    _EXPIRY = "expiry"
    _REMOVABLE = False
    # the fields the models declare (a plain class: these are annotations only)
    status: AuthStatus | None
    group_id: str | None
    cost_cap: Decimal | None
    energy_cap_wh: Decimal | None
    tariff: dict[str, Any] | None
    technician: bool

    def _check_token_info(self) -> None:
        where = type(self).__name__
        if self.status is not None or not self._REMOVABLE:
            object.__setattr__(self, "status", _status(f"{where}.status", self.status))
        expiry = getattr(self, self._EXPIRY)
        if expiry is not None:
            _moment(f"{where}.{self._EXPIRY}", expiry)
        _optional_text(f"{where}.group_id", self.group_id, 64)
        _optional_amount(f"{where}.cost_cap", self.cost_cap)
        _optional_amount(f"{where}.energy_cap_wh", self.energy_cap_wh, maximum=MAX_ENERGY_WH)
        _tariff(f"{where}.tariff", self.tariff)
        _require(isinstance(self.technician, bool), f"{where}.technician",
                 f"expected true or false, got {shown(self.technician)}")

    def _token_info_json(self) -> dict[str, Any]:
        return {
            "status": None if self.status is None else str(self.status),
            self._EXPIRY: time_json(getattr(self, self._EXPIRY)),
            "group_id": self.group_id,
            "cost_cap": decimal_json(self.cost_cap),
            "energy_cap_wh": decimal_json(self.energy_cap_wh),
            "tariff": self.tariff,
            "technician": self.technician,
        }

    @classmethod
    def _read_token_info(cls, f: _Fields) -> dict[str, Any]:
        """The token-info fields of a JSON message, as keyword arguments of the model."""
        status = f.raw("status", optional=cls._REMOVABLE)
        return {
            "status": None if cls._REMOVABLE and status in (None, REMOVED) else status,
            cls._EXPIRY: f.moment(cls._EXPIRY, optional=True),
            "group_id": f.raw("group_id", optional=True),
            "cost_cap": f.decimal("cost_cap", optional=True),
            "energy_cap_wh": f.decimal("energy_cap_wh", optional=True),
            "tariff": f.obj("tariff", optional=True),
            "technician": f.boolean("technician", default=False),
        }


# ---- token authorisation -----------------------------------------------------------------


@dataclass(frozen=True)
class TokenAuthRequest:
    id_token: str
    token_type: str
    station_id: str

    def __post_init__(self) -> None:
        _text("TokenAuthRequest.id_token", self.id_token, max_len=64, pattern=ID_TOKEN,
              allowed="1 to 64 printable ASCII characters without spaces")
        _require(self.token_type in TOKEN_TYPES, "TokenAuthRequest.token_type",
                 f"expected one of {', '.join(TOKEN_TYPES)}, got {shown(self.token_type)}")
        _text("TokenAuthRequest.station_id", self.station_id)

    def to_json(self) -> dict[str, Any]:
        return {"id_token": self.id_token, "token_type": self.token_type,
                "station_id": self.station_id}

    @classmethod
    def from_json(cls, data: Any) -> TokenAuthRequest:
        f = _Fields(data, "TokenAuthRequest")
        return cls(f.raw("id_token"), f.raw("token_type"), f.raw("station_id"))


@dataclass(frozen=True)
class TokenAuthResponse(_TokenInfo):
    """The backend's answer to a token. Caps are incl. VAT in the tariff currency / Wh;
    `tariff` is a personal OCPI tariff (fleet contracts); `message` a driver text."""

    _EXPIRY = "cache_expiry"

    status: AuthStatus
    cache_expiry: datetime | None = None
    group_id: str | None = None
    cost_cap: Decimal | None = None
    energy_cap_wh: Decimal | None = None
    tariff: dict[str, Any] | None = field(default=None, repr=False)
    technician: bool = False
    message: str | None = None

    def __post_init__(self) -> None:
        self._check_token_info()
        _optional_text("TokenAuthResponse.message", self.message, 512)

    def to_json(self) -> dict[str, Any]:
        return {**self._token_info_json(), "message": self.message}

    @classmethod
    def from_json(cls, data: Any) -> TokenAuthResponse:
        f = _Fields(data, "TokenAuthResponse")
        return cls(**cls._read_token_info(f), message=f.raw("message", optional=True))


# ---- bank cards --------------------------------------------------------------------------


@dataclass(frozen=True)
class PreauthRequest:
    """Reserve `amount` on a bank card. `reference` is ours, unique, and the idempotency
    key; `envelope` is terminal.payment.crypto.seal's output for this reference."""

    reference: str
    station_id: str
    amount: Decimal
    currency: str
    envelope: dict[str, Any] = field(repr=False)
    token: str
    masked_pan: str
    scheme: str

    def __post_init__(self) -> None:
        _reference("PreauthRequest.reference", self.reference)
        _text("PreauthRequest.station_id", self.station_id)
        _amount("PreauthRequest.amount", self.amount)
        _currency("PreauthRequest.currency", self.currency)
        _require(isinstance(self.envelope, dict), "PreauthRequest.envelope",
                 f"expected a JSON object, got {shown(self.envelope)}")
        for key in ("v", "alg", "epk", "nonce", "ct", "terminal", "reference"):
            _require(key in self.envelope, f"PreauthRequest.envelope.{key}",
                     "required field missing")
        _require(self.envelope["reference"] == self.reference, "PreauthRequest.envelope.reference",
                 "must be the request's reference (the envelope is bound to it)")
        _text("PreauthRequest.token", self.token, max_len=57, pattern=_CARD_TOKEN,
              allowed="a card token KEYID.HEX40")
        _text("PreauthRequest.masked_pan", self.masked_pan, max_len=19, pattern=_MASKED_PAN,
              allowed="a masked card number showing at most the first 6 and last 4 digits")
        _text("PreauthRequest.scheme", self.scheme, max_len=32)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "station_id": self.station_id,
            "amount": str(self.amount),
            "currency": self.currency,
            "envelope": self.envelope,
            "token": self.token,
            "masked_pan": self.masked_pan,
            "scheme": self.scheme,
        }

    @classmethod
    def from_json(cls, data: Any) -> PreauthRequest:
        f = _Fields(data, "PreauthRequest")
        return cls(
            reference=f.raw("reference"),
            station_id=f.raw("station_id"),
            amount=f.decimal("amount"),
            currency=f.raw("currency"),
            envelope=f.obj("envelope"),
            token=f.raw("token"),
            masked_pan=f.raw("masked_pan"),
            scheme=f.raw("scheme"),
        )


@dataclass(frozen=True)
class PreauthResponse:
    """Approved: `psp_reference` and `amount_approved` (less than asked = partial
    approval). Declined: `reason`, a code such as do_not_honor."""

    approved: bool
    psp_reference: str | None = None
    amount_approved: Decimal | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        _require(isinstance(self.approved, bool), "PreauthResponse.approved",
                 f"expected true or false, got {shown(self.approved)}")
        if self.approved:
            for name in ("psp_reference", "amount_approved"):
                _require(getattr(self, name) is not None, f"PreauthResponse.{name}",
                         "required when approved")
            _reference("PreauthResponse.psp_reference", self.psp_reference)
            _amount("PreauthResponse.amount_approved", self.amount_approved)
            _require(self.reason is None, "PreauthResponse.reason",
                     "must be null when approved")
        else:
            _text("PreauthResponse.reason", self.reason, max_len=64, pattern=_REASON,
                  allowed="a decline reason code such as do_not_honor")
            _require(self.amount_approved is None, "PreauthResponse.amount_approved",
                     "must be null when declined")

    def to_json(self) -> dict[str, Any]:
        return {"approved": self.approved, "psp_reference": self.psp_reference,
                "amount_approved": decimal_json(self.amount_approved), "reason": self.reason}

    @classmethod
    def from_json(cls, data: Any) -> PreauthResponse:
        f = _Fields(data, "PreauthResponse")
        return cls(
            approved=f.boolean("approved"),
            psp_reference=f.raw("psp_reference", optional=True),
            amount_approved=f.decimal("amount_approved", optional=True),
            reason=f.raw("reason", optional=True),
        )


@dataclass(frozen=True)
class CaptureRequest:
    """Take `amount` (at most the approved amount) of a pre-authorisation; idempotent
    by `reference`."""

    reference: str
    psp_reference: str
    amount: Decimal
    currency: str

    def __post_init__(self) -> None:
        _reference("CaptureRequest.reference", self.reference)
        _reference("CaptureRequest.psp_reference", self.psp_reference)
        _amount("CaptureRequest.amount", self.amount, zero_ok=True)
        _currency("CaptureRequest.currency", self.currency)

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "psp_reference": self.psp_reference,
                "amount": str(self.amount), "currency": self.currency}

    @classmethod
    def from_json(cls, data: Any) -> CaptureRequest:
        f = _Fields(data, "CaptureRequest")
        return cls(f.raw("reference"), f.raw("psp_reference"),
                   f.decimal("amount"), f.raw("currency"))


@dataclass(frozen=True)
class VoidRequest:
    """Release a pre-authorisation that will not be captured; idempotent by reference.
    Without a PSP reference the gateway finds the pre-authorisation by our reference
    (the terminal went down before the answer came); none found = nothing to release."""

    reference: str
    psp_reference: str | None  # None: the terminal never heard the gateway's answer

    def __post_init__(self) -> None:
        _reference("VoidRequest.reference", self.reference)
        if self.psp_reference is not None:
            _reference("VoidRequest.psp_reference", self.psp_reference)

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "psp_reference": self.psp_reference}

    @classmethod
    def from_json(cls, data: Any) -> VoidRequest:
        f = _Fields(data, "VoidRequest")
        return cls(f.raw("reference"), f.raw("psp_reference", optional=True))


@dataclass(frozen=True)
class CaptureResponse:
    """The answer to a capture or a void; `reason` says why when not ok."""

    ok: bool
    reason: str | None = None

    def __post_init__(self) -> None:
        _require(isinstance(self.ok, bool), "CaptureResponse.ok",
                 f"expected true or false, got {shown(self.ok)}")
        if not self.ok:
            _text("CaptureResponse.reason", self.reason, max_len=64, pattern=_REASON,
                  allowed="a reason code such as amount_above_authorised")

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Any) -> CaptureResponse:
        f = _Fields(data, "CaptureResponse")
        return cls(f.boolean("ok"), f.raw("reason", optional=True))


# ---- downlink pushes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Refund:
    """The backend refunded (part of) a captured payment; `reference` is the session's."""

    refund_id: str
    psp_reference: str
    reference: str
    amount: Decimal
    currency: str
    reason: str | None = None

    def __post_init__(self) -> None:
        _reference("Refund.refund_id", self.refund_id)
        _reference("Refund.psp_reference", self.psp_reference)
        _reference("Refund.reference", self.reference)
        _amount("Refund.amount", self.amount)
        _currency("Refund.currency", self.currency)
        _optional_text("Refund.reason", self.reason, 255)

    def to_json(self) -> dict[str, Any]:
        return {"refund_id": self.refund_id, "psp_reference": self.psp_reference,
                "reference": self.reference, "amount": str(self.amount),
                "currency": self.currency, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Any) -> Refund:
        f = _Fields(data, "Refund")
        return cls(f.raw("refund_id"), f.raw("psp_reference"), f.raw("reference"),
                   f.decimal("amount"), f.raw("currency"),
                   f.raw("reason", optional=True))


@dataclass(frozen=True)
class LocalListEntry(_TokenInfo):
    """One token of the local authorisation list. `status` None = remove (Differential)."""

    _REMOVABLE = True

    id_token: str
    status: AuthStatus | None
    expiry: datetime | None = None
    group_id: str | None = None
    cost_cap: Decimal | None = None
    energy_cap_wh: Decimal | None = None
    tariff: dict[str, Any] | None = field(default=None, repr=False)
    technician: bool = False

    def __post_init__(self) -> None:
        _text("LocalListEntry.id_token", self.id_token, max_len=64, pattern=ID_TOKEN,
              allowed="1 to 64 printable ASCII characters without spaces")
        self._check_token_info()

    def status_at(self, now: datetime) -> AuthStatus | None:
        """The status at `now`: an Accepted entry past its expiry is Expired."""
        if self.status is AuthStatus.ACCEPTED and self.expiry is not None and now >= self.expiry:
            return AuthStatus.EXPIRED
        return self.status

    def to_json(self) -> dict[str, Any]:
        return {"id_token": self.id_token, **self._token_info_json()}

    @classmethod
    def from_json(cls, data: Any) -> LocalListEntry:
        f = _Fields(data, "LocalListEntry")
        return cls(id_token=f.raw("id_token"), **cls._read_token_info(f))


@dataclass(frozen=True)
class LocalListUpdate:
    """A new version of the local authorisation list: Full replaces it, Differential
    adds/updates entries and removes those whose status is None."""

    version: int
    update_type: str
    entries: tuple[LocalListEntry, ...] = ()

    def __post_init__(self) -> None:
        _require(isinstance(self.version, int) and not isinstance(self.version, bool)
                 and self.version >= 1, "LocalListUpdate.version",
                 f"expected an integer of at least 1, got {shown(self.version)}")
        _require(self.update_type in UPDATE_TYPES, "LocalListUpdate.update_type",
                 f"expected Full or Differential, got {shown(self.update_type)}")
        object.__setattr__(self, "entries", tuple(self.entries))
        seen: set[str] = set()
        for i, entry in enumerate(self.entries):
            where = f"LocalListUpdate.entries[{i}]"
            _require(isinstance(entry, LocalListEntry), where,
                     f"expected a LocalListEntry, got {shown(entry)}")
            _require(entry.id_token not in seen, f"{where}.id_token",
                     f"{entry.id_token!r} appears more than once")
            seen.add(entry.id_token)
            if self.update_type == "Full":
                _require(entry.status is not None, f"{where}.status",
                         "required in a Full update (removing is for Differential updates)")

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "update_type": self.update_type,
                "entries": [entry.to_json() for entry in self.entries]}

    @classmethod
    def from_json(cls, data: Any) -> LocalListUpdate:
        f = _Fields(data, "LocalListUpdate")
        entries = []
        for i, item in enumerate(f.array("entries")):
            try:
                entries.append(LocalListEntry.from_json(item))
            except MessageError as exc:
                raise exc.within(f"LocalListUpdate.entries[{i}]", "LocalListEntry") from None
        return cls(f.integer("version"), f.raw("update_type"), tuple(entries))
