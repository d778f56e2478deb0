"""`evterm card read`: read one card on a PC/SC reader (SKELETON: to be filled in)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands."""
