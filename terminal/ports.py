"""The narrow ports through which the parts around the session see the daemon.

Taps, backend commands and the service menu depend on these protocols, never on
`terminal.daemon.Daemon` or its members:
- `SessionPort`: the session's state, `apply(event)` (step -> commit -> act), why new
  sessions are refused now, and publishing to the local API's clients.
- `Gate`: something that may refuse new sessions (out of service, storage), asked by the
  daemon's `refusal_reason()`.
- `LinkState`: the backend link as the daemon sees it: online, storage fine for new
  sessions, wake the outbox pump after a commit.
"""

from __future__ import annotations

from typing import Any, Protocol

from terminal.session import Event, SessionState, Step

RESTART_EXIT_CODE = 75  # the daemon's exit code after a restart asked for (systemd restarts it)


class SessionPort(Protocol):
    @property
    def state(self) -> SessionState: ...

    # the journal cannot be written: the output is held off and new sessions refused
    journal_failed: bool

    async def apply(self, event: Event) -> Step: ...

    def refusal_reason(self) -> str | None: ...

    def publish(self, message: dict[str, Any]) -> None: ...

    def publish_state(self) -> dict[str, Any]:
        """Send the status snapshot to every local-API client; returns it."""
        ...


class Clients(Protocol):
    """The local API's clients (terminal.localapi.LocalApi)."""

    def publish(self, message: dict[str, Any]) -> None: ...

    def publish_state(self) -> dict[str, Any]: ...


class Gate(Protocol):
    def refusal(self) -> str | None:
        """Why new sessions are refused now; None while they are accepted."""
        ...


class LinkState(Protocol):
    @property
    def online(self) -> bool: ...

    def storage_ok(self) -> bool: ...

    def wake(self) -> None: ...

    @property
    def stats(self) -> dict[str, int]:
        """The link's counters, for the diagnostics."""
        ...
