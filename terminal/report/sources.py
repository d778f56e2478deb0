"""Where `evterm report` reads its facts: the journal (read-only) or an export bundle.

Provides `journal_facts(path, station_id, since, until)` and `bundle_facts(folder)`, each
a `Facts` (station id, time zone if known, and the three streams: sessions, taps, status
rows). The journal's sessions, taps and status rows are `facts.iter_sessions`,
`facts.iter_taps` and `facts.iter_status`; a bundle is read with
`terminal.report.bundle.read_bundle` (its facts/*.jsonl lines).

On failure: `ReportError` naming the file and what is wrong.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from terminal.report import facts
from terminal.report.bundle import read_bundle
from terminal.report.facts import ReportError, SessionFact, StatusFact, TapFact


@dataclass
class Facts:
    station_id: str | None
    timezone: str | None
    sessions: Iterable[SessionFact]
    taps: Iterable[TapFact]
    statuses: Iterable[StatusFact]
    close: Callable[[], None] = lambda: None


def journal_facts(path: Path, station_id: str, since: datetime, until: datetime) -> Facts:
    conn = facts.open_read_only(path)
    taps, statuses = _journal_taps_statuses(conn, since, until)
    sessions = facts.iter_sessions(conn, station_id, since, until)
    return Facts(station_id, None, _guarded(sessions, path), taps, statuses, conn.close)


def _journal_taps_statuses(conn: sqlite3.Connection, since: datetime,
                           until: datetime) -> tuple[Iterable[TapFact], Iterable[StatusFact]]:
    """The journal's taps and connector status rows of the period."""
    return facts.iter_taps(conn, since, until), facts.iter_status(conn, since, until)


def _guarded(rows: Iterator[Any], path: Path) -> Iterator[Any]:
    """The rows; a database error while streaming becomes a ReportError naming the file."""
    try:
        yield from rows
    except sqlite3.Error as exc:
        raise ReportError(f"journal {path}: cannot be read ({exc})") from None


def bundle_facts(folder: Path) -> Facts:
    if not folder.is_dir():
        raise ReportError(f"bundle {folder}: is not a folder")
    try:
        bundle = read_bundle(folder)
    except OSError as exc:
        raise ReportError(f"bundle {folder}: {exc}") from None
    return Facts(bundle.station_id, bundle.timezone, bundle.sessions, bundle.taps,
                 bundle.statuses)
