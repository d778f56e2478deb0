"""`evterm price` through its run function (no subprocess)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from terminal.pricing import cli

TARIFF = {
    "currency": "EUR",
    "elements": [
        {
            "price_components": [{"type": "ENERGY", "price": 0.30, "vat": 20, "step_size": 1}],
            "restrictions": {"start_time": "18:00", "end_time": "22:00"},
        },
        {
            "price_components": [
                {"type": "ENERGY", "price": 0.20, "vat": 20, "step_size": 1},
                {"type": "FLAT", "price": 1.00, "step_size": 0},
                {"type": "PARKING_TIME", "price": 6.00, "vat": 20, "step_size": 300},
            ]
        },
    ],
}
SESSION = {
    "start": "2025-01-06T16:30:00Z",
    "stop": "2025-01-06T17:50:00Z",
    "charging_threshold_w": 0,
    "samples": [
        {"t": "2025-01-06T16:30:00Z", "energy_wh": 0, "power_w": 11000, "current_a": 16},
        {"t": "2025-01-06T17:30:00Z", "energy_wh": 11000, "power_w": 0, "current_a": 0},
    ],
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evterm")
    cli.register(parser.add_subparsers())
    return parser


def _run(tmp_path: Path, tariff: Any, session: Any, *extra: str) -> int:
    tariff_path, session_path = tmp_path / "tariff.json", tmp_path / "session.json"
    for path, content in ((tariff_path, tariff), (session_path, session)):
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    args = _parser().parse_args(
        ["price", "--tariff", str(tariff_path), "--session", str(session_path), *extra]
    )
    return args.func(args)


def test_prices_a_session_exactly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Berlin: 17:30-18:30 local charging, 11000 Wh: 5500 Wh x 0.20 + 5500 Wh x 0.30 =
    # 2.75 (incl 3.30). Parking 18:30-18:50 local (20 min, element 1: 6.00/h, step 5 min)
    # = 2.00 (incl 2.40). FLAT 1.00 once. Totals 5.75 / 6.70.
    assert _run(tmp_path, TARIFF, SESSION, "--tz", "Europe/Berlin") == 0
    out = json.loads(capsys.readouterr().out)
    assert out == {
        "currency": "EUR",
        "total_cost": {"excl_vat": "5.75", "incl_vat": "6.70"},
        "price_limit": None,
        "start": "2025-01-06T16:30:00+00:00",
        "stop": "2025-01-06T17:50:00+00:00",
        "total_energy_wh": "11000",
        "charging_time_s": "3600",
        "parking_time_s": "1200",
        "dimensions": {
            "ENERGY": {
                "billed_quantity": "11.000",
                "unit": "kWh",
                "excl_vat": "2.75",
                "incl_vat": "3.30",
            },
            "TIME": {
                "billed_quantity": "0.00",
                "unit": "h",
                "excl_vat": "0.00",
                "incl_vat": "0.00",
            },
            "PARKING_TIME": {
                "billed_quantity": "0.333333",
                "unit": "h",
                "excl_vat": "2.00",
                "incl_vat": "2.40",
            },
            "FLAT": {
                "billed_quantity": "1",
                "unit": "session",
                "excl_vat": "1.00",
                "incl_vat": "1.00",
            },
        },
        "lines": [
            {
                "dimension": "ENERGY",
                "element": 0,
                "unit_price_excl_vat": "0.3",
                "vat_percent": "20",
                "billed_quantity": "5.500",
                "unit": "kWh",
                "excl_vat": "1.65",
                "incl_vat": "1.98",
            },
            {
                "dimension": "ENERGY",
                "element": 1,
                "unit_price_excl_vat": "0.2",
                "vat_percent": "20",
                "billed_quantity": "5.500",
                "unit": "kWh",
                "excl_vat": "1.10",
                "incl_vat": "1.32",
            },
            {
                "dimension": "PARKING_TIME",
                "element": 1,
                "unit_price_excl_vat": "6.0",
                "vat_percent": "20",
                "billed_quantity": "0.333333",
                "unit": "h",
                "excl_vat": "2.00",
                "incl_vat": "2.40",
            },
            {
                "dimension": "FLAT",
                "element": 1,
                "unit_price_excl_vat": "1.0",
                "vat_percent": None,
                "billed_quantity": "1",
                "unit": "session",
                "excl_vat": "1.00",
                "incl_vat": "1.00",
            },
        ],
        "periods": [
            {
                "start": "2025-01-06T16:30:00+00:00",
                "end": "2025-01-06T17:00:00+00:00",
                "duration_s": "1800",
                "energy_wh": "5500.000",
                "charging": True,
                "elements": {"ENERGY": 1, "TIME": None, "PARKING_TIME": 1, "FLAT": 1},
            },
            {
                "start": "2025-01-06T17:00:00+00:00",
                "end": "2025-01-06T17:30:00+00:00",
                "duration_s": "1800",
                "energy_wh": "5500.000",
                "charging": True,
                "elements": {"ENERGY": 0, "TIME": None, "PARKING_TIME": 1, "FLAT": 1},
            },
            {
                "start": "2025-01-06T17:30:00+00:00",
                "end": "2025-01-06T17:50:00+00:00",
                "duration_s": "1200",
                "energy_wh": "0.000",
                "charging": False,
                "elements": {"ENERGY": 0, "TIME": None, "PARKING_TIME": 1, "FLAT": 1},
            },
        ],
    }


def test_tz_defaults_to_utc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # In UTC the whole session is before 18:00: 11000 Wh x 0.20 = 2.20.
    assert _run(tmp_path, TARIFF, SESSION) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dimensions"]["ENERGY"]["excl_vat"] == "2.20"


BAD_SESSION = {**SESSION, "samples": [SESSION["samples"][1], SESSION["samples"][0]]}
BAD_TARIFF = {**TARIFF, "currency": "EURO"}


@pytest.mark.parametrize(
    ("tariff", "session", "extra", "message"),
    [
        (
            BAD_TARIFF,
            SESSION,
            [],
            'invalid tariff file .*: currency: invalid value "EURO"; allowed: an ISO 4217',
        ),
        ("{not json", SESSION, [], "invalid tariff file .*<json>: .*valid JSON"),
        (TARIFF, BAD_SESSION, [], r"invalid session file .*samples\[0\].t"),
        (TARIFF, SESSION, ["--tz", "Europe/Atlantis"], 'tz: invalid value "Europe/Atlantis"'),
        (
            {**TARIFF, "end_date_time": "2025-01-01T00:00:00Z"},
            SESSION,
            [],
            "end_date_time: .*expired",
        ),
    ],
    ids=["bad tariff field", "bad tariff json", "bad session", "bad zone", "tariff expired"],
)
def test_invalid_input_exits_2_with_message(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tariff: Any,
    session: Any,
    extra: list[str],
    message: str,
) -> None:
    assert _run(tmp_path, tariff, session, *extra) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("evterm price: ")
    assert __import__("re").search(message, captured.err), captured.err


def test_missing_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parser().parse_args(
        ["price", "--tariff", str(tmp_path / "nope.json"), "--session", "x.json"]
    )
    assert cli.run(args) == 2
    assert "cannot read tariff file" in capsys.readouterr().err


def test_register_sets_run_as_func() -> None:
    args = _parser().parse_args(["price", "--tariff", "t.json", "--session", "s.json"])
    assert args.func is cli.run
    assert args.tz == "UTC"
