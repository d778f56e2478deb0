"""Marks each test by the folder it lives in: tests/unit, tests/integration, tests/ui;
and orders the collection longest first, so pytest-xdist's workers finish together.

Ordering: the tests in SLOW_FIRST (node id prefixes, the longest first, from
`pytest -n 4 --durations`) run first, each followed by SPACING other tests, then the
other integration and UI tests (each starts real processes), then the unit tests;
otherwise the collection's own order. With `--maxschedchunk=1` (setup.cfg) xdist keeps
one test queued per worker besides the one running and hands out the next from the
front of that list as a worker finishes one: a long test is not left queued behind a
worker's backlog while another worker idles at the end of the run, and the spacing
makes it unlikely to be queued behind another long one.
"""

from pathlib import Path

import pytest

_TESTS = Path(__file__).parent

# seconds (call + set-up) measured with -n 2 on a loaded 2-core machine, 2026-12-03
SLOW_FIRST = (
    "tests/integration/test_recovery.py::test_crash_loop_",  # 122 s
    "tests/integration/test_wheel.py::test_headless_demo_",  # 110 s (wheel, venv, demo)
    "tests/integration/test_signed_recovery.py::test_crash_loop_",  # 78 s
    "tests/ui/test_ui_display_modes.py::test_every_screen_",  # 4 x 70 s
    "tests/ui/test_ui_layout.py::test_every_screen_",  # 2 x 55 s
    "tests/integration/test_update_board.py::",  # 5 x 20-40 s (release venvs, restarts)
    "tests/unit/test_config_fuzz.py::test_5000_",  # 51 s
    "tests/integration/test_tuf_release.py::test_full_wheelhouse_",  # 46 s (pip wheel)
    "tests/ui/test_ui_timeouts.py::",  # 2 x 50 s, an unscaled clock: mostly waiting
    "tests/integration/test_install_script.py::test_install_script_",  # 35 s
    "tests/ui/test_ui_technician.py::",  # 35 s
    "tests/integration/test_card_sessions.py::test_no_card_number_",  # 30 s
    "tests/unit/pricing/test_pricing_thinning.py::test_the_kept_samples_",  # 37 s
    "tests/unit/pricing/test_pricing_fuzz.py::test_price_fuzz_",  # 31 s
    "tests/integration/test_zvt_crash.py::",  # 25 s
    "tests/ui/test_ui_scenarios.py::",  # 10 x 10-35 s
    "tests/ui/test_ui_display_modes.py::",  # 15 s
    "tests/integration/test_daemon_session.py::test_full_session_",  # 15 s
)


def _kind(item: pytest.Item) -> str | None:
    try:
        return Path(item.fspath).relative_to(_TESTS).parts[0]
    except ValueError:
        return None


SPACING = 3  # other tests after each one of SLOW_FIRST


def _rank(item: pytest.Item) -> int:
    for rank, prefix in enumerate(SLOW_FIRST):
        if item.nodeid.startswith(prefix):
            return rank
    return len(SLOW_FIRST) + (1 if _kind(item) == "unit" else 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        kind = _kind(item)
        if kind in ("unit", "integration", "ui"):
            item.add_marker(getattr(pytest.mark, kind))
    ranked = sorted(items, key=_rank)  # stable: the collection's order within a rank
    slow = [item for item in ranked if _rank(item) < len(SLOW_FIRST)]
    rest = ranked[len(slow):]
    ordered: list[pytest.Item] = []
    for item in slow:
        ordered.append(item)
        ordered += rest[:SPACING]
        del rest[:SPACING]
    items[:] = ordered + rest
