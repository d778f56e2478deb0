"""The backend simulator's check of an OCPI 2.2.1 CDR (message kind "cdr").

Provides `check_cdr(payload, timezone="UTC") -> list[str]`: every problem of the
payload `{"session_id", "cdr"}`, field by field against the OCPI 2.2.1 CDR object
(github.com/ocpi/ocpi release 2.2.1, mod_cdrs.asciidoc: required fields, their types
and lengths, the enums), then the total re-priced by the independent OCPI engine
(hw_mocks.ocpi_reference). Empty when the CDR is well-formed and its total agrees.
"""

from __future__ import annotations

import base64
from decimal import Decimal, InvalidOperation
from typing import Any

from hw_mocks.ocpi_reference import check_total

_STRINGS = {"country_code": 2, "party_id": 3, "id": 39, "session_id": 36, "currency": 3,
            "start_date_time": 25, "end_date_time": 25, "last_updated": 25}
_TOKEN = {"country_code": 2, "party_id": 3, "uid": 36, "contract_id": 36}
_LOCATION = {"id": 36, "address": 45, "city": 45, "country": 3, "evse_uid": 36,
             "evse_id": 48, "connector_id": 36}
_AUTH = ("AUTH_REQUEST", "COMMAND", "WHITELIST")
_TOKEN_TYPES = ("AD_HOC_USER", "APP_USER", "OTHER", "RFID")
_DIMENSIONS = ("CURRENT", "ENERGY", "ENERGY_EXPORT", "ENERGY_IMPORT", "MAX_CURRENT",
               "MIN_CURRENT", "MAX_POWER", "MIN_POWER", "PARKING_TIME", "POWER",
               "RESERVATION_TIME", "STATE_OF_CHARGE", "TIME")
_POWER = ("AC_1_PHASE", "AC_2_PHASE", "AC_2_PHASE_SPLIT", "AC_3_PHASE", "DC")


def _strings(where: str, data: Any, spec: dict[str, int]) -> list[str]:
    if not isinstance(data, dict):
        return [f"{where}: an object expected"]
    return [f"{where}.{name}: a string of at most {size} characters expected, got "
            f"{data.get(name)!r}" for name, size in spec.items()
            if not isinstance(data.get(name), str) or len(data[name]) > size]


def _number(where: str, value: Any) -> list[str]:
    try:
        Decimal(str(value))
    except (InvalidOperation, ValueError):
        return [f"{where}: a number expected, got {value!r}"]
    return [] if isinstance(value, int | float | Decimal) and not isinstance(value, bool) \
        else [f"{where}: a number expected, got {value!r}"]


def _price(where: str, value: Any) -> list[str]:
    if not isinstance(value, dict) or "excl_vat" not in value:
        return [f"{where}: a Price {{excl_vat, incl_vat?}} expected"]
    return _number(f"{where}.excl_vat", value["excl_vat"]) + (
        _number(f"{where}.incl_vat", value["incl_vat"]) if "incl_vat" in value else [])


