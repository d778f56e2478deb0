"""Whether headphones are plugged in, where the board can tell (ALSA jack controls).

Provides `alsa_jack_reader(card=None)`: a reader returning True/False from ALSA's
"Headphone Jack" control (`amixer -c CARD cget iface=CARD,name='Headphone Jack'`, the
jack-detect control codecs such as the Raspberry Pi's HDMI-less boards' USB/I2S codecs
expose), or None when the board has no sound card under /proc/asound, no amixer or no
such control (then speech is switched on by the corner or the keys only). `parse_cget`
reads amixer's answer ("values=on"). The decision (switch on when plugged in, off when
pulled out) is ui.speech_control.SpeechControl.on_jack; tests use a fake reader.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

JackReader = Callable[[], bool | None]
CONTROL = "Headphone Jack"
POLL_S = 1.0
_VALUES = re.compile(r":\s*values=(on|off)\b")


def parse_cget(output: str) -> bool | None:
    """amixer cget's answer: True for 'values=on', False for 'values=off', else None."""
    match = _VALUES.search(output)
    return None if match is None else match[1] == "on"


def alsa_jack_reader(card: str | None = None, asound: Path = Path("/proc/asound"),
                     ) -> JackReader:
    """A reader of the "Headphone Jack" control of ALSA card `card` (default: the first);
    it answers None when there is nothing to read."""

    def read() -> bool | None:
        if not (asound / "cards").exists() or shutil.which("amixer") is None:
            return None
        args = ["amixer"] + (["-c", card] if card else []) + [
            "cget", f"iface=CARD,name={CONTROL}"]
        try:
            result = subprocess.run(args, capture_output=True, text=True, timeout=2.0,
                                    check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return parse_cget(result.stdout) if result.returncode == 0 else None

    return read
