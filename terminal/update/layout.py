"""Where the releases live on the board and which one runs (docs/updates.md, "Layout").

`Layout(root)` (`[update] root_dir`, default /opt/evterm):
- `releases/VERSION/` one release each: `venv/` (its own virtualenv), `dist/` (the
  release's tar unpacked: release.json, wheels/) and `.complete`, written last, so a
  folder without it is a half-built release;
- `current` -> `releases/VERSION`, the release that runs (the units start
  `current/venv/bin/evterm`); `switch(version)` replaces it atomically (a new link,
  then rename(2) over the old one, then an fsync of the folder);
- `update/`: the updater's journal, downloads and TUF metadata.

On failure: OSError from the file system; `LayoutError` for a release folder that
cannot be switched to (missing or half-built).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

COMPLETE = ".complete"


class LayoutError(RuntimeError):
    pass


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Layout:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.releases = self.root / "releases"
        self.current = self.root / "current"
        self.update_dir = self.root / "update"
        self.journal_path = self.update_dir / "journal.json"
        self.downloads = self.update_dir / "downloads"
        self.metadata = self.update_dir / "metadata"

    def release_dir(self, version: str) -> Path:
        return self.releases / version

    def evterm(self, version: str) -> Path:
        return self.release_dir(version) / "venv" / "bin" / "evterm"

    def is_complete(self, version: str) -> bool:
        return (self.release_dir(version) / COMPLETE).is_file()

    def current_version(self) -> str | None:
        """The version `current` points at, None without the link."""
        try:
            target = os.readlink(self.current)
        except FileNotFoundError:
            return None
        return Path(target).name

    def switch(self, version: str) -> None:
        """`current` -> releases/VERSION, atomically (a reader sees the old or the new)."""
        if not self.is_complete(version):
            raise LayoutError(f"{self.release_dir(version)} is not a complete release")
        new_link = self.root / "current.new"
        new_link.unlink(missing_ok=True)
        os.symlink(Path("releases") / version, new_link)
        os.replace(new_link, self.current)
        fsync_dir(self.root)

    def remove_release(self, version: str) -> None:
        """Deletes releases/VERSION (never the running one)."""
        if version == self.current_version():
            raise LayoutError(f"release {version} is the current one")
        shutil.rmtree(self.release_dir(version), ignore_errors=True)

    def prune(self, keep: tuple[str | None, ...]) -> list[str]:
        """Deletes every release but `keep` and the current one; the names deleted."""
        kept = {*keep, self.current_version()}
        gone = []
        if self.releases.is_dir():
            for folder in sorted(self.releases.iterdir()):
                if folder.name not in kept and not folder.is_symlink():
                    shutil.rmtree(folder, ignore_errors=True)
                    gone.append(folder.name)
        return gone
