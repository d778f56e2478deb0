"""An independent OCPI 2.2.1 re-pricer: the total cost of a CDR from its charging
periods and its tariff, written only from the OCPI 2.2.1 specification text
(github.com/ocpi/ocpi, release 2.2.1: mod_tariffs.asciidoc "Tariff Object",
"TariffElement", "PriceComponent" (step_size), "TariffRestrictions", min_price /
max_price; mod_cdrs.asciidoc "ChargingPeriod", "CdrDimension"). It shares no code with
terminal.pricing and imports nothing of terminal/: it is the back office's view, used
by the backend simulator on every CDR it receives and by the unit tests. (No existing
engine could be used instead: PyPI's ocpi-tariffs 0.1.0, "OCPI 2.2.1 Tariff
Calculation Engine", ships a wheel with no code in it, and the npm registry's list has
no OCPI package.)

Provides `reprice(cdr, timezone="UTC") -> Reprice` (the total excl. and incl. VAT,
rounded half-up to the currency's minor unit) and `check_total(cdr, timezone)` (the
list of what disagrees between the CDR's total_cost and the re-priced one, empty when
they agree).

The rules, from the spec:
- per charging period and per dimension (ENERGY, TIME, PARKING_TIME), the tariff
  element that prices it is the first in the tariff's list whose restrictions all hold
  at the period's start and that has a price component of that dimension; none = free;
- FLAT (a fee per session, no CDR dimension in OCPI 2.2.1): the element chosen the same
  way at each period's start; each distinct element's flat price is charged once;
- restrictions: start_time/end_time (local time of day, an end before the start wraps
  over midnight), start_date (incl.)/end_date (excl.), day_of_week (local), min_kwh
  (incl.)/max_kwh (excl.) of the energy of the periods before, min_duration
  (incl.)/max_duration (excl.) of the time of the periods before; a reservation never
  holds; power and current restrictions are not supported here (a tariff with them is
  refused: `UnsupportedTariff`);
- step_size applies to the session's total of a dimension: ENERGY's total is rounded
  up to a multiple of the step of the last ENERGY component used; of TIME and
  PARKING_TIME the one used last is rounded up by its last component's step; the
  extra is priced at that component (mod_cdrs.asciidoc "step_size": once per session
  for ENERGY and once for TIME and PARKING_TIME, "after 21 minutes of charging ... 7
  more minutes ... parking ... 10 minutes"; the tariffs module's example #1 rounds the
  combined time instead and contradicts it: the CDRs module's rule is followed);
- amount = volume x price per component, VAT per component (price x (1 + vat/100)),
  summed; min_price and max_price clamp the excl. and incl. totals each by its own
  side; rounded half-up to the minor unit.
Volumes: ENERGY in kWh, TIME and PARKING_TIME in hours (taken to the microsecond:
hours x 3.6e9 rounded). A CDR whose remark says no energy was delivered
must cost 0; one capped, or issued after a refund (remark "Refunded ..."), may cost
less than the tariff's price, never more nor below 0; a Credit CDR (`credit` true, OCPI
"Credit CDRs") costs minus at most the price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
_MINOR = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3,
          "TND": 3}
_US_PER_HOUR = 3_600_000_000
NOTHING_CHARGED = "No energy was delivered: nothing is charged."
CAPPED = "The amount charged is capped at the amount authorised."
REFUNDED = "Refunded "


class UnsupportedTariff(ValueError):
    """The tariff uses what this re-pricer does not evaluate (power/current)."""


@dataclass(frozen=True)
class Reprice:
    excl_vat: Decimal
    incl_vat: Decimal


def _num(value: Any) -> Fraction:
    return Fraction(Decimal(str(value)))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _holds(restrictions: dict[str, Any] | None, local: datetime, wh: Fraction,
           us: int) -> bool:
    if not restrictions:
        return True
    for key in ("min_power", "max_power", "min_current", "max_current"):
        if restrictions.get(key) is not None:
            raise UnsupportedTariff(f"restriction {key} is not supported by the re-pricer")
    if restrictions.get("reservation") is not None:
        return False
    minute = Fraction(local.hour * 60 + local.minute) + Fraction(
        local.second * 1_000_000 + local.microsecond, 60_000_000)
    start = restrictions.get("start_time")
    end = restrictions.get("end_time")
    if start is not None and end is not None and _minutes(end) < _minutes(start):
        if not (minute >= _minutes(start) or minute < _minutes(end)):
            return False
    else:
        if start is not None and minute < _minutes(start):
            return False
        if end is not None and minute >= _minutes(end):
            return False
    day = local.date()
    if restrictions.get("start_date") and day < date.fromisoformat(restrictions["start_date"]):
        return False
    if restrictions.get("end_date") and day >= date.fromisoformat(restrictions["end_date"]):
        return False
    days = restrictions.get("day_of_week")
    if days and _DAYS[local.weekday()] not in days:
        return False
    kwh = wh / 1000
    if restrictions.get("min_kwh") is not None and kwh < _num(restrictions["min_kwh"]):
        return False
    if restrictions.get("max_kwh") is not None and kwh >= _num(restrictions["max_kwh"]):
        return False
    seconds = Fraction(us, 1_000_000)
    if restrictions.get("min_duration") is not None and seconds < _num(
            restrictions["min_duration"]):
        return False
    return not (restrictions.get("max_duration") is not None
                and seconds >= _num(restrictions["max_duration"]))


def _component(element: dict[str, Any], dimension: str) -> dict[str, Any] | None:
    return next((c for c in element["price_components"] if c["type"] == dimension), None)


def _round(value: Fraction, places: int) -> Decimal:
    scaled = value * 10**places
    whole = math.floor(scaled + Fraction(1, 2)) if scaled >= 0 else -math.floor(
        -scaled + Fraction(1, 2))
    return (Decimal(whole) / (Decimal(10) ** places)).quantize(
        Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


def reprice(cdr: dict[str, Any], timezone: str = "UTC") -> Reprice:
    """The CDR's total cost re-priced from its periods and tariff."""
    zone = ZoneInfo(timezone)
    tariffs = {t["id"]: t for t in cdr["tariffs"]}
    quantities: dict[tuple[str, str, int], Fraction] = {}
    last_energy: tuple[str, int] | None = None
    last_time: tuple[str, str, int] | None = None
    wh_before = Fraction(0)
    us_before = 0
    tariff: dict[str, Any] | None = None
    for period in sorted(cdr["charging_periods"], key=lambda p: _time(p["start_date_time"])):
        tariff_id = period.get("tariff_id") or cdr["tariffs"][0]["id"]
        tariff = tariffs[tariff_id]
        local = _time(period["start_date_time"]).astimezone(zone)
        period_wh = Fraction(0)
        period_us = 0
        for dimension in period["dimensions"]:
            kind, volume = dimension["type"], _num(dimension["volume"])
            if kind not in ("ENERGY", "TIME", "PARKING_TIME"):
                continue
            amount: Fraction = volume
            if kind == "ENERGY":
                amount = volume * 1000
                period_wh += amount
            elif kind in ("TIME", "PARKING_TIME"):
                amount = Fraction(round(volume * _US_PER_HOUR))
                period_us += int(amount)
            index = next((i for i, e in enumerate(tariff["elements"])
                          if _component(e, kind) is not None
                          and _holds(e.get("restrictions"), local, wh_before, us_before)),
                         None)
            if index is None:
                continue
            key = (tariff_id, kind, index)
            quantities[key] = quantities.get(key, Fraction(0)) + amount
            if amount and kind == "ENERGY":
                last_energy = (tariff_id, index)
            if amount and kind in ("TIME", "PARKING_TIME"):
                last_time = key
        flat = next((i for i, e in enumerate(tariff["elements"])
                     if _component(e, "FLAT") is not None
                     and _holds(e.get("restrictions"), local, wh_before, us_before)), None)
        if flat is not None:  # a flat fee once per element that applies in the session
            quantities[(tariff_id, "FLAT", flat)] = Fraction(1)
        wh_before += period_wh
        us_before += period_us
    if tariff is None:
        tariff = cdr["tariffs"][0]
    if last_energy is not None:
        tid, index = last_energy
        step = Fraction(int(_component(tariffs[tid]["elements"][index], "ENERGY")["step_size"]))
        total = sum((q for (_, k, _), q in quantities.items() if k == "ENERGY"), Fraction(0))
        if step > 0 and total % step:
            quantities[(tid, "ENERGY", index)] += step - total % step
    if last_time is not None:
        tid, kind, index = last_time
        step = Fraction(int(_component(tariffs[tid]["elements"][index], kind)["step_size"])
                        * 1_000_000)
        total = sum((q for (_, k, _), q in quantities.items() if k == kind), Fraction(0))
        if step > 0 and total % step:
            quantities[last_time] += step - total % step
    excl = incl = Fraction(0)
    for (tid, kind, index), quantity in quantities.items():
        component = _component(tariffs[tid]["elements"][index], kind)
        assert component is not None
        unit = {"ENERGY": Fraction(1, 1000), "FLAT": Fraction(1)}.get(
            kind, Fraction(1, _US_PER_HOUR))
        amount = quantity * unit * _num(component["price"])
        excl += amount
        vat = component.get("vat")
        incl += amount if vat is None else amount * (1 + _num(vat) / 100)
    for side, total_name in (("excl_vat", "excl"), ("incl_vat", "incl")):
        value = excl if total_name == "excl" else incl
        low = (tariff.get("min_price") or {}).get(side)
        high = (tariff.get("max_price") or {}).get(side)
        if low is not None and value < _num(low):
            value = _num(low)
        if high is not None and value > _num(high):
            value = _num(high)
        if total_name == "excl":
            excl = value
        else:
            incl = value
    places = _MINOR.get(cdr["currency"], 2)
    return Reprice(_round(excl, places), _round(incl, places))


