"""What the service menu depends on, given to it by the composition root
(terminal.station); it never sees the daemon itself.

Provides:
- `ServiceDeps`: the configuration, the clock, the journal, the session port
  (terminal.ports.SessionPort: state, apply, refusal reason, publish), the last poll
  (terminal.observation.Observation) and the meter's monitor, the backend link
  (terminal.ports.LinkState), the out-of-service state, the status snapshot, the
  receipt op of the driver's local API, the restart request and the end-of-day closing
  (terminal.payment.closing, None without card payment);
- `OutOfService`: {since, by, reason} while a technician has set the terminal out of
  service, else None; a gate (terminal.ports.Gate) the daemon asks before new sessions;
- `ReaderStatus`: the card readers as the diagnostics show them;
- `ServiceDeps.tables`: the service menu's SQL (terminal.store.service_tables);
- `audit(deps, kind, detail)`: one audit row in the journal (queued for the backend).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from terminal.store.service_tables import ServiceStore

if TYPE_CHECKING:
    from drivers.meter.monitor import MeterMonitor
    from terminal.config import Config
    from terminal.kernel.clock import Clock
    from terminal.observation import Observation
    from terminal.payment.closing import Closings
    from terminal.ports import LinkState, SessionPort
    from terminal.store import AsyncStore


class OutOfService:
    def __init__(self) -> None:
        self.value: dict[str, str] | None = None

    def refusal(self) -> str | None:
        """Why new sessions are refused by the service menu (None: they are not)."""
        return None if self.value is None else f"out of service: {self.value['reason']}"


class ReaderStatus(Protocol):
    def states(self) -> dict[str, str]: ...

    def last_taps(self) -> dict[str, dict[str, Any]]: ...

    @property
    def dropped_taps(self) -> int: ...


@dataclass(frozen=True)
class ServiceDeps:
    config: Config
    clock: Clock
    store: AsyncStore
    session: SessionPort
    observation: Observation
    monitor: MeterMonitor
    link: LinkState
    out_of_service: OutOfService
    snapshot: Callable[[], dict[str, Any]]
    receipts: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
    restart: Callable[[], None]
    closings: Closings | None = None  # the end-of-day closing, with card payment

    @property
    def tables(self) -> ServiceStore:
        """The service menu's queries on the journal (run them through `store.call`)."""
        return ServiceStore(self.store.store)


async def audit(deps: ServiceDeps, kind: str, detail: dict[str, Any]) -> int:
    """One row of the audit log (queued for the backend), at the clock's now."""
    store = deps.store
    audit_id: int = await store.call(store.store.add_audit, kind, detail, deps.clock.now())
    return audit_id
