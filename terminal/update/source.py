"""Where a release comes from, and what a failed fetch is reported as (docs/updates.md,
"The board").

Provides:
- `Fetch`, the contract of `terminal.update.fetch.fetch_release(repository_url, version,
  metadata_dir, download_dir, installed_version) -> Path` (python-tuf: signatures and
  thresholds, expiry, rollback and freeze attacks; the tar `evterm-VERSION.tar`); the
  repository is an http(s) URL or a folder (a copy on a USB stick, read as files);
- `default_fetch()`: that function (python-tuf is imported only when an update runs;
  an import that fails is a failed fetch, reported, never a traceback);
- `failure_status(exc) -> (FirmwareStatus name, text)`: InvalidSignature,
  ExpiredMetadata, RollbackAttack -> InvalidSignature; RepositoryUnreachable,
  NoSuchRelease, TrustedRootMissing and anything else -> DownloadFailed. The fetch's
  errors are told apart by class name, so a stand-in fetch (tests) reports the same.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Fetch = Callable[[str, str, Path, Path, str | None], Path]

SIGNATURE_ERRORS = ("InvalidSignature", "ExpiredMetadata", "RollbackAttack")


def default_fetch() -> Fetch:
    def fetch(url: str, version: str, metadata_dir: Path, download_dir: Path,
              installed: str | None) -> Path:
        from terminal.update.fetch import fetch_release  # imports python-tuf

        return fetch_release(url, version, metadata_dir, download_dir, installed)
    return fetch


def failure_status(exc: BaseException) -> tuple[str, str]:
    name = type(exc).__name__
    text = f"{name}: {exc}"[:300]
    if name in SIGNATURE_ERRORS:
        return "InvalidSignature", text
    return "DownloadFailed", text
