"""The company VAT number page on the running app (Xvfb, 800x480) against
tests/ui/fake_localapi.py (which answers `vat_number` by the kernel's rule): from the
charging screen's "Company receipt: add VAT number" the page opens, laid out cleanly in
every language and in large text (nothing clipped or overlapping, every key at least
15 mm = 78 px, every text at 4.5:1), photographed; a number is typed by finger taps on
the keys (through Kivy's input dispatch, at each key's place on screen), a number the
rule refuses is said so without sending anything, OK sends `vat_number` for the running
session and the charging screen shows "VAT number: DE123456789" with a Change button.
One app start, a few seconds."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.ui.a11y_check import contrast_problems, touch_problems
from tests.ui.fake_localapi import SESSION, FakeLocalApi
from tests.ui.layout_check import layout_problems, widget
from tests.ui.test_ui_layout import CHARGING, LANGUAGES, settled_layout
from tests.ui.test_ui_scenarios import png_facts
from ui.i18n import tr
from ui.vat_entry import VAT_BUTTONS


@pytest.fixture
def fake_api() -> Iterator[FakeLocalApi]:
    folder = tempfile.mkdtemp(prefix="evvat-")
    api = FakeLocalApi(str(Path(folder) / "local.sock")).start()
    yield api
    api.close()


def tap(ui: Any, button_id: str, layout: dict[str, Any]) -> None:
    """One finger on the middle of the button, where the layout says it is."""
    entry = widget(layout, button_id)
    (x, y), (w, h) = entry["pos"], entry["size"]
    ui.cmd("touch", pos=[x + w / 2, y + h / 2])


def page_problems(ui: Any, where: str, keys_drawn: int = len(VAT_BUTTONS)) -> list[str]:
    dump = settled_layout(ui, where)  # two dumps alike: the page has settled
    found = layout_problems(dump) + touch_problems(dump) + contrast_problems(dump)
    keys = [entry for entry in dump["layout"] if entry["id"] in VAT_BUTTONS]
    if len(keys) != keys_drawn:
        found.append(f"{len(keys)} keys drawn, expected {keys_drawn}")
    return [f"{where}: {problem}" for problem in found]


def test_the_driver_types_a_vat_number_on_the_keyboard(fake_api, ui_process, tmp_path):
    ui = ui_process(SimpleNamespace(socket_path=fake_api.path), size="800x480")
    fake_api.reset(**CHARGING)
    charging = ui.wait_for("the VAT button", lambda d: "vat_add" in d["buttons"])
    assert charging["widgets"]["vat_add"] == "Company receipt: add VAT number"
    tap(ui, "vat_add", ui.dump(layout=True))
    page = ui.wait_screen("vat_entry")
    assert page["widgets"]["vat_title"] == tr("vat_title", "en")
    assert "report" not in page["buttons"] and "lang_de" not in page["buttons"]
    # ---- the page in every language, then the screenshot
    problems: list[str] = []
    for language in LANGUAGES:
        fake_api.set_state(language=language)
        ui.wait_for(f"the page in {language}", lambda d, lang=language: d["language"] == lang
                    and d["widgets"].get("vat_title") == tr("vat_title", lang))
        problems += page_problems(ui, language)
    fake_api.set_state(language="en")
    ui.wait_for("English", lambda d: d["widgets"].get("vat_title") == tr("vat_title", "en"))
    # ---- a number the rule refuses: said on the page, nothing sent
    layout = ui.dump(layout=True)
    for key in ("vat_key_D", "vat_key_1", "vat_ok"):
        tap(ui, key, layout)
    refused = ui.wait_for("the rule's refusal", lambda d: d["widgets"].get("vat_message")
                          == tr("vat_invalid", "en"))
    assert refused["widgets"]["vat_typed"].startswith("D1")
    assert fake_api.vat_requests == []
    tap(ui, "vat_delete", layout)
    tap(ui, "vat_delete", layout)
    ui.wait_for("an empty number", lambda d: d["widgets"].get("vat_typed") == "_")
    # ---- the number typed by taps, photographed
    for char in "DE123456789":
        tap(ui, f"vat_key_{char}", layout)
    typed = ui.wait_for("the typed number",
                        lambda d: d["widgets"].get("vat_typed") == "DE123456789_")
    assert typed["screen"] == "vat_entry"
    shots = Path(os.environ.get("EVTERM_SHOTS", tmp_path))  # kept there when set
    width, height, variety = png_facts(ui.screenshot(shots / "vat_entry.png"))
    assert (width, height) == (800, 480) and variety > 8
    # ---- OK: the op sent, the number on the charging screen with a Change button
    tap(ui, "vat_ok", layout)
    shown = ui.wait_for("the number on the charging screen", lambda d: d["screen"] == "charging"
                        and d["widgets"].get("vat_given") == "VAT number: DE123456789")
    assert shown["widgets"]["vat_add"] == "Change VAT number"
    assert [(r["op"], r["session_id"], r["vat_number"]) for r in fake_api.vat_requests] == [
        ("vat_number", SESSION, "DE123456789")]
    problems += page_problems(ui, "charging with a VAT number", keys_drawn=0)
    width, height, variety = png_facts(ui.screenshot(shots / "charging_vat.png"))
    assert (width, height) == (800, 480) and variety > 8
    # ---- large text: the page again (the toggle is on the idle screen)
    fake_api.reset()
    ui.wait_screen("idle")
    ui.press("a11y_large_text")
    fake_api.reset(**CHARGING)
    ui.wait_for("the VAT button", lambda d: "vat_add" in d["buttons"])
    ui.press("vat_add")
    large = ui.wait_screen("vat_entry")
    assert large["modes"]["large_text"]
    for language in LANGUAGES:
        fake_api.set_state(language=language)
        ui.wait_for(f"the page in {language}", lambda d, lang=language: d["language"] == lang
                    and d["widgets"].get("vat_title") == tr("vat_title", lang))
        problems += page_problems(ui, f"large text {language}")
    assert problems == [], "\n".join(problems)
