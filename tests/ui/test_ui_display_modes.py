"""The display modes (issue 19: EN 301 549 5.1.4 large text, contrast, 5.1.6 operation
without fine motor control) on the reference panel, 800x480, under Xvfb.

One pass per mode (normal, large text, high contrast, both; the UI started with
`--large-text` / `--high-contrast`, the modes it returns to after each session) over
every screen in every language with the layout test's walk (tests/ui/test_ui_layout.py):
nothing clipped or overlapping (tests/ui/layout_check.py), every button at least 15 mm
(78 px) both ways, every text at 4.5:1 (high contrast 7:1) on its background
(tests/ui/a11y_check.py), and a screenshot of each screen (kept in $EVTERM_SHOTS when
set, else in a temporary folder) whose size is the window's and, on the idle screen,
whose background is the mode's. Large text draws the main figures at least twice as big
as normal text does. The toggles on the idle screen switch the modes and the end of a
session resets them.

About a minute per mode on 2 cores.
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.ui.a11y_check import contrast_problems, figure_sizes, touch_problems
from tests.ui.fake_localapi import SESSION, FakeLocalApi
from tests.ui.test_ui_layout import (
    CHARGING,
    LANGUAGES,
    PENDING,
    Walk,
    assert_hold_in_view,
    walk_every_screen,
)
from tests.ui.test_ui_meter import png_pixels
from tests.unit.test_ui_service_view import DIAGNOSTICS
from ui.theme import HIGH_CONTRAST, NORMAL

SIZE = "800x480"
MODES = {"normal": (), "large": ("--large-text",), "contrast": ("--high-contrast",),
         "large-contrast": ("--large-text", "--high-contrast")}
FINISHING = {**CHARGING, "phase": "Finishing", "output_on": False, "power_w": "0",
             "stop_reason": "StoppedByEV",
             "idle": {"accruing": False, "fee_from": "2026-12-02T10:40:00Z"}}


@pytest.fixture
def fake_api() -> Iterator[FakeLocalApi]:
    folder = tempfile.mkdtemp(prefix="evmod-")
    api = FakeLocalApi(str(Path(folder) / "local.sock"), DIAGNOSTICS).start()
    yield api
    api.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    kept = os.environ.get("EVTERM_SHOTS")
    return Path(kept) if kept else tmp_path / "shots"


class ShotWalk(Walk):
    """The layout walk, plus the accessibility checks and a screenshot per screen."""

    def __init__(self, ui: Any, api: FakeLocalApi, size: str, mode: str, folder: Path) -> None:
        super().__init__(ui, api, size)
        self.mode, self.folder = mode, folder
        self.shots: list[Path] = []

    def measure(self, name: str, language: str, ready: Any) -> None:
        super().measure(name, language, ready)
        dump = self.dumps[f"{name}-{language}"]
        where = f"{self.mode} {name} {language}"
        self.problems += [f"{where}: {p}" for p in touch_problems(dump)]
        self.problems += [f"{where}: {p}" for p in contrast_problems(dump)]
        self.shots.append(self.ui.screenshot(self.folder / self.mode / f"{name}-{language}.png"))


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("mode", list(MODES))
def test_every_screen_in_every_language_in_each_display_mode(fake_api, ui_process, shots,
                                                             mode):
    started = time.monotonic()
    ui = ui_process(SimpleNamespace(socket_path=fake_api.path), size=SIZE,
                    extra_args=MODES[mode])
    first = ui.dump()
    assert first["modes"]["large_text"] == ("--large-text" in MODES[mode])
    assert first["modes"]["high_contrast"] == ("--high-contrast" in MODES[mode])
    walk = walk_every_screen_with_shots(ui, fake_api, mode, shots)
    print(f"{mode}: {walk.count} screens measured and photographed in "
          f"{time.monotonic() - started:.0f} s")
    assert walk.count == 22 * 4 + 1
    assert walk.problems == [], "\n".join(walk.problems)
    assert_hold_in_view(walk)  # the hold's amount before the tap, unscrolled, in each mode
    assert len(walk.shots) == walk.count
    for shot in walk.shots:
        assert png_size(shot) == (800, 480), shot
    # the window's own colour (the screen's padding at the left edge): the mode's
    bpp, rows = png_pixels(walk.shots[0])
    colour = (HIGH_CONTRAST if "--high-contrast" in MODES[mode] else NORMAL).BG
    pixel = rows[240][2 * bpp:2 * bpp + 3]  # left edge, mid height: the screen's padding
    assert all(abs(p - round(c * 255)) <= 2 for p, c in zip(pixel, colour[:3], strict=True)), \
        (pixel, colour)


def walk_every_screen_with_shots(ui: Any, api: FakeLocalApi, mode: str,
                                 folder: Path) -> ShotWalk:
    walk = ShotWalk(ui, api, SIZE, mode, folder)
    walk_every_screen(ui, api, SIZE, walk)
    return walk


def figures_in(ui: Any, api: FakeLocalApi) -> dict[str, float]:
    """The main figures' font sizes on idle, charging and finishing in every language
    (the smallest per figure over the languages)."""
    walk = Walk(ui, api, SIZE)
    walk.screen("idle", "idle", {}, lambda d: d["qr"] and d["price_lines"])
    walk.screen("charging", "charging", CHARGING, lambda d: d["progress"])
    walk.screen("finishing", "finishing", FINISHING, lambda d: d["widgets"].get("idle_fee"))
    sizes: dict[str, float] = {}
    for dump in walk.dumps.values():
        for name, size in figure_sizes(dump).items():
            sizes[name] = min(size, sizes.get(name, size))
    assert walk.problems == [], "\n".join(walk.problems)
    return sizes


def test_large_text_draws_the_main_figures_at_least_twice_as_big(fake_api, ui_process):
    normal_ui = ui_process(SimpleNamespace(socket_path=fake_api.path), size=SIZE)
    normal = figures_in(normal_ui, fake_api)
    normal_ui.kill()
    large_ui = ui_process(SimpleNamespace(socket_path=fake_api.path), size=SIZE,
                          extra_args=("--large-text",))
    large = figures_in(large_ui, fake_api)
    assert set(normal) == {"price_headline", "energy", "cost", "power", "elapsed",
                           "finish_energy", "finish_cost"}
    small = {name: (normal[name], large.get(name)) for name in normal
             if large.get(name, 0) < 2 * normal[name] - 0.01}
    assert small == {}, f"(normal px, large px) under twice: {small}"


def test_the_idle_toggles_switch_the_modes_and_a_session_resets_them(fake_api, ui_process):
    ui = ui_process(SimpleNamespace(socket_path=fake_api.path), size=SIZE)
    ui.wait_for("idle", lambda d: d["screen"] == "idle")
    normal_title = figure_font(ui.dump(layout=True), "idle_title")
    ui.press("a11y_large_text")
    ui.press("a11y_high_contrast")
    dump = ui.wait_for("both modes", lambda d: d["modes"]["large_text"]
                       and d["modes"]["high_contrast"])
    assert dump["modes"]["background"] == list(HIGH_CONTRAST.BG)
    assert dump["widgets"]["a11y_large_text"] == "Large text: on"
    assert dump["widgets"]["a11y_high_contrast"] == "High contrast: on"
    assert figure_font(ui.dump(layout=True), "idle_title") > 1.2 * normal_title
    # a session: the modes stay while it runs and while its receipt is on offer
    fake_api.reset(phase="Authorized", session_id=SESSION, cost_cap="50.00")
    ui.wait_for("authorising", lambda d: d["screen"] == "authorising")
    fake_api.reset(**CHARGING)
    assert ui.wait_for("charging", lambda d: d["screen"] == "charging")["modes"]["large_text"]
    fake_api.reset(receipt_pending=PENDING)
    dump = ui.wait_for("receipt", lambda d: d["screen"] == "receipt" and d["receipt_lines"])
    assert dump["modes"] == {"large_text": True, "high_contrast": True,
                             "background": list(HIGH_CONTRAST.BG)}
    ui.press("ack")
    dump = ui.wait_for("idle after the session", lambda d: d["screen"] == "idle")
    dump = ui.wait_for("the modes reset", lambda d: not d["modes"]["large_text"])
    assert dump["modes"] == {"large_text": False, "high_contrast": False,
                             "background": list(NORMAL.BG)}
    assert dump["widgets"]["a11y_large_text"] == "Large text: off"
    # the toggles are on the idle screen only
    fake_api.reset(**CHARGING)
    dump = ui.wait_for("charging", lambda d: d["screen"] == "charging")
    assert "a11y_large_text" not in dump["buttons"]
    assert ui.control("press", id="a11y_large_text")["ok"] is False


def figure_font(dump: dict[str, Any], name: str) -> float:
    for entry in dump["layout"]:
        if entry["id"] == name:
            return float(entry["font_size"])
    raise AssertionError(f"{name} is not drawn")


def test_every_language_labels_the_toggles(fake_api, ui_process):
    ui = ui_process(SimpleNamespace(socket_path=fake_api.path), size=SIZE)
    seen = set()
    for language in LANGUAGES:
        fake_api.set_state(language=language)
        dump = ui.wait_for(language, lambda d, lang=language: d["language"] == lang
                           and d["screen"] == "idle")
        seen.add((dump["widgets"]["a11y_large_text"], dump["widgets"]["a11y_high_contrast"]))
    assert len(seen) == 4
