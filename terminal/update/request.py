"""An update asked for, handed from whoever asks to the updater (docs/updates.md).

The daemon runs as its own user and cannot write the releases; it writes the request
as a file in its state folder (`[station] state_dir`/update-request.json) and the
updater, run as root by systemd when the file appears (evterm-update.path), takes it:
`take_request(state_dir)` reads and deletes it. `write_request(state_dir, request)`
writes it atomically (temporary file, fsync, rename). `submit(state_dir, root_dir,
request)` is what the backend's command and the service menu call: refused
(`UpdateRefused(field, reason)`) for the version already running, while the updater's
journal says an update is under way, or while another request waits; else written.

On failure: OSError from the file system; `take_request` drops a file that is not a
request and raises RequestFileError naming it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from terminal import __version__
from terminal.update.journal import Journal, JournalError, Step, UpdateRequest
from terminal.update.layout import Layout, fsync_dir

REQUEST_FILE = "update-request.json"


class RequestFileError(ValueError):
    pass


class UpdateRefused(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def request_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / REQUEST_FILE


def write_request(state_dir: str | Path, request: UpdateRequest) -> Path:
    path = request_path(state_dir)
    temporary = path.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(request), handle, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    fsync_dir(path.parent)
    return path


def take_request(state_dir: str | Path) -> UpdateRequest | None:
    """The waiting request (its file deleted), or None."""
    path = request_path(state_dir)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    path.unlink(missing_ok=True)
    try:
        return UpdateRequest.from_json(json.loads(text))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RequestFileError(f"{path}: not an update request ({exc}); deleted") from None


def submit(state_dir: str | Path, root_dir: str | Path, request: UpdateRequest) -> Path:
    """The request written for the updater, or UpdateRefused naming why not."""
    if request.version == __version__:
        raise UpdateRefused("version", f"{request.version} is already running")
    try:
        state = Journal(Layout(root_dir).journal_path).load()
    except JournalError as exc:
        raise UpdateRefused("request", f"the update journal cannot be read: {exc}") from None
    if state.step is not Step.IDLE and state.request is not None:
        raise UpdateRefused("request", f"an update to {state.request.version} is under way "
                            f"({state.step.value})")
    if request_path(state_dir).exists():
        raise UpdateRefused("request", "another update request is waiting")
    return write_request(state_dir, request)
