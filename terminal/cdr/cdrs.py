"""OCPI 2.2.1 CDRs: the Charge Detail Record of a closed session.

Provides `CdrInput` (what a CDR is made of: the site, the session, its authorisation,
the tariff and pricing result it was billed by, the amount charged, the signed meter
documents), `build_cdr(CdrInput) -> dict` (the CDR object with the spec's field names
and types) and `dumps(cdr)` / `loads(text)` (JSON with exact decimal numbers).

Written from the OCPI 2.2.1 specification (github.com/ocpi/ocpi, release 2.2.1:
mod_cdrs.asciidoc "CDR Object", "CdrToken", "CdrLocation", "ChargingPeriod",
"CdrDimension", "SignedData", "SignedValue"; mod_tariffs.asciidoc "Tariff Object";
types.asciidoc "Price", "DateTime"). docs/cdr.md says where each field comes from.

Totals are the bill's: `total_cost` is the amount charged (incl. VAT) and its net;
`total_energy_cost`, `total_time_cost`, `total_parking_cost` and `total_fixed_cost` the
pricing result's dimension subtotals. When the amount charged is not the tariff's
price (docs/pricing.md rule 8: no energy delivered, nothing charged; or a cost cap),
`remark` says so. The CDR id is the session id (one CDR per session).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.cdr.periods import charging_periods, hours, microseconds
from terminal.cdr.site import CdrSite
from terminal.cdr.tariff_json import tariff_object
from terminal.kernel.clock import iso_utc
from terminal.pricing.model import Dimension, Tariff
from terminal.pricing.result import PricingResult

NOTHING_CHARGED = "No energy was delivered: nothing is charged."
CAPPED = "The amount charged is capped at the amount authorised."

TOKEN_TYPES = {"rfid": "RFID", "card": "AD_HOC_USER", "zvt": "AD_HOC_USER",
               "gateway": "AD_HOC_USER", "app": "APP_USER", "remote": "APP_USER"}
"""OCPI TokenType per authorisation source (others: OTHER)."""


@dataclass(frozen=True)
class CdrInput:
    site: CdrSite
    session_id: str
    id_token: str
    source: str
    """The authorisation's source (rfid, card, zvt, gateway, app, remote, local)."""
    offline: bool
    """Accepted by the local list or the offline policy, not by the backend."""
    payment_reference: str | None
    tariff: Tariff
    result: PricingResult
    energy_wh: Decimal
    """The billed energy exactly (the meter's, or the signed end minus the signed begin)."""
    meter_id: str | None
    amount_charged: Decimal
    """incl. VAT, what the receipt charges."""
    amount_charged_net: Decimal
    """excl. VAT, the receipt's net of the amount charged."""
    created_at: datetime
    signed: dict[str, Any] | None = None
    """The SignedData object (terminal.cdr.signed_data), or None."""


def token_uid(id_token: str) -> str:
    """The id token as OCPI's CiString(36): a longer one (a bank card's token,
    `k1.` + 40 hex digits) is cut to its first 36 characters (still 132 bits)."""
    return id_token[:36]


def auth_method(source: str, offline: bool) -> str:
    """OCPI AuthMethod: COMMAND for remote and app starts, WHITELIST for a token the
    station accepted offline without knowing it (to be asked about again) and for a
    local start, AUTH_REQUEST otherwise (the backend's answer, or its list or cache)."""
    if source in ("app", "remote"):
        return "COMMAND"
    return "WHITELIST" if offline or source == "local" else "AUTH_REQUEST"


def _price(excl_vat: Decimal, incl_vat: Decimal) -> dict[str, Decimal]:
    return {"excl_vat": excl_vat, "incl_vat": incl_vat}


def build_cdr(data: CdrInput) -> dict[str, Any]:
    """The OCPI 2.2.1 CDR object of a closed session (Decimals stay Decimals)."""
    site, result = data.site, data.result
    tariff = tariff_object(data.tariff, country_code=site.country_code,
                           party_id=site.party_id, fallback_id=f"{site.evse_uid}-TARIFF",
                           fallback_updated=data.result.start)
    priced = result.total
    if data.amount_charged == priced.incl_vat:
        total = _price(priced.excl_vat, priced.incl_vat)
        remark = None
    else:
        total = _price(data.amount_charged_net, data.amount_charged)
        remark = NOTHING_CHARGED if data.energy_wh == 0 else CAPPED
    cdr: dict[str, Any] = {
        "country_code": site.country_code,
        "party_id": site.party_id,
        "id": data.session_id,
        "start_date_time": iso_utc(result.start),
        "end_date_time": iso_utc(result.stop),
        "session_id": data.session_id,
        "cdr_token": {
            "country_code": site.country_code,
            "party_id": site.party_id,
            "uid": token_uid(data.id_token),
            "type": TOKEN_TYPES.get(data.source, "OTHER"),
            "contract_id": token_uid(data.id_token),
        },
        "auth_method": auth_method(data.source, data.offline),
        "cdr_location": site.to_location(),
        "currency": result.currency,
        "tariffs": [tariff],
        "charging_periods": charging_periods(result, tariff["id"], data.energy_wh),
        "total_cost": total,
    }
    if data.payment_reference:
        cdr["authorization_reference"] = data.payment_reference[:36]
    if data.meter_id:
        cdr["meter_id"] = data.meter_id
    if data.signed is not None:
        cdr["signed_data"] = data.signed
    for name, dimension in (("total_fixed_cost", Dimension.FLAT),
                            ("total_energy_cost", Dimension.ENERGY),
                            ("total_time_cost", Dimension.TIME),
                            ("total_parking_cost", Dimension.PARKING_TIME)):
        part = result.dimension(dimension)
        if part.excl_vat or part.incl_vat or name == "total_energy_cost":
            cdr[name] = _price(part.excl_vat, part.incl_vat)
    cdr["total_energy"] = (data.energy_wh / 1000).normalize()
    cdr["total_time"] = hours(microseconds(result.start, result.stop))
    parking = sum((microseconds(p.start, p.end) for p in result.periods if not p.charging), 0)
    cdr["total_parking_time"] = hours(parking)
    if remark is not None:
        cdr["remark"] = remark
    cdr["last_updated"] = iso_utc(data.created_at)
    return cdr


_MARK = "\u0000decimal:"
_MARKED = re.compile('"\\\\u0000decimal:(-?[0-9.]+)"')


def _marked(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _MARK + format(value.normalize(), "f")
    if isinstance(value, dict):
        return {k: _marked(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_marked(v) for v in value]
    return value


def dumps(cdr: dict[str, Any]) -> str:
    """The CDR as JSON text; Decimals written as exact JSON numbers."""
    return _MARKED.sub(r"\1", json.dumps(_marked(cdr), separators=(",", ":")))


def loads(text: str) -> dict[str, Any]:
    """A CDR's JSON text with its numbers as Decimals; ValueError when it is not a JSON
    object."""
    found = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    if not isinstance(found, dict):
        raise ValueError(f"a CDR is a JSON object, not {type(found).__name__}")
    return found
