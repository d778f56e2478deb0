"""The report's facts in the export bundle: written on the board, read wherever the
bundle is taken (docs/reports.md, "The export bundle's facts").

Provides:
- `write_facts(folder, journal, *, station_id, timezone, now, days)`: the folder
  `facts/` of a bundle: `sessions.jsonl`, `taps.jsonl`, `status.jsonl` (one
  `facts.to_json` object a line, oldest first, of the `days` days before `now`) and
  `station.json` ({"station_id", "timezone", "exported_at", "since", "until",
  "currency"}). Streamed from a read-only connection of its own (a board holds years
  of rows; the journal's writer is not held up). Id tokens are replaced by pseudonyms
  (`tok-` and 16 letters, keyed by a random key used for this bundle only): the same
  token has the same pseudonym throughout the bundle (repeated declines of one card
  are still found), and no card token leaves the board. Every line is scrubbed of
  anything that could be a card number. Returns the files' names (below the bundle).
- `read_bundle(folder) -> BundleFacts`: the facts of a bundle (its folder, or its
  `facts/` folder): station id, time zone, currency, the period, and `sessions`,
  `taps`, `statuses`: iterables of `SessionFact`, `TapFact`, `StatusFact` that read
  their file line by line each time they are iterated (never all in memory).

On failure: `ReportError` naming the folder that is not a bundle (no facts/station.json,
or one without the fields), or the file and line number of a line that cannot be read;
`write_facts` lets OSError and ReportError propagate (the export removes the bundle).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, Generic, TypeVar

from terminal.kernel.redact import scrub
from terminal.report.facts import (
    ReportError,
    SessionFact,
    StatusFact,
    TapFact,
    iter_sessions,
    iter_status,
    iter_taps,
    open_read_only,
    session_from_json,
    status_from_json,
    tap_from_json,
    to_json,
    utc_iso,
)

FACTS_DIR = "facts"
STATION_FILE = "station.json"
SESSIONS_FILE = "sessions.jsonl"
TAPS_FILE = "taps.jsonl"
STATUS_FILE = "status.jsonl"
STATION_FIELDS = ("station_id", "timezone", "exported_at", "since", "until", "currency")

F = TypeVar("F", SessionFact, TapFact, StatusFact)


class Pseudonyms:
    """Id tokens -> `tok-` + 16 letters, keyed by a key of this bundle only."""

    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or secrets.token_bytes(32)

    def __call__(self, token: str | None) -> str | None:
        if token is None:
            return None
        digest = hmac.new(self.key, token.encode(), hashlib.sha256).digest()[:8]
        # letters only: a pseudonym can never look like a card number
        return "tok-" + "".join(chr(97 + (b >> 4)) + chr(97 + (b & 15)) for b in digest)


def write_facts(folder: Path, journal: Path, *, station_id: str, timezone: str,
                now: datetime, days: int, pseudonyms: Pseudonyms | None = None) -> list[str]:
    """Write `folder` (the bundle's facts/); the files' names relative to the bundle."""
    pseudonym = pseudonyms or Pseudonyms()
    since = now - timedelta(days=days)
    folder.mkdir()
    conn = open_read_only(journal)
    currency = ""
    try:
        with _synced(folder / SESSIONS_FILE) as out:
            for session in iter_sessions(conn, station_id, since, now):
                currency = session.currency or currency
                _line(out, replace(session, id_token=pseudonym(session.id_token)))
        with _synced(folder / TAPS_FILE) as out:
            for tap in iter_taps(conn, since, now):
                _line(out, replace(tap, token=pseudonym(tap.token)))
        with _synced(folder / STATUS_FILE) as out:
            for status in iter_status(conn, since, now):
                _line(out, status)
    finally:
        conn.close()
    station = {"station_id": station_id, "timezone": timezone,
               "exported_at": utc_iso(now), "since": utc_iso(since), "until": utc_iso(now),
               "currency": currency}
    with _synced(folder / STATION_FILE) as out:
        out.write(json.dumps(station, indent=2, sort_keys=True) + "\n")
    return [f"{FACTS_DIR}/{name}" for name in
            (STATION_FILE, SESSIONS_FILE, TAPS_FILE, STATUS_FILE)]


@contextmanager
def _synced(path: Path) -> Iterator[IO[str]]:
    """A text file opened for writing, flushed and fsynced before it is closed."""
    with open(path, "w", encoding="utf-8") as handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def _line(out: IO[str], fact: SessionFact | TapFact | StatusFact) -> None:
    out.write(scrub(json.dumps(to_json(fact), sort_keys=True, separators=(",", ":"))) + "\n")



# ---- reading ------------------------------------------------------------------------


class FactLines(Generic[F]):
    """The facts of one .jsonl file, read line by line at each iteration."""

    def __init__(self, path: Path, parse: Callable[[dict[str, Any]], F]) -> None:
        self.path = path
        self.parse = parse

    def __iter__(self) -> Iterator[F]:
        try:
            handle = open(self.path, encoding="utf-8")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise ReportError(f"{self.path}: cannot be read ({exc.strerror or exc})") from None
        with handle:
            number = 0
            try:
                for number, text in enumerate(handle, start=1):  # noqa: B007
                    if not text.strip():
                        continue
                    data = json.loads(text)
                    if not isinstance(data, dict):
                        raise ValueError("not a JSON object")
                    yield self.parse(data)
            except (ValueError, ReportError) as exc:
                raise ReportError(f"{self.path}, line {number}: {exc}") from None


@dataclass(frozen=True)
class BundleFacts:
    """A bundle's facts: who, where, which period, and the rows (re-iterable)."""

    folder: Path
    station_id: str
    timezone: str
    currency: str
    exported_at: str
    since: str
    until: str
    sessions: FactLines[SessionFact]
    taps: FactLines[TapFact]
    statuses: FactLines[StatusFact]


def read_bundle(folder: str | Path) -> BundleFacts:
    """The facts of the export bundle in `folder` (the bundle or its facts/ folder)."""
    base = Path(folder)
    facts = base / FACTS_DIR if (base / FACTS_DIR).is_dir() else base
    station_path = facts / STATION_FILE
    if not station_path.is_file():
        raise ReportError(f"{base}: not an export bundle (no {FACTS_DIR}/{STATION_FILE}; "
                          "the service menu's Export writes one)")
    try:
        station = json.loads(station_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(f"{station_path}: cannot be read ({exc})") from None
    if not isinstance(station, dict):
        raise ReportError(f"{station_path}: not a JSON object")
    missing = [name for name in STATION_FIELDS if not isinstance(station.get(name), str)]
    if missing:
        raise ReportError(f"{station_path}: missing or not text: {', '.join(missing)}")
    for name in (SESSIONS_FILE, TAPS_FILE, STATUS_FILE):
        if not (facts / name).is_file():
            raise ReportError(f"{base}: not a complete export bundle (no {FACTS_DIR}/{name})")
    return BundleFacts(
        folder=facts, station_id=station["station_id"], timezone=station["timezone"],
        currency=station["currency"], exported_at=station["exported_at"],
        since=station["since"], until=station["until"],
        sessions=FactLines(facts / SESSIONS_FILE, session_from_json),
        taps=FactLines(facts / TAPS_FILE, tap_from_json),
        statuses=FactLines(facts / STATUS_FILE, status_from_json))
