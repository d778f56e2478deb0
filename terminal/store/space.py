"""Free space where the journal lives.

Provides `free_storage_mb(folder)`: the free space of the file system holding `folder`
in MiB (0.0 when it cannot be read, so a folder that cannot be checked refuses new
sessions rather than risking one the journal cannot hold), and `storage_low(folder,
min_free_mb)`: why new sessions are refused for lack of space, or None.
"""

from __future__ import annotations

import shutil
from pathlib import Path


def free_storage_mb(folder: Path) -> float:
    try:
        return shutil.disk_usage(folder).free / 1_048_576
    except OSError:
        return 0.0


def storage_low(folder: Path, min_free_mb: int) -> str | None:
    """None while `folder` has at least `min_free_mb` MiB free, else the reason."""
    if min_free_mb <= 0:
        return None
    free_mb = free_storage_mb(folder)
    if free_mb >= min_free_mb:
        return None
    return (f"storage low: {free_mb:.0f} MB free, at least {min_free_mb} MB needed; "
            "new sessions refused")
