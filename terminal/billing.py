"""Billing from the journal: the terms a session was priced under, its final price and
its receipt, all derived from what the store holds, so a receipt can be rebuilt later
and comes out identical.

The terms (tariff, time zone, charging threshold, station id and operator) are frozen
into the session when its energy starts: a later tariff or config change never
reprices a session (STANDARDS §3 rule 7).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from drivers.meter.reading import MeterReading
from terminal.pricing import PricingResult, Sample, Tariff, parse_tariff, price_session
from terminal.pricing.session import SessionInput
from terminal.receipt import ReceiptFacts, RefundLine, build_receipt
from terminal.session import Authorization


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


def price_readings(terms: Terms, readings: list[MeterReading]) -> PricingResult:
    """The final price of a session from its journaled readings (start ... stop)."""
    samples = tuple(sample_of(r) for r in readings)
    session = SessionInput(
        start=samples[0].t,
        stop=samples[-1].t,
        samples=samples,
        charging_threshold_w=terms.charging_threshold_w,
    )
    return price_session(terms.tariff, session, terms.timezone)


def refund_lines(rows: list[dict[str, Any]]) -> tuple[RefundLine, ...]:
    """Refund rows of the store as receipt lines."""
    return tuple(
        RefundLine(row["refund_id"], Decimal(row["amount"]), datetime.fromisoformat(row["at"]),
                   row["reason"])
        for row in rows
    )


def receipt_for_session(
    session: dict[str, Any], readings: list[MeterReading], language: str = "en",
    refunds: tuple[RefundLine, ...] = (),
) -> tuple[dict[str, Any], str]:
    """(receipt JSON, receipt text) of a closed session row, its readings and refunds."""
    if session["tariff_json"] is None or not readings:
        raise ValueError(f"session {session['id']} never delivered energy; it has no receipt")
    terms = Terms.from_json(session["tariff_json"])
    auth = (
        Authorization.from_json(json.loads(session["authorization_json"]))
        if session["authorization_json"]
        else None
    )
    result = price_readings(terms, readings)
    facts = ReceiptFacts(
        session_id=session["id"],
        operator=terms.operator,
        station_id=terms.station_id,
        timezone=terms.timezone,
        started_at=readings[0].timestamp,
        stopped_at=readings[-1].timestamp,
        meter_serial=readings[0].serial,
        meter_start_wh=readings[0].energy_import_wh,
        meter_stop_wh=readings[-1].energy_import_wh,
        stop_reason=session["stop_reason"] or session["phase"],
        payment_method=auth.source if auth else session["source"],
        card_scheme=auth.card_scheme if auth else None,
        card_last4=auth.card_last4 if auth else None,
        payment_reference=auth.payment_reference if auth else None,
        authorised_amount=auth.cost_cap if auth else None,
        refunds=refunds,
        receipt_url=session.get("receipt_url"),
    )
    receipt = build_receipt(facts, terms.tariff, result, language)
    return receipt.to_json(), receipt.to_text()
