"""Build evterm's wheel the way a release does, without touching the checkout.

`build_wheel(folder)` copies the working tree (no .git, venvs, caches, build output) into
`folder/src` and runs `pip wheel --no-deps` on the copy, so build/ and *.egg-info land in
the copy, never in the repository. `repo_litter()` lists build output in the checkout, for
tests to assert it stays empty.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NOT_SOURCE = (".git", ".venv", "var", "__pycache__", "build", "dist", "*.egg-info",
              ".ruff_cache", ".pytest_cache", ".hypothesis", "*.pyc")


def repo_litter() -> list[str]:
    """Build output in the checkout (what a build inside it would leave behind)."""
    return sorted(str(p.relative_to(REPO)) for pattern in ("build", "dist", "*.egg-info")
                  for p in REPO.glob(pattern))


def build_wheel(folder: Path) -> Path:
    """evterm's wheel, built from a copy of the checkout into `folder/dist`."""
    source = folder / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    dist = folder / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir",
         str(dist), str(source)],
        capture_output=True, text=True, timeout=300, cwd=folder)
    wheels = sorted(dist.glob("evterm-*.whl"))
    if result.returncode != 0 or len(wheels) != 1:
        raise AssertionError(f"pip wheel failed (exit {result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return wheels[0]
