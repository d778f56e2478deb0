"""A parsed tariff (terminal.pricing.model.Tariff) back as an OCPI 2.2.1 Tariff object.

Provides `tariff_object(tariff, *, country_code, party_id, fallback_id, fallback_updated)`:
the tariff a CDR carries in `tariffs[]` (OCPI 2.2.1, mod_tariffs.asciidoc, "Tariff
Object"): the tariff the session was priced by (for a signing meter: without the
dimensions it could not bill), with `id`, `country_code`, `party_id` and `last_updated`
filled from the station when the tariff lacks them. Numbers are JSON numbers written
from their Decimal text (terminal.cdr.cdrs.dumps keeps them exact).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from terminal.kernel.clock import iso_utc
from terminal.pricing.model import DAYS_OF_WEEK, Price, Restrictions, Tariff


def _price(price: Price) -> dict[str, Any]:
    found: dict[str, Any] = {"excl_vat": price.excl_vat}
    if price.incl_vat is not None:
        found["incl_vat"] = price.incl_vat
    return found


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _restrictions(r: Restrictions) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if r.start_time_min is not None:
        found["start_time"] = _hhmm(r.start_time_min)
    if r.end_time_min is not None:
        found["end_time"] = _hhmm(r.end_time_min)
    if r.start_date is not None:
        found["start_date"] = r.start_date.isoformat()
    if r.end_date is not None:
        found["end_date"] = r.end_date.isoformat()
    for name, value in (("min_kwh", r.min_kwh), ("max_kwh", r.max_kwh),
                        ("min_current", r.min_current_a), ("max_current", r.max_current_a),
                        ("min_power", r.min_power_kw), ("max_power", r.max_power_kw),
                        ("min_duration", r.min_duration_s), ("max_duration", r.max_duration_s)):
        if value is not None:
            found[name] = value
    if r.day_of_week:
        found["day_of_week"] = [DAYS_OF_WEEK[day] for day in sorted(r.day_of_week)]
    if r.reservation is not None:
        found["reservation"] = r.reservation
    return found


def tariff_object(tariff: Tariff, *, country_code: str, party_id: str, fallback_id: str,
                  fallback_updated: datetime) -> dict[str, Any]:
    """The OCPI Tariff object of `tariff` (identification filled in when absent)."""
    elements = []
    for element in tariff.elements:
        item: dict[str, Any] = {"price_components": [
            {"type": c.type.value, "price": c.price, **({"vat": c.vat} if c.vat is not None
                                                        else {}), "step_size": c.step_size}
            for c in element.price_components]}
        if element.restrictions is not None:
            restrictions = _restrictions(element.restrictions)
            if restrictions:
                item["restrictions"] = restrictions
        elements.append(item)
    found: dict[str, Any] = {
        "country_code": tariff.country_code or country_code,
        "party_id": tariff.party_id or party_id,
        "id": tariff.id or fallback_id,
        "currency": tariff.currency,
    }
    if tariff.type is not None:
        found["type"] = tariff.type.value
    found["elements"] = elements
    if tariff.min_price is not None:
        found["min_price"] = _price(tariff.min_price)
    if tariff.max_price is not None:
        found["max_price"] = _price(tariff.max_price)
    if tariff.start_date_time is not None:
        found["start_date_time"] = iso_utc(tariff.start_date_time)
    if tariff.end_date_time is not None:
        found["end_date_time"] = iso_utc(tariff.end_date_time)
    found["last_updated"] = iso_utc(tariff.last_updated or fallback_updated)
    return found
