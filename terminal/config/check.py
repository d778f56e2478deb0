"""`evterm config check FILE`: validate a file, print its problems or its warnings.

Provides `check_file(path, out, err) -> int`: 0 for a valid file (its warnings, if any,
on `err`, each line starting "warning: "), 2 with every problem on `err` otherwise.
It never raises for anything the file holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

from terminal.config.loader import load_config
from terminal.config.schema import ConfigError
from terminal.config.warn import config_warnings


def check_file(path: str | Path, out: TextIO, err: TextIO) -> int:
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=err)
        return 2
    for warning in config_warnings(config):
        print(f"warning: {warning}", file=err)
    print(f"{path}: configuration valid", file=out)
    return 0
