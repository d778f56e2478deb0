"""The speech output in the running app under Xvfb against the fake daemon: a long press
in the bottom-left 20 mm corner and the F1 key toggle speech, a state change makes a
speak request (rendered by espeak-ng to WAV: the speaker's `wav:DIR` output), F2
repeats, the receipt is read on request, and the long press on the English button in
that corner does not switch the language; F4/F5 and the bar's Quieter/Louder buttons
step the volume and say the new step, every F1 press says the new state, the volume is
back at its default after a session, and the bar fits in every language."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hw_mocks.ui_process import UiError
from tests.ui.conftest import UiHandle
from tests.ui.fake_localapi import SESSION, FakeLocalApi
from tests.ui.layout_check import layout_problems
from ui.i18n import tr


@pytest.fixture
def speaking_ui(xvfb) -> Iterator[tuple[UiHandle, FakeLocalApi, Path]]:
    folder = Path(tempfile.mkdtemp(prefix="evsp-"))
    api = FakeLocalApi(str(folder / "local.sock")).start()
    wavs = folder / "wav"
    env = {**xvfb.env(), "EVTERM_SPEECH_OUTPUT": f"wav:{wavs}"}
    ui = UiHandle(api.path, str(folder / "ui.sock"), env, size="800x480",
                  log_path=folder / "ui.log")
    try:
        ui.start()
    except UiError as exc:
        pytest.fail(str(exc))
    try:
        yield ui, api, wavs
    finally:
        ui.stop()
        api.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_corner_long_press_and_keys_toggle_speech_and_a_state_change_speaks(speaking_ui):
    ui, api, wavs = speaking_ui
    ui.wait_screen("idle")
    assert ui.cmd("speech")["on"] is False
    ui.cmd("hold", x=20, y=20, hold_s=2.3, timeout_s=10)  # on the English button
    state = ui.cmd("speech")
    assert state["on"] is True and state["bar"] is True
    assert state["said"][-1]["kind"] == "on"
    assert state["said"][-1]["text"].startswith("Speech output on. Hold your card")
    assert ui.dump()["language"] == "en"  # the button under the finger did not act

    before = state["requests"]
    api.set_state(phase="Authorized", cost_cap="50.00", session_id=SESSION)
    ui.wait_for("a speak request for the new state",
                lambda _d: ui.cmd("speech")["requests"] > before, 10)
    said = ui.cmd("speech")["said"][-1]
    assert said["kind"] == "screen" and said["text"].startswith("Approved.")
    assert "50 euros" in said["text"]

    ui.cmd("key", key="f2")
    assert ui.cmd("speech")["said"][-1]["kind"] == "repeat"
    ui.cmd("key", key="f3")
    assert ui.cmd("speech")["paused"] is True
    ui.cmd("key", key="f1")
    state = ui.cmd("speech")
    assert state["on"] is False and state["bar"] is False
    assert state["said"][-1]["text"] == "Speech output off."
    ui.cmd("key", key="f1")
    assert ui.cmd("speech")["on"] is True
    ui.wait_for("WAV files from espeak-ng", lambda _d: any(
        f.stat().st_size > 1000 for f in wavs.glob("*-en.wav")), 10)

    short = ui.control("hold", x=400, y=240, hold_s=2.3)  # not the corner: nothing
    assert short["ok"] and ui.cmd("speech")["on"] is True


def test_receipt_read_aloud_on_request(speaking_ui):
    ui, api, _wavs = speaking_ui
    ui.wait_screen("idle")
    ui.cmd("key", key="f1")
    api.set_state(receipt_pending={"session_id": SESSION, "until": "2026-12-02T11:00:00Z"})
    ui.wait_for("the receipt's summary spoken", lambda _d: "Total" in ui.cmd(
        "speech")["said"][-1]["text"], 10)
    ui.cmd("speech", action="read_receipt")
    said = ui.cmd("speech")["said"][-1]
    assert said["kind"] == "receipt" and "Charging receipt" in said["text"]
    assert "1111" not in said["text"]


def _bar_button(ui: UiHandle, text: str) -> dict:
    dump = ui.dump(layout=True)
    found = [entry for entry in dump["layout"]
             if entry["kind"] == "FlatButton" and entry.get("text") == text]
    assert len(found) == 1, (text, [e.get("text") for e in dump["layout"]
                                    if e["kind"] == "FlatButton"])
    return found[0]


def _assert_touch_target(ui: UiHandle, entry: dict) -> None:
    """15 mm on the reference 7" panel: 78 px at 800x480 (16.25 % of the height)."""
    window_h = ui.dump(layout=True)["window"][1]
    assert min(entry["size"]) >= 0.1625 * window_h - 0.5, entry


