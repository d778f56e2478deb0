"""Tariff engine: OCPI 2.2.1 tariffs priced exactly, running cost, price display texts.

The single source of every amount the terminal shows or sends. Data flow:
parse (tariff JSON -> model) -> engine (samples -> periods -> exact amounts) ->
result (rounded, typed) -> display / cli.
"""

from terminal.pricing.display import DisplayLine, tariff_lines, tariff_texts
from terminal.pricing.engine import RunningPricer, check_validity, price_session, station_zone
from terminal.pricing.errors import (
    PricingInputError,
    SessionInputError,
    TariffError,
    TariffNotApplicableError,
)
from terminal.pricing.model import Dimension, Tariff
from terminal.pricing.parse import load_tariff, parse_tariff
from terminal.pricing.result import PricingResult, RunningCost
from terminal.pricing.session import Sample, SessionInput, load_session, parse_session

__all__ = [
    "Dimension",
    "DisplayLine",
    "PricingInputError",
    "PricingResult",
    "RunningCost",
    "RunningPricer",
    "Sample",
    "SessionInput",
    "SessionInputError",
    "Tariff",
    "TariffError",
    "TariffNotApplicableError",
    "check_validity",
    "load_session",
    "load_tariff",
    "parse_session",
    "parse_tariff",
    "price_session",
    "station_zone",
    "tariff_lines",
    "tariff_texts",
]
