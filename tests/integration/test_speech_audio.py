"""Every screen's speech rendered to WAV by espeak-ng (the speaker's `wav:DIR` output,
the real program) in every language and measured with sox: not silent (RMS amplitude
above a floor) and of a plausible length for its text (espeak-ng at 160 words a
minute: between 0.4 and 2.5 times the time its word count takes)."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess

import pytest

from tests.unit.test_ui_speech import LANGUAGES, every_screen
from ui.speech import WORDS_PER_MINUTE, espeak_args
from ui.speech_texts import speech_text

RMS_FLOOR = 0.02


def sox_stat(path) -> dict[str, float]:
    result = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True,
                            text=True, check=True)
    stats = {}
    for line in result.stderr.splitlines():
        name, _, value = line.partition(":")
        with contextlib.suppress(ValueError):
            stats[name.strip()] = float(value)
    return stats


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_screen_speaks_audibly_for_a_plausible_time(language, tmp_path):
    for tool in ("espeak-ng", "sox"):
        assert shutil.which(tool), f"{tool} is not installed (./dev installs it)"
    for screen, model in every_screen(language):
        text = speech_text(model, 1.0)
        wav = tmp_path / f"{screen}-{language}.wav"
        subprocess.run(espeak_args(language, wav=str(wav)), input=text.encode(),
                       check=True, timeout=60)
        stats = sox_stat(wav)
        words = len(re.findall(r"\w+", text))
        expected_s = words * 60 / WORDS_PER_MINUTE
        assert stats["RMS     amplitude"] > RMS_FLOOR, (screen, language, stats)
        assert 0.4 * expected_s <= stats["Length (seconds)"] <= 2.5 * expected_s + 1, \
            (screen, language, words, stats["Length (seconds)"])
