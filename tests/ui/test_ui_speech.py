"""The speech output in the running app under Xvfb against the fake daemon: a long press
in the bottom-left 20 mm corner and the F1 key toggle speech, a state change makes a
speak request (rendered by espeak-ng to WAV: the speaker's `wav:DIR` output), F2
repeats, the receipt is read on request, and the long press on the English button in
that corner does not switch the language."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hw_mocks.ui_process import UiError
from tests.ui.conftest import UiHandle
from tests.ui.fake_localapi import SESSION, FakeLocalApi


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
