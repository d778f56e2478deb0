"""Speech output benchmark (JSON on stdout): from a state change to the start of speech,
and the UI process's RSS with speech on.

- `state_to_audio_ms`: a new daemon state folded into the model, `speech_text` of the
  new screen built, espeak-ng started (--stdout, the text on stdin, as ui/speech.py's
  aplay output runs it) and its first audio bytes read; p50/p95 over every screen in
  every language, 5 rounds. Target < 300 ms.
- `ui_rss_kb_speech_on`: the app (`evterm ui`, Xvfb, the fake daemon of the UI tests,
  speech to WAV) with speech switched on (F1) after a state change was spoken.
Needs espeak-ng (and Xvfb for the RSS; without it that figure is null).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats import summary  # noqa: E402

from tests.unit.test_ui_speech import LANGUAGES, every_screen  # noqa: E402
from ui.speech import espeak_args  # noqa: E402
from ui.speech_texts import speech_text  # noqa: E402

ROUNDS = 5
TARGET_MS = 300.0


def state_to_audio_ms() -> list[float]:
    times = []
    for _ in range(ROUNDS):
        for language in LANGUAGES:
            for _screen, model in every_screen(language):
                started = time.perf_counter()
                text = speech_text(model, 1.0)
                proc = subprocess.Popen(espeak_args(language, stdout=True),
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(text.encode())
                proc.stdin.close()
                first = proc.stdout.read(1)
                times.append((time.perf_counter() - started) * 1000.0)
                proc.kill()
                proc.wait()
                if not first:
                    raise RuntimeError(f"espeak-ng gave no audio for {language}")
    return times


def ui_rss_kb() -> int | None:
    from hw_mocks.xvfb import Xvfb, XvfbError
    from tests.ui.conftest import UiHandle
    from tests.ui.fake_localapi import SESSION, FakeLocalApi

    folder = Path(tempfile.mkdtemp(prefix="evbs-"))
    screen = Xvfb("1280x800")
    try:
        screen.start()
    except XvfbError:
        return None
    api = FakeLocalApi(str(folder / "local.sock")).start()
    env = {**screen.env(), "EVTERM_SPEECH_OUTPUT": f"wav:{folder / 'wav'}"}
    ui = UiHandle(api.path, str(folder / "ui.sock"), env, log_path=folder / "ui.log")
    try:
        ui.start()
        ui.wait_screen("idle")
        ui.cmd("key", key="f1")
        api.set_state(phase="Authorized", cost_cap="50.00", session_id=SESSION)
        ui.wait_for("speech", lambda _d: ui.cmd("speech")["requests"] >= 2, 10)
        return int(ui.stats()["rss_kb"])
    finally:
        ui.stop()
        api.close()
        screen.stop()


def main() -> None:
    times = state_to_audio_ms()
    figures = summary(times)
    result = {"bench": "speech", "state_to_audio_ms": figures, "target_ms": TARGET_MS,
              "ok": figures["p95"] < TARGET_MS, "ui_rss_kb_speech_on": ui_rss_kb(),
              "cpus": os.cpu_count()}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
