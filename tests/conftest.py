"""Marks each test by the folder it lives in: tests/unit, tests/integration, tests/ui."""

from pathlib import Path

import pytest

_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            kind = Path(item.fspath).relative_to(_TESTS).parts[0]
        except ValueError:
            continue
        if kind in ("unit", "integration", "ui"):
            item.add_marker(getattr(pytest.mark, kind))
