"""Where a release comes from: `fetch_release` over HTTP(S), or a folder (a USB stick)
holding a copy of the release repository (docs/updates.md, "Sources").

Provides:
- `Fetch`, the contract of `terminal.update.fetch.fetch_release(repository_url, version,
  metadata_dir, download_dir, installed_version) -> Path` (python-tuf: signatures,
  thresholds, expiry, rollback and freeze attacks; the tar `evterm-VERSION.tar`);
- `default_fetch()`: that function (the module is built beside this one; without it
  every update fails as DownloadFailed with a clear text, never silently);
- `served_folder(folder)`: a context manager serving a local folder on 127.0.0.1 over
  HTTP for the time of one fetch, so a repository on a USB stick is verified exactly
  like one on the operator's server;
- `failure_status(exc) -> (FirmwareStatus name, text)`: what a failed fetch is reported
  as: InvalidSignature, ExpiredMetadata, RollbackAttack -> InvalidSignature;
  RepositoryUnreachable, NoSuchRelease and anything else -> DownloadFailed. The fetch's
  errors are told apart by class name, so this module does not depend on python-tuf.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

Fetch = Callable[[str, str, Path, Path, str | None], Path]

SIGNATURE_ERRORS = ("InvalidSignature", "ExpiredMetadata", "RollbackAttack")


def default_fetch() -> Fetch:
    try:
        from terminal.update.fetch import fetch_release  # the release side (issue 21)
    except ImportError as exc:
        missing = str(exc)

        def unavailable(url: str, version: str, metadata_dir: Path, download_dir: Path,
                        installed: str | None) -> Path:
            raise RuntimeError(f"this evterm cannot verify releases ({missing})")
        return unavailable
    return fetch_release  # type: ignore[no-any-return]


def failure_status(exc: BaseException) -> tuple[str, str]:
    name = type(exc).__name__
    text = f"{name}: {exc}"[:300]
    if name in SIGNATURE_ERRORS:
        return "InvalidSignature", text
    return "DownloadFailed", text


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def served_folder(folder: Path) -> Iterator[str]:
    """The folder's URL on 127.0.0.1 while the block runs."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (is the USB stick mounted?)")
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="usb-repository", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
