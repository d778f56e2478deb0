"""The bank-card hold on the idle screen, drawn (issue 18): the app under Xvfb against the
fake local API (tests/ui/fake_localapi.py) shows what a tap reserves and the budget
buttons (each at least 15 mm = 78 px on the 7" panel's 800x480, docs/accessibility.md),
a budget button sends the `budget` op and the screen then says the new amount, the
button in force is marked; a screenshot is kept. The daemon's side of `budget` is tested
in tests/unit/test_holds_daemon.py, every language's layout in test_ui_layout.py."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.ui.fake_localapi import FakeLocalApi
from tests.ui.layout_check import widget

MIN_TOUCH_PX = 78


@pytest.fixture
def fake_api() -> Iterator[FakeLocalApi]:
    folder = tempfile.mkdtemp(prefix="evhold-")
    api = FakeLocalApi(str(Path(folder) / "local.sock")).start()
    yield api
    api.close()


def test_the_hold_and_the_budget_buttons_are_shown_and_work(fake_api, ui_process, tmp_path):
    ui = ui_process(SimpleNamespace(socket_path=fake_api.path), size="800x480")
    idle = ui.wait_for("the idle screen with the hold",
                       lambda d: d["screen"] == "idle" and d["widgets"].get("card_hold"), 15)
    widgets = idle["widgets"]
    assert widgets["card_hold"] == ("Bank card: 50.00 EUR is reserved on your card and "
                                    "released after charging; you pay only what you charge.")
    assert [widgets[f"budget_{i}"] for i in (1, 2, 3)] == ["20.00 EUR", "50.00 EUR",
                                                          "80.00 EUR"]
    assert {"budget_1", "budget_2", "budget_3"} <= set(idle["buttons"])
    assert "budget_4" not in idle["buttons"]
    layout = ui.dump(layout=True)
    for name in ("budget_1", "budget_2", "budget_3"):
        width, height = widget(layout, name)["size"]
        assert min(width, height) >= MIN_TOUCH_PX, (name, width, height)
    assert widget(layout, "card_hold")["size"][1] > 0
    # the amount in force is in view without scrolling (the sentence scrolls)
    title = widget(layout, "budget_title")
    assert title["text"] == "Reserved on your card: 50.00 EUR" and not title["scrolled"]
    shot = ui.screenshot(tmp_path / "idle_hold.png")
    assert shot.stat().st_size > 5_000

    ui.press("budget_1")
    picked = ui.wait_for("the 20.00 budget in force",
                         lambda d: "20.00 EUR is reserved" in d["widgets"]["card_hold"], 10)
    assert fake_api.budgets == ["20.00"]
    assert picked["widgets"]["budget_1"] == "20.00 EUR"
    assert picked["widgets"]["budget_title"] == "Reserved on your card: 20.00 EUR"
    ui.press("lang_de")
    german = ui.wait_for("German", lambda d: d["language"] == "de", 10)
    assert german["widgets"]["card_hold"].startswith("Bankkarte: 20,00 EUR werden")
