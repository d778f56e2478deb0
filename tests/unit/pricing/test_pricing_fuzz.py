"""Seeded, bounded fuzz of `evterm price` through its run function, in process.

10,000 inputs: tariffs and sessions built at random and then mutated (a field replaced
by a hostile JSON value: huge, tiny, negative, NaN, Infinity, a 5,000-digit integer,
deep nesting, far dates, wrong types; keys dropped or added; the text truncated or
made invalid UTF-8), with random station zones. Every input either prices (exit 0,
a JSON document on stdout) or is refused (exit 2, one line "evterm price: ..." on
stderr); any exception is a failure and names the input's seed.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from terminal.pricing import cli
from tests.unit.pricing.test_pricing_cli import TARIFF as CLI_TARIFF

SEED = 16
INPUTS = 10_000
REPO = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((REPO / "examples/tariffs").glob("*.json"))

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
         "Pacific/Chatham", "Mars/Olympus", "", "../../etc/passwd", "Europe/Berlin\x00"]
HOSTILE = [
    "1e308", "-1e308", "1e999999999", "-1e999999999", "1e-999999999", "1e26", "-1", "-0.0",
    "0", "NaN", "Infinity", "-Infinity", "1e-300", "9" * 5000, "9" * 45, "0.1234567",
    "123456789012.5", "true", "null", '""', '"x"', "[]", "{}", '"NaN"', '"1e308"',
    '"9999-12-31T23:59:59Z"', '"0001-01-01T00:00:00+00:00"', '"2025-03-30T02:30:00"',
    '"2025-03-30T02:30:00+01:00"', '"2199-12-31T23:59:59Z"', '"1999-12-31T23:59:59Z"',
    '"24:00"', '"23:59"', '"00:00"', '"MONDAY"', '"9999-12-31"', '"0001-01-01"',
    "[" * 60 + "]" * 60, "[" * 3000 + "]" * 3000, '"\\ud800"', '"' + "x" * 10_000 + '"',
    "1.5", "3e5", "86400000", "4294967296", "18446744073709551617", '["MONDAY", 7]',
    '{"excl_vat": 1e308}', '{"excl_vat": -1, "incl_vat": 2}', '[{"type": "FLAT"}]',
]
WILD_NUMBERS = [1e308, -1e308, -1.0, float("nan"), float("inf"), -float("inf"), 1e-300,
                10**30, 2.5e9, 1e26, 5e-7, 0.1 + 0.2]
WILD_TIMES = ["9999-12-31T23:59:59+00:00", "0001-01-01T00:00:00+00:00", "2199-12-31T23:59:59Z",
              "2025-03-30T02:30:00+01:00", "2025-03-30T02:30:00", "2025-13-01T00:00:00Z"]
DAYS = ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY"]
ANCHORS = [
    datetime(2025, 3, 30, 0, 30, tzinfo=UTC),  # Berlin spring forward
    datetime(2025, 10, 25, 23, 0, tzinfo=UTC),  # Berlin fall back
    datetime(2025, 1, 6, 16, 30, tzinfo=UTC),
    datetime(2000, 1, 1, tzinfo=UTC),
    datetime(2199, 12, 20, tzinfo=UTC),
    datetime(2038, 1, 19, 3, 14, tzinfo=UTC),
]
GAPS_S = [0, 1, 1, 30, 60, 900, 3600, 4 * 3600, 86400, 3 * 86400, 30 * 86400, 32 * 86400]


def _hhmm(rng: random.Random) -> str:
    return f"{rng.randrange(24):02d}:{rng.choice([0, 0, 15, 30, 59]):02d}"


def _restrictions(rng: random.Random) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if rng.random() < 0.4:
        found["start_time"], found["end_time"] = _hhmm(rng), _hhmm(rng)
    if rng.random() < 0.2:
        found["day_of_week"] = rng.sample(DAYS, rng.randint(1, 6))
    if rng.random() < 0.15:
        year, month, day = rng.randint(2000, 2040), rng.randint(1, 9), rng.randint(10, 19)
        found["start_date"] = f"{year}-0{month}-{day}"
    if rng.random() < 0.2:
        found["min_kwh" if rng.random() < 0.5 else "max_kwh"] = rng.choice([1, 10, 40, 0.5])
    if rng.random() < 0.2:
        found["min_power" if rng.random() < 0.5 else "max_power"] = rng.choice([3.7, 11, 50])
    if rng.random() < 0.1:
        found["min_current"] = rng.choice([16, 100])
    if rng.random() < 0.2:
        found["min_duration" if rng.random() < 0.5 else "max_duration"] = rng.choice(
            [60, 600, 3600, 14400])
    return found


def _random_tariff(rng: random.Random) -> dict[str, Any]:
    elements = []
    for _ in range(rng.randint(1, 4)):
        kinds = rng.sample(["ENERGY", "TIME", "PARKING_TIME", "FLAT"], rng.randint(1, 3))
        components = [{"type": kind, "price": rng.choice([0, 0.19, 0.3333, 2.4, 7.5, 1000]),
                       "vat": rng.choice([0, 7, 19, 5.5]),
                       "step_size": rng.choice([1, 1, 60, 300, 1000])} for kind in kinds]
        element: dict[str, Any] = {"price_components": components}
        restrictions = _restrictions(rng)
        if restrictions:
            element["restrictions"] = restrictions
        elements.append(element)
    tariff: dict[str, Any] = {"currency": rng.choice(["EUR", "JPY", "KWD", "USD"]),
                              "elements": elements}
    if rng.random() < 0.2:
        tariff["min_price"] = {"excl_vat": 2, "incl_vat": 2.5}
    if rng.random() < 0.2:
        tariff["max_price"] = {"excl_vat": 20, "incl_vat": 23.8}
    return tariff


def _base_tariffs() -> list[dict[str, Any]]:
    return [CLI_TARIFF] + [json.loads(path.read_text()) for path in EXAMPLES]


def _random_session(rng: random.Random) -> dict[str, Any]:
    start = rng.choice(ANCHORS) + timedelta(seconds=rng.randrange(86400))
    t, energy = start, 0
    samples = []
    for i in range(rng.randint(1, 8)):
        if i:
            t += timedelta(seconds=rng.choice(GAPS_S))
            energy += rng.choice([0, 1, 500, 11_000, 40_000])
        sample: dict[str, Any] = {"t": t.isoformat(), "energy_wh": energy,
                                  "power_w": rng.choice([0, 50, 3700, 11000, 50000, 150000])}
        if rng.random() < 0.04:  # a hostile value where it hurts most
            sample["energy_wh"] = rng.choice(WILD_NUMBERS)
        if rng.random() < 0.02:
            sample["power_w"] = rng.choice(WILD_NUMBERS)
        if rng.random() < 0.02:
            sample["t"] = rng.choice(WILD_TIMES)
        if rng.random() < 0.7:
            sample["current_a"] = rng.choice([0, 16, 120, 400])
        samples.append(sample)
    stop = (t + timedelta(seconds=rng.choice(GAPS_S))).isoformat()
    if rng.random() < 0.03:
        stop = rng.choice(WILD_TIMES)
    session: dict[str, Any] = {"start": start.isoformat(), "stop": stop, "samples": samples}
    if rng.random() < 0.3:
        session["charging_threshold_w"] = rng.choice([0, 100, 1000])
    return session


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON tree (the root excluded)."""
    found = []
    items = node.items() if isinstance(node, dict) else (
        enumerate(node) if isinstance(node, list) else ())
    for key, child in items:
        found.append((*path, key))
        found.extend(_paths(child, (*path, key)))
    return found


