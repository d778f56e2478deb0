"""The speech volume a driver changes without sight (EN 301 549 5.1.3.11 to 5.1.3.13).

Provides `SpeechVolume`: a step from 1 (quietest) to `STEPS` (loudest), `DEFAULT_STEP`
at start; `change(delta)` moves it one step (never beyond the ends; returns whether it
moved), `reset()` goes back to the default (ui/speech_control.py calls it whenever
speech switches off: after the session the next driver starts at the default volume),
`amplitude` is espeak-ng's `-a` for the step (ui/speech.py passes it to every text, so
the volume works through every output: aplay, espeak-ng's own audio, the WAV files).
`volume_words(volume, language)` is the confirmation spoken at the new volume:
"Volume 4 of 5." (plus "This is the loudest." / "the quietest" at an end), from the
`speech_volume*` keys of ui/locales/*.json.

The steps are about 3 dB apart (espeak-ng's amplitude is linear in the samples: 35 to
140, 12 dB in all); 140 is the loudest espeak-ng renders without clipping (200, its
maximum, clips). The default, step 3, is amplitude 70, 6 dB below the loudest. The
operator sets the amplifier so that the loudest step reaches the level EN 301 549
5.1.3.12 asks of the loudspeaker (65 dBA); that is the charger model's hardware.
"""

from __future__ import annotations

from ui.i18n import tr

AMPLITUDES = (35, 50, 70, 100, 140)  # espeak-ng -a per step, step 1 first
STEPS = len(AMPLITUDES)
DEFAULT_STEP = 3
DEFAULT_AMPLITUDE = AMPLITUDES[DEFAULT_STEP - 1]


class SpeechVolume:
    def __init__(self, step: int = DEFAULT_STEP) -> None:
        if not 1 <= step <= STEPS:
            raise ValueError(f"speech volume step {step} is not between 1 and {STEPS}")
        self.step = step

    @property
    def amplitude(self) -> int:
        return AMPLITUDES[self.step - 1]

    def change(self, delta: int) -> bool:
        """One step quieter (delta < 0) or louder (delta > 0); False at an end."""
        step = min(STEPS, max(1, self.step + (1 if delta > 0 else -1 if delta < 0 else 0)))
        moved, self.step = step != self.step, step
        return moved

    def reset(self) -> None:
        self.step = DEFAULT_STEP


def volume_words(volume: SpeechVolume, language: str) -> str:
    """'Volume 4 of 5.', at an end with 'This is the loudest.' / '... quietest.'."""
    words = tr("speech_volume", language, step=volume.step, steps=STEPS)
    if volume.step == STEPS:
        words = f"{words} {tr('speech_volume_max', language)}"
    elif volume.step == 1:
        words = f"{words} {tr('speech_volume_min', language)}"
    return words
