"""What the backend pushes to the terminal, handed to the part that owns it.

Provides `BackendInbox`, the backend link's listener (terminal.backend.api
.BackendListener): refunds go to card payment (recorded on the session and its
receipt), local-list updates to the authoriser (audited), connectivity changes to the
local API's clients (and, when the link is back, settlement and the offline-token
recheck are woken), commands to terminal.backend.commands.

On failure: what cannot be carried out raises `ProtocolError(field, reason)`, which the
link answers to the backend; nothing changes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from terminal.backend.commands import Commands
from terminal.backend.messages import LocalListUpdate, Refund
from terminal.backend.protocol import ProtocolError
from terminal.identification.auth import Authorizer
from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import fields, get_logger
from terminal.payment.port import PaymentTerminal
from terminal.store import AsyncStore

log = get_logger("backend_inbox")


class BackendInbox:
    def __init__(self, store: AsyncStore, clock: Clock, authorizer: Authorizer,
                 payments: PaymentTerminal | None, commands: Commands,
                 publish: Callable[[dict[str, Any]], None],
                 wake_on_online: tuple[asyncio.Event, ...] = ()) -> None:
        self.store = store
        self.clock = clock
        self.authorizer = authorizer
        self.payments = payments
        self.commands = commands
        self.publish = publish
        self.wake_on_online = wake_on_online

    async def on_refund(self, refund: Refund) -> None:
        """Record a refund; ProtocolError (answered to the backend) when it does not fit."""
        if self.payments is None:
            log.error("refund refused: card payment is not configured",
                      extra=fields(refund=refund.refund_id))
            raise ProtocolError("body", "card payment is not configured on this terminal")
        if not await self.payments.on_refund(refund):
            raise ProtocolError("body", "refund refused: no captured payment it fits "
                                "(see the terminal's log)")

    async def on_local_list(self, update: LocalListUpdate) -> None:
        result = await self.authorizer.apply_list_update(update)
        log.info("local list update", extra=fields(version=update.version,
                                                   type=update.update_type,
                                                   status=result.status, reason=result.reason))
        if result.status != "Accepted":
            raise ProtocolError("update.version", result.reason or result.status)
        await self.store.call(self.store.store.add_audit, "local_list",
                              {"by": "backend", "version": update.version,
                               "type": update.update_type}, self.clock.now())

    async def on_connectivity(self, online: bool) -> None:
        log.info("backend link", extra=fields(online=online))
        self.publish({"type": "connectivity", "backend_online": online})
        if online:
            for wake in self.wake_on_online:
                wake.set()

    async def on_command(self, name: str, message: Any) -> dict[str, Any]:
        """A command from the backend (terminal.backend.commands), as its typed model or a dict;
        ProtocolError when refused."""
        body = message.to_json() if hasattr(message, "to_json") else dict(message)
        return await self.commands.handle(name, body)
