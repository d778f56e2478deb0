"""The touchscreen app as a process under Xvfb against a real daemon and station
simulator: what its widgets show on the idle screen, a language button, the automation
socket's screenshot, stats and refusals, and a clean quit."""

from __future__ import annotations

import struct
from pathlib import Path

from hw_mocks.rig import DEFAULT_TARIFF
from terminal.pricing import load_tariff, tariff_texts
from ui.i18n import tr
from ui.view import keep_units


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_idle_screen_language_button_screenshot_and_stats(rig, ui_process, tmp_path):
    tariff = load_tariff(DEFAULT_TARIFF)
    prices = {language: list(tariff_texts(tariff, language)) for language in ("en", "de")}
    ui = ui_process(rig, size="800x480")

    idle = ui.wait_for("the idle screen with prices",
                       lambda d: d["screen"] == "idle" and d["price_lines"], 15)
    widgets = idle["widgets"]
    assert idle["language"] == "en"
    assert widgets["station"] == "DE*EVT*E0001*1"
    assert widgets["operator"] == rig.operator
    assert "+49 30 1234 5678" in widgets["support"]  # [ui] support_phone of conftest
    # the daemon's tariff words, a no-break space between number and unit (issue 15)
    assert prices["en"][0] == "0.59 EUR/kWh incl. 19% VAT"
    assert widgets["price_headline"] == keep_units(prices["en"][0]) == \
        "0.59\u00a0EUR/kWh incl. 19% VAT"
    assert idle["price_lines"] == [keep_units(line) for line in prices["en"]]
    assert widgets["idle_title"] == tr("idle_title", "en")
    assert widgets["lang_de"] == "Deutsch"
    assert {"report", "lang_en", "lang_de", "lang_fr", "lang_nl"} <= set(idle["buttons"])
    assert "stop" not in idle["buttons"]

    # refusals name the problem and change nothing
    unknown = ui.control("press", id="no_such_button")
    assert unknown["ok"] is False and "no_such_button" in unknown["error"]
    inactive = ui.control("press", id="stop")
    assert inactive["ok"] is False and "not active" in inactive["error"]
    assert ui.control("fly")["ok"] is False

    ui.press("lang_de")
    german = ui.wait_for("German texts", lambda d: d["language"] == "de"
                         and d["price_lines"] == [keep_units(x) for x in prices["de"]], 10)
    assert prices["de"][0] == "0,59 EUR/kWh inkl. 19 % MwSt."
    assert german["widgets"]["price_headline"] == "0,59\u00a0EUR/kWh inkl. 19\u00a0% MwSt."
    assert german["widgets"]["idle_title"] == tr("idle_title", "de") != widgets["idle_title"]
    assert german["widgets"]["report"] == tr("report", "de")
    assert rig.state()["language"] == "de"  # the daemon owns the language

    shot = ui.screenshot(tmp_path / "idle_de.png")
    assert shot == tmp_path / "idle_de.png"
    assert png_size(shot) == (800, 480)
    assert shot.stat().st_size > 5_000  # a drawn screen, not a blank one
    assert not list(tmp_path.glob("idle_de0*.png"))  # Kivy's counter name is not left over

    stats = ui.stats()
    assert 0 < stats["first_frame_s"] < 30
    assert stats["rss_kb"] > 10_000
    assert stats["frame_times_ms"] and all(t >= 0 for t in stats["frame_times_ms"])
    assert len(stats["press_to_frame_ms"]) == 1  # the lang_de press
    assert 0 < stats["press_to_frame_ms"][0] < 5_000

    ui.cmd("quit")
    assert ui.proc is not None and ui.proc.wait(timeout=10) == 0
    assert not Path(ui.control_path).exists()  # the control socket is removed
