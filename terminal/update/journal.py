"""The updater's journal: which step an update is at, written BEFORE the step is acted on,
and the FirmwareStatus reports for the backend (docs/updates.md, "Journal").

Provides `Journal(path)`: `load() -> JournalState` (an idle state when there is no
file) and `save(state)` (atomically: a temporary file, fsync, rename, fsync of the
folder; mode 0644 so the daemon, another user, can read the reports). `JournalState`
holds the step (`Step`), the request being carried out, the release that ran before it,
the downloaded tar, the check that failed, and the reports: each with a sequence
number, the request id, the OCPP FirmwareStatus name, the version, a short text and
the time. `report(...)` adds one (the newest `MAX_REPORTS` are kept); the daemon's relay
queues each into its outbox once (terminal/update/relay.py).

On failure: OSError from the file system; a journal that is not JSON or not this shape
raises `JournalError` naming the file (the updater then refuses to act: a technician
looks, docs/updates.md).
"""

from __future__ import annotations

import enum
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from terminal.update.layout import fsync_dir

MAX_REPORTS = 100


class JournalError(RuntimeError):
    pass


class Step(enum.StrEnum):
    IDLE = "idle"  # nothing under way
    DOWNLOADING = "downloading"  # fetch_release: download and verify
    INSTALLING = "installing"  # releases/VERSION being built
    WAITING_IDLE = "waiting_idle"  # installed; waiting until no session is open
    SWITCHING = "switching"  # current -> the new release, daemon restart
    CHECKING = "checking"  # the health check of the new release
    ROLLING_BACK = "rolling_back"  # current -> the previous release, daemon restart


@dataclass
class UpdateRequest:
    request_id: int | None
    version: str
    location: str | None = None  # the repository's URL
    folder: str | None = None  # or a local copy of it (a USB stick)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UpdateRequest:
        return cls(data.get("request_id"), str(data["version"]), data.get("location"),
                   data.get("folder"))


@dataclass
class JournalState:
    step: Step = Step.IDLE
    request: UpdateRequest | None = None
    previous: str | None = None
    tar: str | None = None
    failed_check: str | None = None
    seq: int = 0
    reports: list[dict[str, Any]] = field(default_factory=list)

    def report(self, status: str, info: str | None = None) -> None:
        request = self.request
        self.seq += 1
        self.reports.append({
            "seq": self.seq, "request_id": request.request_id if request else None,
            "status": status, "version": request.version if request else None,
            "info": info, "at": datetime.now(UTC).isoformat(timespec="milliseconds")})
        del self.reports[:-MAX_REPORTS]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["step"] = self.step.value
        return data

    @classmethod
    def from_json(cls, data: Any) -> JournalState:
        request = data.get("request")
        return cls(Step(data["step"]), UpdateRequest.from_json(request) if request else None,
                   data.get("previous"), data.get("tar"), data.get("failed_check"),
                   int(data.get("seq", 0)), list(data.get("reports", [])))


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> JournalState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return JournalState()
        try:
            return JournalState.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise JournalError(f"{self.path}: not an update journal ({exc}); see "
                               "docs/updates.md, \"A journal that cannot be read\"") from None

    def save(self, state: JournalState) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state.to_json(), handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        fsync_dir(self.path.parent)


def read_reports(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """(the step, the reports) of the journal at `path`, read-only; ("idle", []) without
    one. JournalError when it cannot be read."""
    state = Journal(path).load()
    return state.step.value, state.reports
