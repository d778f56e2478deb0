"""The ZVT series of bench/bench_taps.py runs: two taps at `evterm sim zvt` (its own
process), each a new pre-authorisation decided by the terminal and reversed before the
next, the figures in the JSON beside the built-in path's keys. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_zvt_tap_series_reports_every_tap() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_taps.py"), "--series", "zvt",
         "--taps", "2"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["benchmark"] == "taps" and result["taps_per_series"] == 2
    assert "emv_with_preauthorisation" not in result  # --series zvt only
    series = result["zvt_with_preauthorisation"]["default_speed"]
    assert series["simulator_slow_s"] == 0.0
    assert series["outcomes"] == {"accepted": 2} and series["holds_reversed"] == 2
    for figure in ("present_to_decision_ms", "present_to_card_ms", "decision_ms"):
        assert series[figure]["n"] == 2, figure
        assert 0 < series[figure]["p50"] <= series[figure]["max"], figure
    # the whole path contains the daemon's own part and the card's arrival
    assert series["present_to_decision_ms"]["max"] > series["decision_ms"]["p50"]
    assert series["present_to_decision_ms"]["max"] > series["present_to_card_ms"]["p50"]
    assert "slow" not in result["zvt_with_preauthorisation"]


def test_bad_arguments_are_named() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_taps.py"), "--taps", "0"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert "--taps: 0 is not a count of 1 or more" in done.stderr
    assert "Traceback" not in done.stderr
