"""The local authorisation list and the authorisation cache in SQLite.

Provides `AuthStore(conn)` over the tables of `AUTH_SCHEMA` (store migration 3), used
by `terminal.identification.auth.Authorizer`, and its results `ListUpdateResult` and `CachedToken`:
- the list: `list_version()`, `list_entry()`, `list_entries()`, `apply_list_update()`
  (Full replaces the list; a Differential upserts/removes and is refused with
  VersionMismatch, nothing changed, unless its version is newer than the list's);
- the cache: `cache_get()` (an expired answer is forgotten and not returned; a hit marks
  the token as used), `cache_put()` (keeps at most `max_entries` tokens, the least
  recently used going first), `cache_remove()`, `cache_tokens()`, `cache_clear()`.

Entries and answers are stored as the backend's JSON (terminal.backend.api models).
Use from one thread; every method is one short transaction on the connection it holds.
On failure: sqlite3 errors propagate after a rollback.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from terminal.backend.messages import AuthStatus, LocalListEntry, LocalListUpdate, TokenAuthResponse
from terminal.kernel.clock import iso_utc
from terminal.store.base import transaction


@dataclass(frozen=True)
class ListUpdateResult:
    """OCPP SendLocalList status: Accepted, VersionMismatch or Failed; `version` is the
    list's version afterwards."""

    status: str
    version: int
    reason: str | None = None


@dataclass(frozen=True)
class CachedToken:
    id_token: str
    response: TokenAuthResponse
    expires_at: datetime

    @property
    def accepted(self) -> bool:
        return self.response.status is AuthStatus.ACCEPTED


class AuthStore:
    """The local list and the cache in SQLite (tables of AUTH_SCHEMA). Use from one
    thread; every method is one short transaction."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    # ---- local list ----------------------------------------------------------------------

    def list_version(self) -> int:
        row = self.conn.execute("SELECT version FROM auth_list_version WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def list_entry(self, id_token: str) -> LocalListEntry | None:
        row = self.conn.execute("SELECT entry_json FROM auth_list WHERE id_token = ?",
                                (id_token,)).fetchone()
        return LocalListEntry.from_json(json.loads(row[0])) if row else None

    def list_entries(self) -> list[LocalListEntry]:
        rows = self.conn.execute("SELECT entry_json FROM auth_list ORDER BY id_token")
        return [LocalListEntry.from_json(json.loads(row[0])) for row in rows]

    def apply_list_update(self, update: LocalListUpdate, now: datetime) -> ListUpdateResult:
        with transaction(self.conn):
            current = self.list_version()
            if update.update_type == "Differential" and update.version <= current:
                return ListUpdateResult(
                    "VersionMismatch", current,
                    f"differential update version {update.version} is not newer than the "
                    f"list's version {current}")
            if update.update_type == "Full":
                self.conn.execute("DELETE FROM auth_list")
            for entry in update.entries:
                if entry.status is None:
                    self.conn.execute("DELETE FROM auth_list WHERE id_token = ?",
                                      (entry.id_token,))
                else:
                    self.conn.execute(
                        "INSERT OR REPLACE INTO auth_list (id_token, status, entry_json) "
                        "VALUES (?, ?, ?)",
                        (entry.id_token, str(entry.status), json.dumps(entry.to_json())))
            self.conn.execute(
                "INSERT OR REPLACE INTO auth_list_version (id, version, updated_at) "
                "VALUES (1, ?, ?)", (update.version, iso_utc(now)))
        return ListUpdateResult("Accepted", update.version)

    # ---- cache ---------------------------------------------------------------------------

    def cache_get(self, id_token: str, now: datetime) -> CachedToken | None:
        """The cached answer, marked as used; None (and forgotten) once expired."""
        with transaction(self.conn):
            row = self.conn.execute(
                "SELECT expires_at, response_json FROM auth_cache WHERE id_token = ?",
                (id_token,)).fetchone()
            if row is None:
                return None
            expires_at = datetime.fromisoformat(row[0])
            if now >= expires_at:
                self.conn.execute("DELETE FROM auth_cache WHERE id_token = ?", (id_token,))
                return None
            self.conn.execute(
                "UPDATE auth_cache SET last_used = (SELECT MAX(last_used) + 1 FROM auth_cache) "
                "WHERE id_token = ?", (id_token,))
        response = TokenAuthResponse.from_json(json.loads(row[1]))
        return CachedToken(id_token, response, expires_at)

    def cache_put(self, id_token: str, response: TokenAuthResponse, expires_at: datetime,
                  max_entries: int) -> None:
        """Remember an answer until `expires_at`; keep at most `max_entries` tokens."""
        with transaction(self.conn):
            self.conn.execute(
                "INSERT OR REPLACE INTO auth_cache "
                "(id_token, status, expires_at, response_json, last_used) VALUES "
                "(?, ?, ?, ?, (SELECT COALESCE(MAX(last_used), 0) + 1 FROM auth_cache))",
                (id_token, str(response.status), iso_utc(expires_at),
                 json.dumps(response.to_json())))
            self.conn.execute(
                "DELETE FROM auth_cache WHERE id_token IN (SELECT id_token FROM auth_cache "
                "ORDER BY last_used DESC LIMIT -1 OFFSET ?)", (max_entries,))

    def cache_remove(self, id_token: str) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM auth_cache WHERE id_token = ?", (id_token,))

    def cache_tokens(self) -> list[str]:
        """Cached tokens, least recently used first."""
        rows = self.conn.execute("SELECT id_token FROM auth_cache ORDER BY last_used")
        return [row[0] for row in rows]

    def cache_clear(self) -> None:
        with transaction(self.conn):
            self.conn.execute("DELETE FROM auth_cache")
