"""The terminal's interface to the operator's backend (CSMS + payment gateway).

Provides:
- `Backend`: the protocol the daemon calls (token auth, pre-authorisation, capture,
  void; idempotent by reference; the gateway's settlement batch for the end-of-day
  closing, terminal.backend.closing_messages) and `BackendListener`: what the backend pushes
  (refunds, local list updates, connectivity changes). The messages are those of
  terminal.backend.messages.
- `BackendUnavailable(reason)`: the backend cannot be reached or did not answer in
  time; the caller applies its offline policy.
- `OfflineBackend` (`[backend] kind = none`: always offline) and `NoListener` (drops
  every push).
- For the links (terminal.backend.loopback, terminal.backend.mqtt over MQTT):
  `RequestsOverOneChannel`, the four requests as typed calls over one `_request`, with
  the state every link keeps (listener, online flag, pending requests), and
  `deliver_in_order`, which runs listener calls one at a time in arrival order.

Which link a terminal uses is decided by terminal.backend.factory (`[backend] kind`);
this module imports no link.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from terminal.backend.closing_messages import SettlementBatch, SettlementBatchRequest
from terminal.backend.messages import (
    CaptureRequest,
    CaptureResponse,
    LocalListUpdate,
    PreauthRequest,
    PreauthResponse,
    Refund,
    TokenAuthRequest,
    TokenAuthResponse,
    VoidRequest,
)
from terminal.kernel.logsetup import get_logger

log = get_logger("backend")


class BackendUnavailable(Exception):
    """The backend cannot be reached or did not answer in time."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class BackendListener(Protocol):
    """What the backend pushes to the terminal; called on the event loop, in order."""

    async def on_refund(self, refund: Refund) -> None: ...

    async def on_local_list(self, update: LocalListUpdate) -> None: ...

    async def on_connectivity(self, online: bool) -> None: ...


class Backend(Protocol):
    """The operator's backend as the daemon sees it. Every request raises
    BackendUnavailable when the backend cannot be reached or does not answer in time."""

    async def authorize_token(self, req: TokenAuthRequest) -> TokenAuthResponse: ...

    async def preauthorize(self, req: PreauthRequest) -> PreauthResponse: ...

    async def capture(self, req: CaptureRequest) -> CaptureResponse:
        """Idempotent by req.reference: a repeat gets the first answer."""
        ...

    async def void(self, req: VoidRequest) -> CaptureResponse:
        """Idempotent by req.reference."""
        ...

    async def settlement_batch(self, req: SettlementBatchRequest) -> SettlementBatch:
        """The gateway's record of this station's payments in a period (read only)."""
        ...

    def set_listener(self, listener: BackendListener) -> None: ...

    @property
    def online(self) -> bool: ...

    def storage_ok(self) -> bool:
        """Whether the disk holds enough room to queue a new session's messages."""
        ...

    def wake(self) -> None:
        """Something was queued in the outbox: send it now."""
        ...

    @property
    def stats(self) -> dict[str, int]:
        """The link's counters, for the diagnostics."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class NoListener:
    """Drops every push (the default listener)."""

    async def on_refund(self, refund: Refund) -> None:
        return None

    async def on_local_list(self, update: LocalListUpdate) -> None:
        return None

    async def on_connectivity(self, online: bool) -> None:
        return None


class OfflineBackend:
    """No backend (`[backend] kind = none`): always offline; the offline policy decides."""

    reason = "no backend configured ([backend] kind = none)"

    def __init__(self) -> None:
        self.listener: BackendListener = NoListener()

    @property
    def online(self) -> bool:
        return False

    def storage_ok(self) -> bool:
        return True  # nothing is queued for a backend

    def wake(self) -> None:
        return None

    @property
    def stats(self) -> dict[str, int]:
        return {}

    def set_listener(self, listener: BackendListener) -> None:
        self.listener = listener

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def authorize_token(self, req: TokenAuthRequest) -> TokenAuthResponse:
        raise BackendUnavailable(self.reason)

    async def preauthorize(self, req: PreauthRequest) -> PreauthResponse:
        raise BackendUnavailable(self.reason)

    async def capture(self, req: CaptureRequest) -> CaptureResponse:
        raise BackendUnavailable(self.reason)

    async def void(self, req: VoidRequest) -> CaptureResponse:
        raise BackendUnavailable(self.reason)

    async def settlement_batch(self, req: SettlementBatchRequest) -> SettlementBatch:
        raise BackendUnavailable(self.reason)


class RequestsOverOneChannel:
    """What the two links (the loopback and the MQTT link) share: the four backend
    requests as typed calls over one `_request(op, body, parse)` that a link implements,
    and the state a link keeps in its `__init__`: the listener, the online flag (every
    change queued to the listener), the listener calls waiting in `_events` (run by
    `deliver_in_order`) and the requests waiting for an answer in `_pending`."""

    _listener: BackendListener
    _online: bool
    _events: asyncio.Queue[Callable[[], Awaitable[None]]]
    _pending: dict[Any, asyncio.Future[Any]]

    @property
    def online(self) -> bool:
        return self._online

    def set_listener(self, listener: BackendListener) -> None:
        self._listener = listener

    def _set_online(self, online: bool) -> None:
        self._online = online
        self._events.put_nowait(lambda: self._listener.on_connectivity(online))

    def _fail_pending(self, reason: str) -> None:
        """Every request still waiting raises BackendUnavailable(reason)."""
        for future in self._pending.values():
            if not future.done():
                future.set_exception(BackendUnavailable(reason))

    async def _request(self, op: str, body: dict[str, Any],
                       parse: Callable[[Any], Any]) -> Any:
        raise NotImplementedError

    async def authorize_token(self, req: TokenAuthRequest) -> TokenAuthResponse:
        return await self._request("authorize_token", req.to_json(), TokenAuthResponse.from_json)

    async def preauthorize(self, req: PreauthRequest) -> PreauthResponse:
        return await self._request("preauthorize", req.to_json(), PreauthResponse.from_json)

    async def capture(self, req: CaptureRequest) -> CaptureResponse:
        return await self._request("capture", req.to_json(), CaptureResponse.from_json)

    async def void(self, req: VoidRequest) -> CaptureResponse:
        return await self._request("void", req.to_json(), CaptureResponse.from_json)

    async def settlement_batch(self, req: SettlementBatchRequest) -> SettlementBatch:
        return await self._request("settlement_batch", req.to_json(),
                                   SettlementBatch.from_json)


async def deliver_in_order(queue: asyncio.Queue[Callable[[], Awaitable[Any]]],
                           stats: dict[str, int]) -> None:
    """Run listener calls (pushes, connectivity, commands) one at a time in arrival
    order; a failing call is logged and counted in stats["listener_errors"], never ends
    the link. Runs until cancelled."""
    while True:
        call = await queue.get()
        try:
            await call()
        except asyncio.CancelledError:
            raise
        except Exception:
            stats["listener_errors"] += 1
            log.exception("backend listener failed")
        finally:
            queue.task_done()