def _mutate(rng: random.Random, document: dict[str, Any]) -> bytes:
    """The document as JSON bytes with a few hostile changes."""
    tree = json.loads(json.dumps(document))
    raw: dict[str, str] = {}
    for n in range(rng.choice([0, 1, 1, 1, 2, 3])):
        paths = _paths(tree)
        if not paths:
            break
        *parents, key = rng.choice(paths)
        parent = tree
        for step in parents:
            parent = parent[step]
        action = rng.random()
        if action < 0.7:
            marker = f"@@raw{n}@@"
            raw[marker] = rng.choice(HOSTILE)
            parent[key] = marker
        elif action < 0.85 and isinstance(parent, dict):
            del parent[key]
        elif isinstance(parent, dict):
            parent[rng.choice(["extra", "energy_wh", "stop", "price", "x" * 300])] = 1
    text = json.dumps(tree)
    for marker, value in raw.items():
        text = text.replace(json.dumps(marker), value)
    data = text.encode()
    if rng.random() < 0.03:
        data = data[: rng.randrange(len(data) + 1)]
    if rng.random() < 0.02:
        at = rng.randrange(len(data) + 1)
        data = data[:at] + rng.choice([b"\xff", b"\xc3", b"\x00", b"\xed\xa0\x80"]) + data[at:]
    return data


def _run(tariff: bytes, session: bytes, zone: str) -> tuple[int, str, str]:
    """`evterm price` on in-memory files, through the function its run() calls."""
    out, err = io.StringIO(), io.StringIO()
    code = cli.price_and_print(zone, cli.Source("tariff", "T.json", tariff),
                               cli.Source("session", "S.json", session), out, err)
    return code, out.getvalue(), err.getvalue()


def test_price_fuzz_10000_inputs_no_traceback() -> None:
    bases = _base_tariffs()
    outcomes = {0: 0, 2: 0}
    for case in range(INPUTS):
        rng = random.Random(SEED * 1_000_003 + case)
        make: Callable[[random.Random], dict[str, Any]] = rng.choice(
            [_random_tariff, _random_tariff, lambda r: r.choice(bases)])
        tariff = make(rng)
        session = _random_session(rng)
        mutated_tariff, mutated_session = rng.random() < 0.35, rng.random() < 0.35
        tariff_bytes = _mutate(rng, tariff) if mutated_tariff else json.dumps(tariff).encode()
        session_bytes = _mutate(rng, session) if mutated_session else json.dumps(session).encode()
        zone = rng.choice(ZONES) if rng.random() < 0.2 else "Europe/Berlin"
        try:
            code, out, err = _run(tariff_bytes, session_bytes, zone)
        except Exception as exc:
            raise AssertionError(f"case {case} (seed {SEED}) raised {exc!r}\n"
                                 f"tariff: {tariff_bytes[:400]!r}\n"
                                 f"session: {session_bytes[:400]!r}\nzone: {zone!r}") from exc
        assert code in outcomes, (case, code)
        outcomes[code] += 1
        if code == 0:
            document = json.loads(out)
            assert document["currency"] and err == "", case
        else:
            assert out == "" and err.startswith("evterm price: "), (case, err)
            assert err.count("\n") == 1 and len(err) < 1000, (case, err[:300])
    assert sum(outcomes.values()) == INPUTS
    assert outcomes[0] > INPUTS // 10 and outcomes[2] > INPUTS // 3, outcomes  # both exercised
