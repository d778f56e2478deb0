"""`evterm price` bounds its input: values, times and session length outside the
documented limits exit 2 with one line naming the field (never a traceback, never
minutes of calendar walking), and a tariff's amounts stay within MAX_AMOUNT."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from terminal.pricing import TariffError, parse_tariff
from terminal.pricing.session import parse_session
from tests.unit.pricing.test_pricing_cli import SESSION, TARIFF, _run

MAX_SESSION_S = 31 * 24 * 3600  # documented in docs/pricing.md


def _session(**changes: Any) -> dict[str, Any]:
    session = copy.deepcopy(SESSION)
    for path, value in changes.items():
        target: Any = session
        keys = path.split("__")
        for key in keys[:-1]:
            target = target[int(key)] if key.isdigit() else target[key]
        last = keys[-1]
        target[int(last) if last.isdigit() else last] = value
    return session


def _raw(session: dict[str, Any], token: str, text: str) -> str:
    """The session as JSON text with the string `token` replaced by raw JSON `text`."""
    return json.dumps(session).replace(json.dumps(token), text)


HUGE = "1e308"
CASES = [
    ("energy 1e308", _raw(_session(samples__1__energy_wh="X"), "X", HUGE),
     r"samples\[1\]\.energy_wh: invalid value 1E\+308"),
    ("energy 1e999999999", _raw(_session(samples__1__energy_wh="X"), "X", "1e999999999"),
     r"samples\[1\]\.energy_wh"),
    ("energy 1e-300", _raw(_session(samples__1__energy_wh="X"), "X", "1e-300"),
     r"samples\[1\]\.energy_wh: .*at most 6 decimals"),
    ("energy NaN", _raw(_session(samples__1__energy_wh="X"), "X", "NaN"),
     r"<json>: .*no NaN or Infinity"),
    ("power 1e26", _raw(_session(samples__0__power_w="X"), "X", "1e26"),
     r"samples\[0\]\.power_w"),
    ("current -1", _session(samples__0__current_a=-1), r"samples\[0\]\.current_a"),
    ("threshold huge", _raw(_session(charging_threshold_w="X"), "X", "1e400"),
     r"charging_threshold_w"),
    ("integer of 5000 digits", _raw(_session(samples__1__energy_wh="X"), "X", "9" * 5000),
     r"invalid session file .*(<json>|energy_wh)"),
    ("stop 9999-12-31", _session(stop="9999-12-31T23:59:59Z"), r"stop: .*before 2200-01-01"),
    ("start year 1", _session(start="0001-01-01T00:00:00Z"), r"start: .*from 2000-01-01"),
    ("32 days", _session(stop="2025-02-07T17:50:00Z"), r"stop: .*at most 31 days after start"),
    ("nested", "[" * 100_000 + "]" * 100_000, r"<json>"),
]


@pytest.mark.parametrize(("session", "message"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_out_of_bounds_sessions_exit_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], session: Any, message: str
) -> None:
    assert _run(tmp_path, TARIFF, session) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("evterm price: invalid session file ")
    assert captured.err.count("\n") == 1
    assert re.search(message, captured.err), captured.err


def test_a_session_of_31_days_with_a_long_gap_prices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = _session(stop="2025-02-06T16:30:00Z",
                       samples__1__t="2025-02-05T16:30:00Z")
    assert parse_session(session).stop - parse_session(session).start == \
        __import__("datetime").timedelta(seconds=MAX_SESSION_S)
    assert _run(tmp_path, TARIFF, session) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["parking_time_s"] == str(24 * 3600)


@pytest.mark.parametrize(("where", "text", "path"), [
    ("price", "1e999999999", "elements[0].price_components[0].price"),
    ("price", "1e26", "elements[0].price_components[0].price"),
    ("price", "0.0000001", "elements[0].price_components[0].price"),
    ("step_size", "1" + "0" * 30, "elements[0].price_components[0].step_size"),
    ("vat", "1e-99", "elements[0].price_components[0].vat"),
    ("min_price", '{"excl_vat": 1e26}', "min_price.excl_vat"),
    ("max_price", '{"excl_vat": 1, "incl_vat": 1e999999999}', "max_price.incl_vat"),
    ("min_kwh", "1e400", "elements[0].restrictions.min_kwh"),
    ("min_duration", "9" * 30, "elements[0].restrictions.min_duration"),
])
def test_tariff_numbers_are_bounded(where: str, text: str, path: str) -> None:
    tariff = copy.deepcopy(TARIFF)
    if where in ("min_price", "max_price"):
        tariff[where] = "X"
    elif where in ("min_kwh", "min_duration"):
        tariff["elements"][0]["restrictions"][where] = "X"
    else:
        tariff["elements"][0]["price_components"][0][where] = "X"
    with pytest.raises(TariffError) as raised:
        parse_tariff(json.dumps(tariff).replace('"X"', text))
    assert raised.value.path == path


def test_a_huge_python_integer_in_a_decoded_tariff_is_refused() -> None:
    tariff = copy.deepcopy(TARIFF)
    tariff["elements"][0]["price_components"][0]["step_size"] = 10**5000
    with pytest.raises(TariffError, match="step_size: invalid value \"a huge integer\""):
        parse_tariff(tariff)
    tariff["elements"][0]["price_components"][0]["step_size"] = 1
    tariff["elements"][0]["price_components"][0]["price"] = 10**5000
    with pytest.raises(TariffError, match="price: invalid value \"a huge integer\""):
        parse_tariff(tariff)


@pytest.mark.parametrize("energy", ["1e308", "1e-300", "1e40"])
def test_the_engine_refuses_sample_values_beyond_its_exact_digits(energy: str) -> None:
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from terminal.pricing import RunningPricer, Sample, SessionInputError

    pricer = RunningPricer(parse_tariff(TARIFF), "Europe/Berlin")
    start = datetime(2025, 1, 6, 16, 30, tzinfo=UTC)
    pricer.add_sample(Sample.of(start, 0, 11000))
    with pytest.raises(SessionInputError, match=r"samples\[1\]\.energy_wh"):
        pricer.add_sample(Sample(start + timedelta(hours=1), Decimal(energy), Decimal(0),
                                 Decimal(0)))
    assert pricer.sample_count == 1
