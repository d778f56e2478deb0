"""Where `evterm report` reads its facts: the journal (read-only) or an export bundle.

Provides `journal_facts(path, station_id, since, until)` and `bundle_facts(folder)`, each
a `Facts` (station id, time zone if known, and the three streams: sessions, taps, status
rows). The journal's sessions are read by `fast_read.iter_session_facts` (the facts of
`facts.iter_sessions`, faster). The journal's taps and status rows come through
`_journal_taps_statuses`, the one place that knows whether the journal has those
tables (migration 12 adds them): a journal without them gives none. A bundle is read
with `terminal.report.bundle`'s `read_bundle` when that module is installed, else
from its facts/sessions.jsonl, facts/taps.jsonl and facts/status.jsonl lines
(`facts.to_json`'s shape).

On failure: `ReportError` naming the file and what is wrong.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from terminal.report import facts
from terminal.report.facts import ReportError, SessionFact, StatusFact, TapFact
from terminal.report.fast_read import iter_session_facts


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
    sessions = iter_session_facts(conn, station_id, since, until)
    return Facts(station_id, None, _guarded(sessions, path), taps, statuses, conn.close)


def _journal_taps_statuses(conn: sqlite3.Connection, since: datetime,
                           until: datetime) -> tuple[Iterable[TapFact], Iterable[StatusFact]]:
    """The journal's taps and status rows; none when its schema has no such tables."""
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master "
                                             "WHERE type = 'table'")}
    iter_taps = getattr(facts, "iter_taps", None)
    iter_status = getattr(facts, "iter_status", None)
    taps = iter_taps(conn, since, until) if iter_taps and "taps" in tables else ()
    statuses = (iter_status(conn, since, until)
                if iter_status and "status_log" in tables else ())
    return taps, statuses


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
        from terminal.report.bundle import read_bundle  # type: ignore[import-not-found]
    except ImportError:
        return _jsonl_bundle(folder)
    try:
        bundle = read_bundle(folder)
    except OSError as exc:
        raise ReportError(f"bundle {folder}: {exc}") from None
    return Facts(bundle.station_id, bundle.timezone, bundle.sessions, bundle.taps,
                 bundle.statuses)


def _jsonl_bundle(folder: Path) -> Facts:
    sessions = folder / "facts" / "sessions.jsonl"
    if not sessions.is_file():
        raise ReportError(f"bundle {folder}: has no facts/sessions.jsonl")
    first = next(_lines(sessions, facts.session_from_json), None)
    return Facts(first.station_id if first else None, None,
                 _lines(sessions, facts.session_from_json),
                 _lines(folder / "facts" / "taps.jsonl", facts.tap_from_json),
                 _lines(folder / "facts" / "status.jsonl", facts.status_from_json))


def _lines(path: Path, parse: Callable[[dict[str, Any]], Any]) -> Iterator[Any]:
    if not path.is_file():
        return
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except ValueError:
                    raise ReportError(f"{path} line {number}: not JSON") from None
                if not isinstance(data, dict):
                    raise ReportError(f"{path} line {number}: not a JSON object")
                yield parse(data)
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot be read ({exc})") from None
