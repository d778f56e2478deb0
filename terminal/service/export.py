"""The export bundle: what a technician takes away on a USB stick (docs/service.md,
"The export bundle").

Provides `Export(deps, diagnostics)`; `Export.run(folder)` writes the folder
`evterm-diag-<station>-<UTC time>` (a number appended when it exists) with
`BUNDLE_FILES`: the diagnostics, the configuration with secrets masked, the journal's
integrity check and row counts, the latest audit rows and sessions, the latest Z-reports
of the end-of-day closings (docs/reconciliation.md), the OCPI CDRs of those sessions
(`cdrs.json`, docs/cdr.md), the end of the log file, and the report's facts of the last
`[report] export_days` days in `facts/` (terminal.report.bundle, docs/reports.md), every
text scrubbed of card numbers. The bundle is written only below
`[service] export_allowed_root` (the default folder is that root itself), in a worker
thread, each file synced; it is then scanned for key material, PIN hashes and card
numbers (terminal.service.redaction) before it is left in place.

On failure: `RequestError` naming `folder:` and nothing left behind: a folder outside
the root, a bundle that cannot be written (OSError), or one in which the scan finds a
secret (deleted, logged as critical, export refused). An unreadable or missing log file
is not a failure: log.txt then says why it holds no log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from terminal import __version__
from terminal.kernel.clock import iso_utc
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.redact import scrub
from terminal.localapi import RequestError
from terminal.report.bundle import FACTS_DIR, Pseudonyms, write_facts
from terminal.report.facts import ReportError
from terminal.service.diagnostics import Diagnostics
from terminal.service.port import ServiceDeps
from terminal.service.redaction import (
    redact_config,
    render_toml,
    scan_folder,
    scrub_json,
    secret_texts,
)
from terminal.store.closings import ClosingStore
from terminal.store.service_tables import database_report

log = get_logger("service")

EXPORT_AUDIT_ROWS = 500
EXPORT_SESSIONS = 100
EXPORT_LOG_BYTES = 1_048_576
EXPORT_Z_REPORTS = 31
BUNDLE_FILES = ("diagnostics.json", "config.redacted.toml", "db-integrity.txt", "audit.json",
                "log.txt", "sessions.json", "z-reports.json", "cdrs.json", FACTS_DIR)


class Export:
    """The `export` action's work: the bundle in a folder below the allowed root."""

    def __init__(self, deps: ServiceDeps, diagnostics: Diagnostics) -> None:
        self.deps = deps
        self.config = deps.config.service
        self.clock = deps.clock
        self.diagnostics = diagnostics


    async def run(self, folder: str | None) -> dict[str, Any]:
        """Write the bundle in `folder` (None: export_allowed_root itself); the action's
        reply {path, files, bytes} and its audit detail (`_audit`)."""
        root = Path(self.config.export_allowed_root).resolve()
        folder = str(root) if folder is None else folder  # default: the USB stick itself
        target = Path(folder)
        if not target.is_absolute() or not target.resolve().is_relative_to(root):
            raise RequestError(f"folder: {folder} is not under export_allowed_root {root}")
        deps = self.deps
        now = self.clock.now()
        diagnostics = await self.diagnostics.report()
        audit = await deps.store.call(self.deps.tables.audit, EXPORT_AUDIT_ROWS)
        sessions = await deps.store.call(self.deps.tables.sessions, EXPORT_SESSIONS)
        pseudonyms = Pseudonyms()  # one per bundle: the same token, the same pseudonym
        cdrs = await deps.store.call(cdrs_json, deps.store.store, sessions, pseudonyms)
        closings = ClosingStore(deps.store.store)
        z_reports = [dict(r["report"], status=r["status"]) for r in
                     await deps.store.call(closings.recent, EXPORT_Z_REPORTS)]
        station = re.sub(r"[^A-Za-z0-9_.-]+", "-", deps.config.station.id).strip("-")
        name = f"evterm-diag-{station or 'station'}-{now.strftime('%Y%m%dT%H%M%SZ')}"
        try:
            path, files, size = await asyncio.to_thread(
                self._write_bundle, target.resolve(), name, diagnostics, audit, sessions,
                z_reports, now, cdrs, pseudonyms)
        except OSError as exc:
            raise RequestError(f"folder: cannot write the bundle in {folder}: "
                               f"{exc.strerror or exc}") from None
        except ReportError as exc:
            raise RequestError(f"folder: the report's facts cannot be exported: {exc}"
                               ) from None
        return {"path": str(path), "files": files, "bytes": size,
                "_audit": {"path": str(path)}}

    def _write_bundle(self, target: Path, name: str, diagnostics: dict[str, Any],
                      audit: list[dict[str, Any]], sessions: list[dict[str, Any]],
                      z_reports: list[dict[str, Any]], now: datetime, cdrs: str,
                      pseudonyms: Pseudonyms) -> tuple[Path, list[str], int]:
        """Write the bundle (worker thread); scanned before it stays."""
        config = self.deps.config
        target.mkdir(parents=True, exist_ok=True)
        bundle = target / name
        number = 1
        while bundle.exists():
            number += 1
            bundle = target / f"{name}-{number}"
        bundle.mkdir()
        header = (f"evterm {__version__} configuration of {config.station.id} as running "
                  f"at {iso_utc(now)}\nsecret values masked (***); key files not included")
        contents = {
            "diagnostics.json": _json(diagnostics),
            "config.redacted.toml": scrub(render_toml(redact_config(config), header)),
            "db-integrity.txt": scrub(database_report(self.deps.store.store.path)),
            "audit.json": _json(audit),
            "log.txt": scrub(self._log_text()),
            "sessions.json": _json(sessions),
            "z-reports.json": _json(z_reports),
            "cdrs.json": scrub(cdrs),
        }
        try:
            for file_name, text in contents.items():
                _write_synced(bundle / file_name, text)
            self._write_facts(bundle, now, pseudonyms)
            problems = scan_folder(bundle, secret_texts(config))
        except BaseException:
            shutil.rmtree(bundle, ignore_errors=True)
            raise
        if problems:
            shutil.rmtree(bundle, ignore_errors=True)
            log.critical("export refused: the bundle held secrets",
                         extra=fields(problems="; ".join(problems)))
            raise RequestError("folder: export refused, the bundle would contain "
                               f"secrets ({'; '.join(problems)}); nothing was left there")
        with contextlib.suppress(OSError):
            fd = os.open(bundle, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        return bundle, [*contents, FACTS_DIR], size

    def _write_facts(self, bundle: Path, now: datetime, pseudonyms: Pseudonyms) -> None:
        """facts/: the report's facts of the last `[report] export_days` days
        (terminal.report.bundle), streamed from the journal on a read-only connection."""
        config = self.deps.config
        write_facts(bundle / FACTS_DIR, self.deps.store.store.path,
                    station_id=config.station.id, timezone=config.station.timezone,
                    now=now, days=config.report.export_days, pseudonyms=pseudonyms)

    def _log_text(self) -> str:
        path = self.config.log_file
        if not path:
            return ("No log file is configured ([service] log_file). On the terminal the "
                    "log is in the journal: journalctl -u evterm --since -2d\n")
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                size = handle.tell()
                handle.seek(max(0, size - EXPORT_LOG_BYTES))
                data = handle.read()
        except OSError as exc:
            return f"The log file {path} cannot be read: {exc.strerror or exc}\n"
        text = data.decode("utf-8", errors="replace")
        if size > EXPORT_LOG_BYTES:
            text = f"[the last {EXPORT_LOG_BYTES} bytes of {path}]\n" + \
                text.split("\n", 1)[-1]
        return text


def cdrs_json(store: Any, sessions: list[dict[str, Any]], pseudonyms: Pseudonyms) -> str:
    """The OCPI CDRs of the bundle's sessions as one JSON array, their numbers exact
    (docs/cdr.md), the token (`cdr_token.uid`, `contract_id`) replaced by this bundle's
    pseudonym of it (a bundle holds no card token); runs on the store's thread."""
    return "[" + ",\n".join(_pseudonymised(text, pseudonyms)
                            for text in store.cdrs(s["id"] for s in sessions)) + "]\n"


def _pseudonymised(cdr_text: str, pseudonyms: Pseudonyms) -> str:
    """The CDR's text with its token fields' values replaced (the rest byte for byte: its
    numbers stay as the backend got them)."""
    token = json.loads(cdr_text).get("cdr_token") or {}
    for name in ("uid", "contract_id"):
        value = token.get(name)
        if isinstance(value, str):
            replacement = json.dumps(pseudonyms(value))
            cdr_text = re.sub(rf'("{name}"\s*:\s*){re.escape(json.dumps(value))}',
                              lambda m, new=replacement: m.group(1) + new, cdr_text)
    return cdr_text


def _json(value: Any) -> str:
    return json.dumps(scrub_json(value), indent=2, sort_keys=True, default=str) + "\n"


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
