"""Value types for the command lines of `evterm` (argparse `type=`): a bad value is
reported by argparse with the value and what is allowed."""

from __future__ import annotations

import argparse
import math


def positive_number(text: str) -> float:
    """A finite number above 0 (seconds, a speed factor, milliseconds)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be a number > 0")
    return value
