"""Where `evterm report` (and `evterm report parquet`) read facts: the journal
(read-only) or an export bundle.

Provides `journal_facts(path, station_id, since, until)` and `bundle_facts(folder)`, each
a `Facts` (station id, time zone and a bundle's export period if known, and the three
streams: sessions, taps, status rows). The journal's sessions, taps and status rows are
`facts.iter_sessions`, `facts.iter_taps` and `facts.iter_status`; a bundle is read with
`terminal.report.bundle.read_bundle` (its facts/*.jsonl lines).

On failure: `ReportError` naming the file and what is wrong.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from terminal.report import facts
from terminal.report.bundle import read_bundle
from terminal.report.facts import ReportError, SessionFact, StatusFact, TapFact


@dataclass
class Facts:
    """The three streams and what the source says of itself: a bundle its station, time
    zone and export period (since/until), a journal nothing (None)."""

    station_id: str | None
    timezone: str | None
    sessions: Iterable[SessionFact]
    taps: Iterable[TapFact]
    statuses: Iterable[StatusFact]
    close: Callable[[], None] = lambda: None
    since: datetime | None = None
    until: datetime | None = None


def journal_facts(path: Path, station_id: str, since: datetime | None,
                  until: datetime | None) -> Facts:
    """The journal's facts of [since, until) (None: unbounded)."""
    conn = facts.open_read_only(path)
    sessions = facts.iter_sessions(conn, station_id, since, until)
    return Facts(station_id, None, _guarded(sessions, path), facts.iter_taps(conn, since, until),
                 facts.iter_status(conn, since, until), conn.close)


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
                 bundle.statuses, since=_bundle_time(bundle.since, "since"),
                 until=_bundle_time(bundle.until, "until"))


def _bundle_time(text: str, name: str) -> datetime | None:
    """A time of the bundle's station.json (empty: none)."""
    try:
        return datetime.fromisoformat(text).astimezone(UTC) if text else None
    except ValueError:
        raise ReportError(f"station.json: {name} {text!r} is not an ISO-8601 time") from None
