"""`evterm sim backend-loopback`: the backend double on a Unix socket."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this module's subcommands."""