def _shape(cdr: dict[str, Any]) -> list[str]:
    found = _strings("cdr", cdr, _STRINGS)
    found += _strings("cdr.cdr_token", cdr.get("cdr_token"), _TOKEN)
    token = cdr.get("cdr_token") or {}
    if token.get("type") not in _TOKEN_TYPES:
        found.append("cdr.cdr_token.type: one of " + ", ".join(_TOKEN_TYPES))
    if cdr.get("auth_method") not in _AUTH:
        found.append("cdr.auth_method: one of " + ", ".join(_AUTH))
    location = cdr.get("cdr_location")
    found += _strings("cdr.cdr_location", location, _LOCATION)
    if isinstance(location, dict):
        coordinates = location.get("coordinates") or {}
        for axis in ("latitude", "longitude"):
            if not isinstance(coordinates.get(axis), str):
                found.append(f"cdr.cdr_location.coordinates.{axis}: a string expected")
        if location.get("connector_power_type") not in _POWER:
            found.append("cdr.cdr_location.connector_power_type: one of " + ", ".join(_POWER))
        if location.get("connector_format") not in ("CABLE", "SOCKET"):
            found.append("cdr.cdr_location.connector_format: CABLE or SOCKET")
    tariffs = cdr.get("tariffs")
    if not isinstance(tariffs, list) or not tariffs:
        found.append("cdr.tariffs: the tariff in force expected")
    else:
        for i, tariff in enumerate(tariffs):
            found += _strings(f"cdr.tariffs[{i}]", tariff, {
                "country_code": 2, "party_id": 3, "id": 36, "currency": 3,
                "last_updated": 25})
            if not isinstance(tariff.get("elements"), list) or not tariff["elements"]:
                found.append(f"cdr.tariffs[{i}].elements: at least one element expected")
    periods = cdr.get("charging_periods")
    if not isinstance(periods, list) or not periods:
        found.append("cdr.charging_periods: at least one period expected")
    else:
        for i, period in enumerate(periods):
            where = f"cdr.charging_periods[{i}]"
            if not isinstance(period.get("start_date_time"), str):
                found.append(f"{where}.start_date_time: a DateTime expected")
            dimensions = period.get("dimensions")
            if not isinstance(dimensions, list) or not dimensions:
                found.append(f"{where}.dimensions: at least one expected")
                continue
            for j, dimension in enumerate(dimensions):
                if dimension.get("type") not in _DIMENSIONS:
                    found.append(f"{where}.dimensions[{j}].type: a CdrDimensionType expected")
                found += _number(f"{where}.dimensions[{j}].volume", dimension.get("volume"))
    for name in ("total_cost",):
        found += _price(f"cdr.{name}", cdr.get(name))
    for name in ("total_fixed_cost", "total_energy_cost", "total_time_cost",
                 "total_parking_cost"):
        if name in cdr:
            found += _price(f"cdr.{name}", cdr[name])
    for name in ("total_energy", "total_time"):
        found += _number(f"cdr.{name}", cdr.get(name))
    signed = cdr.get("signed_data")
    if signed is not None:
        if signed.get("encoding_method") != "OCMF" or not signed.get("signed_values"):
            found.append("cdr.signed_data: encoding_method OCMF and signed_values expected")
        for k, value in enumerate(signed.get("signed_values") or []):
            where = f"cdr.signed_data.signed_values[{k}]"
            if not all(isinstance(value.get(f), str) for f in
                       ("nature", "plain_data", "signed_data")):
                found.append(f"{where}: nature, plain_data, signed_data expected")
                continue
            if len(value["plain_data"]) > 512:
                found.append(f"{where}.plain_data: at most 512 characters")
            try:
                base64.b64decode(value["signed_data"], validate=True)
            except ValueError:
                found.append(f"{where}.signed_data: base64 expected")
    return found


def check_cdr(payload: Any, timezone: str = "UTC",
              known: dict[str, dict[str, Any]] | None = None) -> list[str]:
    """Every problem of a "cdr" message's payload; empty when it is right. `known`: the
    CDRs received before by id: a Credit CDR must credit one of them, with exactly
    its total negated (OCPI 2.2.1 "Credit CDRs")."""
    if not isinstance(payload, dict) or not isinstance(payload.get("cdr"), dict):
        return ["payload.cdr: the CDR object expected"]
    cdr = payload["cdr"]
    problems = _shape(cdr)
    if payload.get("session_id") != cdr.get("session_id"):
        problems.append("payload.session_id: differs from cdr.session_id")
    if problems:
        return problems
    if cdr.get("credit") and known is not None:
        original = known.get(str(cdr.get("credit_reference_id")))
        if original is None:
            return [f"cdr.credit_reference_id: {cdr.get('credit_reference_id')!r} is no CDR "
                    "received before"]
        negated = {k: -Decimal(str(v)) for k, v in original["total_cost"].items()}
        if {k: Decimal(str(v)) for k, v in cdr["total_cost"].items()} != negated:
            problems.append(f"cdr.total_cost: {cdr['total_cost']} is not minus the credited "
                            f"CDR's {original['total_cost']}")
        if len(str(cdr.get("id"))) > 39 or cdr.get("id") == original.get("id"):
            problems.append("cdr.id: a Credit CDR needs its own id of at most 39 characters")
    elif len(str(cdr.get("id"))) > 36:
        problems.append("cdr.id: at most 36 characters (39 only for a Credit CDR)")
    if problems:
        return problems
    try:
        return check_total(cdr, timezone)
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        return [f"cdr: cannot be re-priced: {exc!r}"]