def check_total(cdr: dict[str, Any], timezone: str = "UTC") -> list[str]:
    """What disagrees between the CDR's total_cost and its re-priced total."""
    try:
        priced = reprice(cdr, timezone)
    except UnsupportedTariff as exc:
        return [f"CDR {cdr.get('id')}: cannot be re-priced: {exc}"]
    total = cdr["total_cost"]
    got = Reprice(Decimal(str(total["excl_vat"])), Decimal(str(total.get("incl_vat"))))
    remark = cdr.get("remark") or ""
    if cdr.get("credit"):  # a Credit CDR: the negated total of a CDR of this session
        if not cdr.get("credit_reference_id"):
            return [f"CDR {cdr.get('id')}: a Credit CDR without credit_reference_id"]
        if got.incl_vat > 0 or -got.incl_vat > priced.incl_vat:
            return [f"CDR {cdr.get('id')}: Credit CDR total {got} is not between minus the "
                    f"price {priced} and 0"]
        return []
    if remark.startswith(REFUNDED):
        if got.incl_vat < 0 or got.incl_vat > priced.incl_vat:
            return [f"CDR {cdr.get('id')}: refunded total {got} not between 0 and the "
                    f"price {priced}"]
        return []
    if remark == NOTHING_CHARGED:
        if got.excl_vat != 0 or got.incl_vat != 0:
            return [f"CDR {cdr.get('id')}: no energy delivered but total_cost {total}"]
        return []
    if remark == CAPPED:
        if got.incl_vat > priced.incl_vat:
            return [f"CDR {cdr.get('id')}: capped total {got} above the price {priced}"]
        return []
    if got != priced:
        return [f"CDR {cdr.get('id')}: total_cost excl {got.excl_vat} incl {got.incl_vat}, "
                f"re-priced excl {priced.excl_vat} incl {priced.incl_vat}"]
    return []
