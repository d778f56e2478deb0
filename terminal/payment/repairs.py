"""Where an end-of-day closing's repairs go (docs/reconciliation.md "Repairs").

Provides:
- `Repairer`: the interface: `path` (the payment path whose payments it repairs,
  'gateway' or 'zvt', the journal's `payments.via`) and `async send(repair) -> Repair`
  (the repair with its outcome: 'done', 'refused' with the reason, or 'waiting' when
  the party that must act cannot be reached; a waiting repair is sent again later);
- `GatewayRepairs(backend, timeout_s)`: the built-in path: a capture retried
  (CaptureRequest) or a hold voided (VoidRequest) at the backend's gateway, each with
  the repair's own reference as its idempotency key.

The ZVT path's repairs go through the terminal's one connection owner:
terminal.payment.zvt_repairs `ZvtRepairs`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from terminal.backend.api import BackendUnavailable
from terminal.backend.messages import CaptureRequest, VoidRequest
from terminal.kernel.logsetup import fields, get_logger

if TYPE_CHECKING:
    from terminal.backend.api import Backend
    from terminal.payment.zreport import Repair

log = get_logger("payment")


class Repairer(Protocol):
    @property
    def path(self) -> str: ...

    async def send(self, repair: Repair) -> Repair: ...


class GatewayRepairs:
    """Repairs at the backend's gateway (the built-in card path)."""

    path = "gateway"

    def __init__(self, backend: Backend, timeout_s: float) -> None:
        self.backend = backend
        self.timeout_s = timeout_s

    async def send(self, repair: Repair) -> Repair:
        try:
            if repair.kind == "capture":
                if repair.psp_reference is None or repair.amount is None:
                    return repair.outcome("refused", "no_psp_reference")
                answer = await asyncio.wait_for(self.backend.capture(CaptureRequest(
                    repair.reference, repair.psp_reference, repair.amount, repair.currency)),
                    self.timeout_s)
            else:
                answer = await asyncio.wait_for(self.backend.void(VoidRequest(
                    repair.reference, repair.psp_reference)), self.timeout_s)
        except (BackendUnavailable, TimeoutError) as exc:
            log.warning("closing repair waits for the gateway", extra=fields(
                reference=repair.payment_reference, kind=repair.kind, error=str(exc)))
            return repair.outcome("waiting", "gateway unreachable")
        log.info("closing repair", extra=fields(reference=repair.payment_reference,
                                                kind=repair.kind, ok=answer.ok,
                                                reason=answer.reason))
        return repair.outcome("done") if answer.ok else repair.outcome("refused", answer.reason)
