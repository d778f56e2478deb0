"""`evterm price`: price a session file with a tariff file and print the result as JSON.

    evterm price --tariff TARIFF.json --session SESSION.json [--tz ZONE]

Exit code 0 with the JSON on stdout; 2 with a message on stderr when a file cannot be
read or the tariff, session or time zone is invalid. Every amount and quantity in the
output is a decimal string. The station's time zone defaults to UTC.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from terminal.kernel.money import plain
from terminal.pricing.engine import price_session, station_zone
from terminal.pricing.errors import PricingInputError
from terminal.pricing.parse import parse_tariff
from terminal.pricing.result import PricingResult
from terminal.pricing.session import parse_session

EXIT_OK = 0
EXIT_INVALID = 2


def register(subparsers: Any) -> None:
    """Add the `price` subcommand to an argparse sub-parsers object."""
    parser = subparsers.add_parser(
        "price",
        help="price a charging session with an OCPI 2.2.1 tariff",
        description="Price a charging session exactly with an OCPI 2.2.1 tariff; prints JSON.",
    )
    parser.add_argument(
        "--tariff", required=True, metavar="TARIFF.json", help="OCPI 2.2.1 Tariff object"
    )
    parser.add_argument(
        "--session",
        required=True,
        metavar="SESSION.json",
        help="start, stop, charging_threshold_w, samples",
    )
    parser.add_argument(
        "--tz", default="UTC", metavar="ZONE", help="station IANA time zone (default: UTC)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `evterm price`; returns the exit code."""
    return price_and_print(args.tz, Source("tariff", args.tariff), Source("session", args.session))


@dataclass(frozen=True)
class Source:
    """An input of `evterm price`: its kind ("tariff", "session"), its file name and,
    when given, its bytes (then the file is not read)."""

    kind: str
    name: str
    data: bytes | None = None

    def read(self) -> bytes:
        return self.data if self.data is not None else Path(self.name).read_bytes()


def price_and_print(
    tz: str, tariff: Source, session: Source, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Price `session` with `tariff` in zone `tz` and print as `evterm price` does: the
    JSON document on `out` and exit 0, or one line naming the problem on `err` and 2."""
    try:
        zone = station_zone(tz)
        parsed_tariff = _load(tariff, parse_tariff)
        parsed_session = _load(session, parse_session)
        result = price_session(parsed_tariff, parsed_session, zone)
    except (_InputError, PricingInputError) as exc:
        print(f"evterm price: {exc}", file=err or sys.stderr)
        return EXIT_INVALID
    stream = out or sys.stdout
    json.dump(result_to_json(result), stream, indent=2)
    stream.write("\n")
    return EXIT_OK


class _InputError(Exception):
    pass


def _load(source: Source, parser: Callable[[bytes], Any]) -> Any:
    try:
        data = source.read()
    except OSError as exc:
        raise _InputError(
            f"cannot read {source.kind} file {source.name}: {exc.strerror or exc}"
        ) from None
    try:
        return parser(data)
    except PricingInputError as exc:
        raise _InputError(f"invalid {source.kind} file {source.name}: {exc}") from None


def _text(value: Decimal) -> str:
    """A decimal as a JSON string without exponent."""
    return plain(value)


def result_to_json(result: PricingResult) -> dict[str, Any]:
    """The JSON document `evterm price` prints."""
    return {
        "currency": result.currency,
        "total_cost": {
            "excl_vat": _text(result.total.excl_vat),
            "incl_vat": _text(result.total.incl_vat),
        },
        "price_limit": result.price_limit,
        "start": result.start.isoformat(),
        "stop": result.stop.isoformat(),
        "total_energy_wh": _text(result.total_energy_wh),
        "charging_time_s": _text(result.charging_time_s),
        "parking_time_s": _text(result.parking_time_s),
        "dimensions": {
            d.dimension.value: {
                "billed_quantity": _text(d.billed_quantity),
                "unit": d.unit,
                "excl_vat": _text(d.excl_vat),
                "incl_vat": _text(d.incl_vat),
            }
            for d in result.dimensions
        },
        "lines": [
            {
                "dimension": line.dimension.value,
                "element": line.element_index,
                "unit_price_excl_vat": _text(line.unit_price_excl_vat),
                "vat_percent": None if line.vat_percent is None else _text(line.vat_percent),
                "billed_quantity": _text(line.billed_quantity),
                "unit": line.unit,
                "excl_vat": _text(line.excl_vat),
                "incl_vat": _text(line.incl_vat),
            }
            for line in result.lines
        ],
        "periods": [
            {
                "start": period.start.isoformat(),
                "end": period.end.isoformat(),
                "duration_s": _text(period.duration_s),
                "energy_wh": _text(period.energy_wh),
                "charging": period.charging,
                "elements": {
                    "ENERGY": period.active.energy,
                    "TIME": period.active.time,
                    "PARKING_TIME": period.active.parking_time,
                    "FLAT": period.active.flat,
                },
            }
            for period in result.periods
        ],
    }
