"""Billing from the journal: the terms a session was priced under, its final price and
its receipt, all derived from what the store holds, so a receipt can be rebuilt later
and comes out identical.

`bill_session` is the one way a receipt is made: at close from the readings in memory
(nothing is read back from the journal before the close is committed), and later
from the journal (`bill_from_journal`: another language, a refund, a receipt missing
after a crash).

The terms (tariff, time zone, charging threshold, station id and operator) are frozen
into the session when its energy starts: a later tariff or config change never
reprices a session (docs/pricing.md, rule 7: the tariff in force at the start stays).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any

from drivers.meter.reading import MeterReading
from terminal.cdr import CdrInput, CdrSite, build_cdr, dumps
from terminal.cdr.signed_data import signed_data
from terminal.kernel.logsetup import fields, get_logger
from terminal.pricing import PricingResult, Sample, Tariff, parse_tariff, price_session
from terminal.pricing.session import SessionInput
from terminal.receipt import Receipt, ReceiptFacts, RefundLine, build_receipt
from terminal.session import Authorization
from terminal.signed_billing import SignedSummary

if TYPE_CHECKING:
    from terminal.store import Store

log = get_logger("billing")


@dataclass(frozen=True)
class Terms:
    tariff_json: dict[str, Any]
    timezone: str
    charging_threshold_w: Decimal
    station_id: str
    operator: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "tariff": self.tariff_json,
                "timezone": self.timezone,
                "charging_threshold_w": str(self.charging_threshold_w),
                "station_id": self.station_id,
                "operator": self.operator,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Terms:
        data = json.loads(text)
        return cls(
            tariff_json=data["tariff"],
            timezone=data["timezone"],
            charging_threshold_w=Decimal(data["charging_threshold_w"]),
            station_id=data["station_id"],
            operator=data["operator"],
        )

    @cached_property
    def tariff(self) -> Tariff:
        """The parsed tariff (parsed once per Terms)."""
        return parse_tariff(self.tariff_json)


def sample_of(reading: MeterReading) -> Sample:
    return Sample(
        reading.timestamp,
        reading.energy_import_wh,
        reading.power_w or Decimal(0),
        reading.current_a or Decimal(0),
    )


def price_readings(terms: Terms, readings: list[MeterReading],
                   tariff: Tariff | None = None) -> PricingResult:
    """The final price of a session from its journaled readings (start ... stop), by
    the terms' tariff or `tariff` (the terms' as a signing meter allows it)."""
    samples = tuple(sample_of(r) for r in readings)
    session = SessionInput(
        start=samples[0].t,
        stop=samples[-1].t,
        samples=samples,
        charging_threshold_w=terms.charging_threshold_w,
    )
    return price_session(tariff or terms.tariff, session, terms.timezone)


def refund_lines(rows: list[dict[str, Any]]) -> tuple[RefundLine, ...]:
    """Refund rows of the store as receipt lines."""
    return tuple(
        RefundLine(row["refund_id"], Decimal(row["amount"]), datetime.fromisoformat(row["at"]),
                   row["reason"])
        for row in rows
    )


@dataclass(frozen=True)
class Bill:
    """The final billing result of a session: the amount charged (what a card payment
    captures) and the receipt that shows it."""

    amount_charged: Decimal
    currency: str
    receipt_json: dict[str, Any]
    receipt_text: str
    cdr: dict[str, Any] | None = None
    """The session's OCPI 2.2.1 CDR (terminal.cdr) when the station's site is known."""

    @property
    def receipt(self) -> tuple[dict[str, Any], str]:
        return self.receipt_json, self.receipt_text

    @property
    def cdr_json(self) -> str | None:
        """The CDR as exact JSON text (terminal.cdr.dumps), None without one."""
        return dumps(self.cdr) if self.cdr is not None else None


@dataclass(frozen=True)
class SessionFacts:
    """What the journal knows of a closed session besides its readings."""

    session_id: str
    terms: Terms
    authorization: Authorization | None
    source: str
    stop_reason: str
    receipt_url: str | None = None
    signed: SignedSummary | None = None  # a signing meter's documents
    terminal_lines: tuple[str, ...] = ()  # the payment terminal's receipt (ZVT booking)
    site: CdrSite | None = None  # the station as a CDR names it; None: no CDR

    @classmethod
    def from_row(cls, row: dict[str, Any],
                 signed_rows: list[dict[str, Any]] | None = None) -> SessionFacts:
        """From a `sessions` row; ValueError when the session never delivered energy."""
        if row["tariff_json"] is None:
            raise ValueError(f"session {row['id']} never delivered energy; it has no receipt")
        auth_json = row["authorization_json"]
        return cls(
            session_id=row["id"],
            terms=Terms.from_json(row["tariff_json"]),
            authorization=Authorization.from_json(json.loads(auth_json)) if auth_json else None,
            source=row["source"],
            stop_reason=row["stop_reason"] or row["phase"],
            receipt_url=row.get("receipt_url"),
            signed=SignedSummary.from_rows(signed_rows or []),
        )


def bill_session(facts: SessionFacts, readings: list[MeterReading], language: str = "en",
                 refunds: tuple[RefundLine, ...] = ()) -> Bill:
    """The bill of a closed session from its facts, readings (start ... stop) and
    refunds: the one way every receipt is made, so a rebuilt one comes out identical."""
    if not readings:
        raise ValueError(f"session {facts.session_id} never delivered energy; it has no "
                         "receipt")
    terms, auth, signed = facts.terms, facts.authorization, facts.signed
    tariff = terms.tariff
    if signed is not None:
        readings = signed.readings(readings)
        tariff = signed.tariff(tariff)
    result = price_readings(terms, readings, tariff)
    receipt_facts = ReceiptFacts(
        session_id=facts.session_id,
        operator=terms.operator,
        station_id=terms.station_id,
        timezone=terms.timezone,
        started_at=readings[0].timestamp,
        stopped_at=readings[-1].timestamp,
        meter_serial=readings[0].serial,
        meter_start_wh=readings[0].energy_import_wh,
        meter_stop_wh=readings[-1].energy_import_wh,
        stop_reason=facts.stop_reason,
        payment_method=auth.source if auth else facts.source,
        card_scheme=auth.card_scheme if auth else None,
        card_last4=auth.card_last4 if auth else None,
        payment_reference=auth.payment_reference if auth else None,
        authorised_amount=auth.cost_cap if auth else None,
        refunds=refunds,
        terminal_lines=facts.terminal_lines,
        receipt_url=facts.receipt_url,
        vat_number=auth.vat_number if auth else None,
        **_signed_facts(signed),
    )
    receipt = build_receipt(receipt_facts, tariff, result, language)
    cdr = None
    if facts.site is not None:
        try:
            cdr = _cdr(facts, facts.site, auth, signed, tariff, result, readings, receipt)
        except Exception:  # a CDR that cannot be made never holds up the receipt
            log.exception("CDR cannot be built; the receipt goes without it",
                          extra=fields(session=facts.session_id))
    return Bill(receipt.amount_charged, receipt.currency, receipt.to_json(), receipt.to_text(),
                cdr)


def _cdr(facts: SessionFacts, site: CdrSite, auth: Authorization | None,
         signed: SignedSummary | None, tariff: Tariff, result: PricingResult,
         readings: list[MeterReading], receipt: Receipt) -> dict[str, Any]:
    """The session's OCPI CDR from its bill (terminal.cdr)."""
    return build_cdr(CdrInput(
        site=site, session_id=facts.session_id,
        id_token=auth.id_token if auth else facts.session_id,
        source=auth.source if auth else facts.source,
        offline=bool(auth and auth.recheck),
        payment_reference=auth.payment_reference if auth else None,
        tariff=tariff, result=result,
        energy_wh=readings[-1].energy_import_wh - readings[0].energy_import_wh,
        meter_id=readings[0].serial, amount_charged=receipt.amount_charged,
        amount_charged_net=receipt.amounts.net, created_at=result.stop,
        signed=signed_data(signed.begin_ocmf, signed.end_ocmf, signed.public_key_hex)
        if signed is not None else None,
    ))


