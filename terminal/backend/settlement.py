"""NotifySettlement: how a card payment ended, in the shape of OCPP 2.1's
NotifySettlementRequest (docs/protocol.md, "Settlement").

Provides:
- `SettlementStatus`, OCPP 2.1's PaymentStatusEnumType: Settled, Canceled, Rejected,
  Failed;
- `NotifySettlement`, a frozen dataclass checked on construction, with `to_json()` (the
  OCPP field names; optional fields left out when absent, as OCPP's schema wants, never
  null) and `from_json(data)` (what the backend simulator checks each one it gets with);
- `KIND` ("NotifySettlement"), the outbox kind it travels under, and `VENDOR_ID`.

Fields and limits follow OCPP 2.1's NotifySettlementRequest JSON schema:
`transactionId` (string, at most 36), `pspRef` (required, at most 255), `status`
(required, the enum), `statusInfo` (at most 500), `settlementAmount` (required, a JSON
number), `settlementTime` (required, date-time), `receiptId` (at most 50), `receiptUrl`
(at most 2000), `vatNumber` (at most 20; here also the form of terminal.kernel.vat),
`vatCompany` (an AddressType; the terminal never has one: refused here rather than
checked half), `customData` (object with `vendorId`, at most 255). Our own additions go
in `customData` as OCPP allows: `reference` (our payment reference, the gateway's
idempotency key) and `currency` (ISO 4217 alpha-3; OCPP's amount has no currency).
Unknown top-level fields are refused (the schema's additionalProperties is false).

Money is Decimal here. OCPP makes `settlementAmount` a JSON number: it is written as
the shortest number text that reads back as the same Decimal (an int when whole), and
read back with `Decimal(repr(number))`; a Decimal that would not survive the trip (more
than 15 significant digits) is refused on construction, never rounded silently.

Documents used: the OCPP 2.1 JSON schema NotifySettlementRequest.json, as generated into
public OCPP libraries (seanlee0923/ocpp v21, rust-ocpp 3.x `v2_1` PaymentStatusEnumType).

On failure: construction and `from_json` raise `MessageError` (terminal.backend.messages)
naming `NotifySettlement.<field>`; no message repeats a value that could be a card number.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.backend.messages import MessageError
from terminal.kernel.clock import iso_utc, parse_time
from terminal.kernel.money import MAX_AMOUNT, is_currency
from terminal.kernel.redact import shown
from terminal.kernel.vat import VatNumberError, check_vat_number

KIND = "NotifySettlement"
VENDOR_ID = "org.evterm"
WHERE = "NotifySettlement"
MAX_TRANSACTION_ID = 36
MAX_PSP_REF = 255
MAX_STATUS_INFO = 500
MAX_RECEIPT_ID = 50
MAX_RECEIPT_URL = 2000
MAX_VENDOR_ID = 255
MAX_REFERENCE = 64
MAX_EXACT_DIGITS = 15  # a float's repr gives back any Decimal of up to 15 digits
FIELDS = ("transactionId", "pspRef", "status", "statusInfo", "settlementAmount",
          "settlementTime", "receiptId", "receiptUrl", "vatNumber", "vatCompany",
          "customData")


class SettlementStatus(enum.StrEnum):
    """OCPP 2.1 PaymentStatusEnumType."""

    SETTLED = "Settled"
    CANCELED = "Canceled"
    REJECTED = "Rejected"
    FAILED = "Failed"


def _fail(name: str, problem: str) -> MessageError:
    return MessageError(f"{WHERE}.{name}", problem)


def _text(name: str, value: Any, max_len: int, *, optional: bool = True) -> None:
    if value is None:
        if not optional:
            raise _fail(name, "required field missing")
        return
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise _fail(name, f"expected a string of 1 to {max_len} characters, "
                          f"got {shown(value)}")


def amount_json(amount: Decimal) -> int | float:
    """A Decimal as the JSON number OCPP wants; exact (checked on construction)."""
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _amount_from_json(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail("settlementAmount", f"expected a JSON number, got {shown(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise _fail("settlementAmount", "expected a finite number")
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


@dataclass(frozen=True)
class NotifySettlement:
    """One card payment's end. `reference` is ours (the payment's), `currency` the
    tariff's; both travel in customData."""

    psp_ref: str
    status: SettlementStatus
    settlement_amount: Decimal
    settlement_time: datetime
    reference: str
    currency: str
    transaction_id: str | None = None
    status_info: str | None = None
    receipt_id: str | None = None
    receipt_url: str | None = None
    vat_number: str | None = None

    def __post_init__(self) -> None:
        _text("transactionId", self.transaction_id, MAX_TRANSACTION_ID)
        _text("pspRef", self.psp_ref, MAX_PSP_REF, optional=False)
        try:
            object.__setattr__(self, "status", SettlementStatus(self.status))
        except ValueError:
            raise _fail("status", f"expected one of {', '.join(SettlementStatus)}, "
                                  f"got {shown(self.status)}") from None
        _text("statusInfo", self.status_info, MAX_STATUS_INFO)
        amount = self.settlement_amount
        if (not isinstance(amount, Decimal) or not amount.is_finite() or amount < 0
                or amount > MAX_AMOUNT):
            raise _fail("settlementAmount", f"expected a decimal amount from 0 up to "
                                            f"{MAX_AMOUNT}, got {shown(amount)}")
        if len(amount.normalize().as_tuple().digits) > MAX_EXACT_DIGITS:
            raise _fail("settlementAmount", f"more than {MAX_EXACT_DIGITS} significant "
                                            "digits cannot travel exactly as a JSON number")
        if self.status is SettlementStatus.CANCELED and amount != 0:
            raise _fail("settlementAmount", "a canceled payment settles nothing: expected 0")
        moment = self.settlement_time
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise _fail("settlementTime", f"expected a time with a time zone, got "
                                          f"{shown(moment)}")
        _text("receiptId", self.receipt_id, MAX_RECEIPT_ID)
        _text("receiptUrl", self.receipt_url, MAX_RECEIPT_URL)
        if self.vat_number is not None:
            try:
                object.__setattr__(self, "vat_number",
                                   check_vat_number(self.vat_number, f"{WHERE}.vatNumber"))
            except VatNumberError as exc:
                raise MessageError(exc.field, exc.problem) from None
        _text("customData.reference", self.reference, MAX_REFERENCE, optional=False)
        if not is_currency(self.currency):
            raise _fail("customData.currency", f"expected an ISO 4217 alpha-3 code such as "
                                               f"EUR, got {shown(self.currency)}")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pspRef": self.psp_ref,
            "status": self.status.value,
            "settlementAmount": amount_json(self.settlement_amount),
            "settlementTime": iso_utc(self.settlement_time),
            "customData": {"vendorId": VENDOR_ID, "reference": self.reference,
                           "currency": self.currency},
        }
        optional = {"transactionId": self.transaction_id, "statusInfo": self.status_info,
                    "receiptId": self.receipt_id, "receiptUrl": self.receipt_url,
                    "vatNumber": self.vat_number}
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    @classmethod
    def from_json(cls, data: Any) -> NotifySettlement:
        """A received message, checked field by field against the schema's rules."""
        if not isinstance(data, dict):
            raise MessageError(WHERE, f"expected a JSON object, got {shown(data)}")
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise _fail(unknown[0][:40], "not a field of NotifySettlementRequest")
        if "vatCompany" in data:
            raise _fail("vatCompany", "the terminal never sends a company address")
        for name in ("pspRef", "status", "settlementAmount", "settlementTime", "customData"):
            if data.get(name) is None:
                raise _fail(name, "required field missing")
        custom = data["customData"]
        if not isinstance(custom, dict):
            raise _fail("customData", f"expected a JSON object, got {shown(custom)}")
        _text("customData.vendorId", custom.get("vendorId"), MAX_VENDOR_ID, optional=False)
        moment = data["settlementTime"]
        parsed = parse_time(moment) if isinstance(moment, str) and len(moment) <= 40 else None
        if parsed is None:
            raise _fail("settlementTime", "expected an ISO-8601 date-time with a time zone, "
                                          f"got {shown(moment)}")
        return cls(
            psp_ref=data["pspRef"], status=data["status"],
            settlement_amount=_amount_from_json(data["settlementAmount"]),
            settlement_time=parsed, reference=custom.get("reference"),
            currency=custom.get("currency"), transaction_id=data.get("transactionId"),
            status_info=data.get("statusInfo"), receipt_id=data.get("receiptId"),
            receipt_url=data.get("receiptUrl"), vat_number=data.get("vatNumber"),
        )
