"""Builders for tariffs and sessions in the pricing tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from terminal.pricing import PricingResult, Sample, SessionInput, parse_tariff, price_session
from terminal.pricing.model import Tariff

D = Decimal


_NUMERIC = {
    "min_kwh",
    "max_kwh",
    "min_power",
    "max_power",
    "min_current",
    "max_current",
    "excl_vat",
    "incl_vat",
}


def num(value: Any) -> Any:
    """Numeric text as Decimal (as json.loads with parse_float=Decimal gives it)."""
    return D(value) if isinstance(value, str) else value


def comp(kind: str, price: Any, vat: Any = None, step: int = 1) -> dict[str, Any]:
    """A PriceComponent dict; numeric strings become Decimal."""
    found: dict[str, Any] = {"type": kind, "price": num(price), "step_size": step}
    if vat is not None:
        found["vat"] = num(vat)
    return found


def element(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    """A TariffElement dict; keyword arguments are restrictions."""
    found: dict[str, Any] = {"price_components": list(components)}
    if restrictions:
        found["restrictions"] = {k: num(v) if k in _NUMERIC else v for k, v in restrictions.items()}
    return found


def tariff(*elements: dict[str, Any], currency: str = "EUR", **fields: Any) -> Tariff:
    """A parsed Tariff."""
    for key in ("min_price", "max_price"):
        if isinstance(fields.get(key), dict):
            fields[key] = {k: num(v) for k, v in fields[key].items()}
    return parse_tariff({"currency": currency, "elements": list(elements), **fields})


def at(text: str) -> datetime:
    """An aware datetime from ISO text (Z allowed)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def session(
    start: str | datetime,
    points: list[tuple[float, Any, Any] | tuple[float, Any, Any, Any]],
    stop_after_s: float | None = None,
    threshold_w: Any = 0,
) -> SessionInput:
    """Samples from (s after start, energy Wh, power W[, current A]); stop defaults to the last."""
    begin = at(start) if isinstance(start, str) else start
    samples = tuple(
        Sample.of(begin + timedelta(seconds=p[0]), p[1], p[2], p[3] if len(p) > 3 else 0)
        for p in points
    )
    stop = samples[-1].t if stop_after_s is None else begin + timedelta(seconds=stop_after_s)
    return SessionInput(begin, stop, samples, D(str(threshold_w)))


def price(t: Tariff, s: SessionInput, tz: str = "UTC") -> PricingResult:
    """price_session shorthand."""
    return price_session(t, s, tz)