def _signed_facts(signed: SignedSummary | None) -> dict[str, Any]:
    """What a receipt shows of a signing meter's documents."""
    if signed is None:
        return {}
    from terminal.signed.transparency import qr_text, transparency_xml

    docs = [d for d in (signed.begin_ocmf, signed.end_ocmf) if d]
    return {
        "ocmf": signed.end_ocmf,
        "meter_public_key": signed.public_key_hex,
        "meter_signing_method": signed.signing_method,
        "transparency_qr": qr_text(signed.end_ocmf, signed.public_key_hex)
        if signed.end_ocmf else None,
        "transparency_xml": transparency_xml(docs, signed.public_key_hex) if docs else None,
        "energy_not_billed": not signed.billable_by_energy,
        "signed_problem": signed.problem,
        "time_not_billed": not signed.clock_trusted,
    }


def bill_from_row(row: dict[str, Any], readings: list[MeterReading], language: str = "en",
                  refunds: tuple[RefundLine, ...] = (),
                  signed_rows: list[dict[str, Any]] | None = None) -> Bill:
    """`bill_session` of a `sessions` row (and its signed meter values)."""
    return bill_session(SessionFacts.from_row(row, signed_rows), readings, language, refunds)


def bill_from_journal(store: Store, session_id: str, language: str = "en",
                      site: CdrSite | None = None) -> Bill | None:
    """The bill of a closed session as the journal holds it (its row, readings, refunds
    and the payment terminal's booking receipt); None when there is no such session.
    Runs on the store's thread; ValueError when the session has no receipt (no energy)
    or the language is not supported."""
    row = store.session(session_id)
    if row is None:
        return None
    readings = [reading for _, reading in store.readings(session_id)]
    facts = replace(SessionFacts.from_row(row, store.signed_values(session_id)), site=site)
    payment = store.payment(session_id=session_id)
    lines = payment.pt.get("booking", {}).get("lines", []) if payment is not None else []
    if lines:
        facts = replace(facts, terminal_lines=tuple(lines))
    return bill_session(facts, readings, language, refund_lines(store.refunds(session_id)))
