"""`evterm sim tap`, `evterm sim pcscd`, `evterm sim rfid`: card emulators."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands."""
