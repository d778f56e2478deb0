"""Every screen's speech rendered to WAV by espeak-ng (the speaker's `wav:DIR` output,
the real program) in every language and measured with sox: not silent (RMS amplitude
above a floor) and of a plausible length for its text (espeak-ng at 160 words a
minute: between 0.4 and 2.5 times the time its word count takes); each volume step
(F4/F5, ui/speech_volume.py) rendered through the speaker's WAV output is louder than
the one below (sox: RMS amplitude) and not clipped below the loudest."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from itertools import pairwise

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


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_louder_volume_step_gives_a_higher_rms(language, tmp_path):
    from ui.speech import Speaker
    from ui.speech_control import SpeechControl
    from ui.speech_volume import STEPS, volume_words

    for tool in ("espeak-ng", "sox"):
        assert shutil.which(tool), f"{tool} is not installed (./dev installs it)"
    control = SpeechControl()
    control.toggle("on", language, "off", 0.0)

    def step(delta: int):
        return control.change_volume(delta, lambda v: volume_words(v, language), language,
                                     1.0)

    for _ in range(STEPS):
        step(-1)  # down to step 1
    says = [step(0)] + [step(+1) for _ in range(STEPS - 1)]
    assert len({say.amplitude for say in says}) == STEPS
    speaker = Speaker(f"wav:{tmp_path}")  # the speaker's own output, as the app runs it
    try:
        for say in says:  # the same text at every step: only the volume differs
            speaker.say(_PANGRAM[language], say.language, say.amplitude)
            assert speaker.wait_idle(30.0)
    finally:
        speaker.close()
    wavs = sorted(tmp_path.glob(f"*-{language}.wav"))
    assert len(wavs) == STEPS
    stats = [sox_stat(wav) for wav in wavs]
    rms = [stat["RMS     amplitude"] for stat in stats]
    assert all(low * 1.2 < high for low, high in pairwise(rms)), rms  # > 1.6 dB a step
    assert rms[0] > RMS_FLOOR / 2, rms  # the quietest is still speech
    assert all(stat["Maximum amplitude"] < 0.999 for stat in stats[:-1]), stats


_PANGRAM = {"en": "The quick brown fox jumps over the lazy dog.",
            "de": "Zwölf Boxkämpfer jagen Viktor quer über den großen Sylter Deich.",
            "fr": "Portez ce vieux whisky au juge blond qui fume.",
            "nl": "Pa's wijze lynx bezag vroom het fikse aquaduct."}
