"""The end-of-day messages between the terminal and the payment gateway (docs/protocol.md,
docs/reconciliation.md).

Provides frozen dataclasses with `to_json()` / `from_json()`:
- `SettlementBatchRequest(station_id, since, until)`: the request (op
  `settlement_batch`) for the gateway's record of this station's card payments with any
  activity in [since, until) (`since` None: everything it still holds);
- `SettlementTransaction`: one payment as the gateway knows it, transaction by
  transaction: PSP reference, our reference, status (`TX_STATUSES`), scheme, currency,
  the authorised amount, every capture booked (more than one = a double capture) and
  the amount refunded;
- `SettlementBatch(station_id, since, until, transactions)`: the answer;
- `ZReport`: the Z-report sent to the backend (`up/event` of kind `Z_REPORT_KIND`;
  the payload is terminal.payment.zreport's JSON): its head typed (closing id,
  station, source, trigger, currency, period), the whole report in `body`;
  `check_z_report(data)` checks a payload.

Validation as in terminal.backend.messages: a missing field, a wrong type or a value out
of range raises `MessageError` naming the message and the field; amounts are Decimal
carried as strings, times ISO-8601 with an offset. No card data is ever part of these
messages (references, scheme and amounts only).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.backend.json_fields import time_json
from terminal.backend.messages import (
    MessageError,
    _amount,
    _currency,
    _Fields,
    _moment,
    _reference,
    _require,
    _text,
)
from terminal.kernel.redact import shown

TX_STATUSES = ("authorised", "captured", "voided")
Z_REPORT_KIND = "z_report"
MAX_TRANSACTIONS = 2000


@dataclass(frozen=True)
class SettlementBatchRequest:
    """Ask the gateway for its record of this station's payments active in the period."""

    station_id: str
    since: datetime | None
    until: datetime

    def __post_init__(self) -> None:
        _text("SettlementBatchRequest.station_id", self.station_id)
        if self.since is not None:
            _moment("SettlementBatchRequest.since", self.since)
        _moment("SettlementBatchRequest.until", self.until)
        if self.since is not None:
            _require(self.since <= self.until, "SettlementBatchRequest.since",
                     "must not be after until")

    def to_json(self) -> dict[str, Any]:
        return {"station_id": self.station_id, "since": time_json(self.since),
                "until": time_json(self.until)}

    @classmethod
    def from_json(cls, data: Any) -> SettlementBatchRequest:
        f = _Fields(data, "SettlementBatchRequest")
        return cls(f.raw("station_id"), f.moment("since", optional=True),
                   f.moment("until"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SettlementTransaction:
    """One payment in the gateway's record. `captured`: every capture booked on it
    (normally at most one); `refunded`: the total refunded."""

    psp_reference: str
    reference: str
    status: str
    scheme: str
    currency: str
    amount_authorised: Decimal
    captured: tuple[Decimal, ...] = ()
    refunded: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        where = "SettlementTransaction"
        _reference(f"{where}.psp_reference", self.psp_reference)
        _reference(f"{where}.reference", self.reference)
        _require(self.status in TX_STATUSES, f"{where}.status",
                 f"expected one of {', '.join(TX_STATUSES)}, got {shown(self.status)}")
        _text(f"{where}.scheme", self.scheme, max_len=32)
        _currency(f"{where}.currency", self.currency)
        _amount(f"{where}.amount_authorised", self.amount_authorised)
        object.__setattr__(self, "captured", tuple(self.captured))
        for i, amount in enumerate(self.captured):
            _amount(f"{where}.captured[{i}]", amount, zero_ok=True)
        _amount(f"{where}.refunded", self.refunded, zero_ok=True)
        _require((self.status == "captured") == bool(self.captured), f"{where}.status",
                 "captured exactly when at least one capture is booked")

    @property
    def amount_captured(self) -> Decimal:
        return sum(self.captured, Decimal(0))

    @property
    def open_hold(self) -> bool:
        """An authorisation neither captured nor voided: money held on the card."""
        return self.status == "authorised"

    def to_json(self) -> dict[str, Any]:
        return {"psp_reference": self.psp_reference, "reference": self.reference,
                "status": self.status, "scheme": self.scheme, "currency": self.currency,
                "amount_authorised": str(self.amount_authorised),
                "captured": [str(a) for a in self.captured], "refunded": str(self.refunded)}

    @classmethod
    def from_json(cls, data: Any) -> SettlementTransaction:
        f = _Fields(data, "SettlementTransaction")
        captured = []
        for i, item in enumerate(f.array("captured")):
            _require(isinstance(item, str), f"SettlementTransaction.captured[{i}]",
                     f"expected a decimal as a string, got {shown(item)}")
            captured.append(_Fields({"v": item}, f"SettlementTransaction.captured[{i}]")
                            .decimal("v"))
        return cls(f.raw("psp_reference"), f.raw("reference"), f.raw("status"),
                   f.raw("scheme"), f.raw("currency"),
                   f.decimal("amount_authorised"),  # type: ignore[arg-type]
                   tuple(captured),  # type: ignore[arg-type]
                   f.decimal("refunded"))  # type: ignore[arg-type]


@dataclass(frozen=True)
class SettlementBatch:
    """The gateway's answer: this station's payments active in [since, until)."""

    station_id: str
    since: datetime | None
    until: datetime
    transactions: tuple[SettlementTransaction, ...] = ()

    def __post_init__(self) -> None:
        _text("SettlementBatch.station_id", self.station_id)
        if self.since is not None:
            _moment("SettlementBatch.since", self.since)
        _moment("SettlementBatch.until", self.until)
        object.__setattr__(self, "transactions", tuple(self.transactions))
        _require(len(self.transactions) <= MAX_TRANSACTIONS, "SettlementBatch.transactions",
                 f"at most {MAX_TRANSACTIONS}, got {len(self.transactions)}")
        seen: set[str] = set()
        for i, tx in enumerate(self.transactions):
            where = f"SettlementBatch.transactions[{i}]"
            _require(isinstance(tx, SettlementTransaction), where,
                     f"expected a SettlementTransaction, got {shown(tx)}")
            _require(tx.psp_reference not in seen, f"{where}.psp_reference",
                     "appears more than once")
            seen.add(tx.psp_reference)

    def to_json(self) -> dict[str, Any]:
        return {"station_id": self.station_id, "since": time_json(self.since),
                "until": time_json(self.until),
                "transactions": [tx.to_json() for tx in self.transactions]}

    @classmethod
    def from_json(cls, data: Any) -> SettlementBatch:
        f = _Fields(data, "SettlementBatch")
        transactions = []
        for i, item in enumerate(f.array("transactions")):
            try:
                transactions.append(SettlementTransaction.from_json(item))
            except MessageError as exc:
                raise exc.within(f"SettlementBatch.transactions[{i}]",
                                 "SettlementTransaction") from None
        return cls(f.raw("station_id"), f.moment("since", optional=True),
                   f.moment("until"), tuple(transactions))  # type: ignore[arg-type]


SOURCES = ("gateway", "zvt")
TRIGGERS = ("daily", "service")
_Z_LISTS = ("schemes", "payments", "findings", "repairs", "remaining")


@dataclass(frozen=True)
class ZReport:
    """The Z-report of one closing as the backend receives it (outbox kind `z_report`,
    idempotency key `z-report:<closing_id>`; terminal.payment.zreport writes it). Its
    head is typed; `body` is the whole report as sent (docs/reconciliation.md)."""

    closing_id: str
    station_id: str
    source: str
    trigger: str
    currency: str
    period_start: datetime | None
    period_end: datetime
    body: dict[str, Any]

    def __post_init__(self) -> None:
        _text("ZReport.closing_id", self.closing_id, max_len=32)
        _text("ZReport.station_id", self.station_id)
        _require(self.source in SOURCES, "ZReport.source",
                 f"expected one of {', '.join(SOURCES)}, got {shown(self.source)}")
        _require(self.trigger in TRIGGERS, "ZReport.trigger",
                 f"expected one of {', '.join(TRIGGERS)}, got {shown(self.trigger)}")
        _currency("ZReport.currency", self.currency)
        if self.period_start is not None:
            _moment("ZReport.period_start", self.period_start)
        _moment("ZReport.period_end", self.period_end)

    @property
    def idempotency_key(self) -> str:
        return f"z-report:{self.closing_id}"

    def to_json(self) -> dict[str, Any]:
        return dict(self.body)

    @classmethod
    def from_json(cls, data: Any) -> ZReport:
        f = _Fields(data, "ZReport")
        for key in _Z_LISTS:
            f.array(key)
        f.obj("ledger")
        return cls(f.raw("closing_id"), f.raw("station_id"), f.raw("source"),
                   f.raw("trigger"), f.raw("currency"), f.moment("period_start", optional=True),
                   f.moment("period_end"), dict(data))  # type: ignore[arg-type]


def check_z_report(data: Any) -> dict[str, Any]:
    """The Z-report payload, checked (`ZReport.from_json`); MessageError naming the field
    otherwise."""
    return ZReport.from_json(data).to_json()
