"""What the service menu needs from the daemon, in one place (docs/service.md).

Provides:
- `DaemonPort`: the protocol every module of terminal/service/ types its `daemon` as,
  listing exactly the daemon's attributes and methods the service menu uses (the
  daemon itself is never imported here: it imports the service menu).
- `SeenPort`: the part of the daemon's last poll (`daemon.seen`) the menu reads.
- `publish_state(daemon)` and `session_receipt(daemon, request)`: the only calls into
  the daemon's private names (`_publish_state`, `_api_receipt`), so renaming them
  touches this file only; `audit(daemon, kind, detail)`: one audit row in the journal.

On failure: nothing here raises of its own; the daemon's errors (e.g. `RequestError` of
a receipt request) reach the caller unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from drivers.charger import ChargerStatus
    from drivers.meter.monitor import MeterMonitor, PollOutcome
    from terminal.config import Config
    from terminal.kernel.clock import Clock
    from terminal.session import Event, SessionState, Step
    from terminal.store import AsyncStore


class SeenPort(Protocol):
    """The daemon's last poll: what the meter and the charger said."""

    @property
    def outcome(self) -> PollOutcome | None: ...

    @property
    def charger(self) -> ChargerStatus | None: ...

    @property
    def charger_error(self) -> str | None: ...


class DaemonPort(Protocol):
    """The daemon as the service menu uses it; nothing else of it is touched."""

    @property
    def config(self) -> Config: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def store(self) -> AsyncStore:
        """The journal on its worker thread (`call`, and `store` for its path, schema
        version and audit rows)."""
        ...

    @property
    def state(self) -> SessionState:
        """The session machine's state (phase, session id, output wanted)."""
        ...

    @property
    def seen(self) -> SeenPort: ...

    @property
    def monitor(self) -> MeterMonitor:
        """The meter's plausibility monitor (fault, last good reading, counters)."""
        ...

    @property
    def storage_ok(self) -> Callable[[], bool]:
        """The backend link's disk check."""
        ...

    @property
    def link_online(self) -> Callable[[], bool]:
        """Whether the backend link is up."""
        ...

    @property
    def after_commit(self) -> Callable[[], None] | None:
        """Wakes the outbox pump, when one runs."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The status snapshot (docs/local-api.md)."""
        ...

    def accepting_sessions(self) -> bool: ...

    def refusal_reason(self) -> str | None: ...

    async def apply(self, event: Event) -> Step:
        """One event through the session machine, journaled."""
        ...

    def request_restart(self, delay_s: float = ...) -> None:
        """Stop cleanly in a moment and exit with RESTART_EXIT_CODE."""
        ...

    def _publish_state(self) -> dict[str, Any]:
        """Publish the status snapshot to every client and return it."""
        ...

    async def _api_receipt(self, request: dict[str, Any]) -> dict[str, Any]:
        """The local API's `receipt` op: a session's receipt."""
        ...


def publish_state(daemon: DaemonPort) -> dict[str, Any]:
    """The status snapshot, published to every local-API client."""
    return daemon._publish_state()


async def session_receipt(daemon: DaemonPort, request: dict[str, Any]) -> dict[str, Any]:
    """A session's receipt as the local API's `receipt` op gives it (`session_id`,
    `language`); RequestError as that op raises it."""
    return await daemon._api_receipt(request)


async def audit(daemon: DaemonPort, kind: str, detail: dict[str, Any]) -> int:
    """One row of the audit log (queued for the backend), at the daemon clock's now."""
    store = daemon.store
    audit_id: int = await store.call(store.store.add_audit, kind, detail, daemon.clock.now())
    return audit_id