def _touch(ui: UiHandle, entry: dict) -> None:
    (x, y), (w, h) = entry["pos"], entry["size"]
    ui.cmd("touch", pos=[x + w / 2, y + h / 2])


def test_volume_keys_and_the_bars_buttons_step_the_volume_and_say_it(speaking_ui):
    ui, api, _wavs = speaking_ui
    ui.wait_screen("idle")
    ui.cmd("key", key="f5")  # speech off: the volume keys do nothing
    assert ui.cmd("speech")["volume"] == 3 and ui.cmd("speech")["said"] == []
    for expected in ("Speech output on.", "Speech output off.", "Speech output on."):
        ui.cmd("key", key="f1")  # 5.6.1: every press says the new state
        assert ui.cmd("speech")["said"][-1]["text"].startswith(expected)
    state = ui.cmd("speech")
    assert (state["volume"], state["volume_steps"]) == (3, 5)
    default_amplitude = state["said"][-1]["amplitude"]

    ui.cmd("key", key="f5")
    said = ui.cmd("speech")["said"][-1]
    assert (said["kind"], said["text"]) == ("volume", "Volume 4 of 5.")
    assert said["amplitude"] > default_amplitude
    for name in ("Louder", "Quieter", "Repeat", "Pause"):
        _assert_touch_target(ui, _bar_button(ui, name))
    _touch(ui, _bar_button(ui, "Louder"))
    ui.wait_for("the Louder button said the step", lambda _d: ui.cmd("speech")["said"][-1][
        "text"] == "Volume 5 of 5. This is the loudest.", 10)
    _touch(ui, _bar_button(ui, "Quieter"))
    ui.wait_for("the Quieter button said the step", lambda _d: ui.cmd("speech")["said"][-1][
        "text"] == "Volume 4 of 5.", 10)
    assert ui.cmd("speech")["volume"] == 4
    ui.cmd("speech", action="louder")

    # a session with speech on, then the idle screen: speech off, the volume back
    api.set_state(phase="Charging", session_id=SESSION, plugged=True)
    ui.wait_screen("charging")
    assert ui.cmd("speech")["volume"] == 5  # kept during the session
    api.set_state(phase="Available", session_id=None, plugged=False)
    ui.wait_screen("idle")
    ui.wait_for("speech off after the session", lambda _d: not ui.cmd("speech")["on"], 10)
    assert ui.cmd("speech")["volume"] == 3
    ui.cmd("key", key="f1")
    assert ui.cmd("speech")["said"][-1]["amplitude"] == default_amplitude


@pytest.mark.parametrize("screen", ["idle", "receipt"])
def test_the_speech_bar_fits_in_every_language(speaking_ui, screen):
    ui, api, _wavs = speaking_ui
    ui.wait_screen("idle")
    if screen == "receipt":
        api.set_state(receipt_pending={"session_id": SESSION,
                                       "until": "2026-12-02T11:00:00Z"})
        ui.wait_screen("receipt")
    ui.cmd("key", key="f1")
    for language in ("en", "de", "fr", "nl"):
        ui.press(f"lang_{language}")
        ui.wait_for(f"the bar in {language}", lambda _d, lang=language: ui.cmd(
            "speech")["said"][-1]["language"] == lang, 10)
        assert ui.cmd("speech")["bar"] is True
        dump = ui.dump(layout=True)
        texts = {entry.get("text") for entry in dump["layout"]}
        assert {tr("speech_quieter", language), tr("speech_louder", language)} <= texts
        assert layout_problems(dump) == [], (language, layout_problems(dump))
