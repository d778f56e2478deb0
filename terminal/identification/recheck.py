"""Tokens accepted offline although unknown: asked about again once the backend answers.

Provides `OfflineRecheck(port, authorizer, clock, max_energy_on_invalid_id_wh, wake)`:
`run()` checks every `interval_s`, or at once when `wake` is set (the link came back),
whether the running session's token was accepted offline without being known
(OfflineTxForUnknownIdEnabled). Confirmed: the flag is cleared. Rejected now: the
session may take at most `max_energy_on_invalid_id_wh` in all (OCPP
MaxEnergyOnInvalidId); before any energy it is stopped at once.

On failure: a backend still unreachable leaves everything as it is until the next
round; an exception is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

from terminal.identification.auth import Authorizer
from terminal.identification.taps import token_type_of
from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import fields, get_logger
from terminal.periodic import run_periodically
from terminal.ports import SessionPort
from terminal.session import AuthorizationChanged, StopReason, StopRequested

log = get_logger("offline_recheck")


class OfflineRecheck:
    def __init__(self, port: SessionPort, authorizer: Authorizer, clock: Clock,
                 max_energy_on_invalid_id_wh: Decimal, wake: asyncio.Event) -> None:
        self.port = port
        self.authorizer = authorizer
        self.clock = clock
        self.max_energy_on_invalid_id_wh = max_energy_on_invalid_id_wh
        self.wake = wake

    async def run(self, interval_s: float) -> None:
        await run_periodically(self.recheck, interval_s, self.wake,
                               lambda exc: log.error("offline token recheck failed; retrying",
                                                     exc_info=exc))

    async def recheck(self) -> None:
        port = self.port
        state = port.state
        auth = state.authorization
        if not (state.is_open and auth is not None and auth.recheck):
            return
        decision = await self.authorizer.recheck(auth.id_token, token_type_of(auth.id_token),
                                                 self.clock.now())
        if decision is None:
            return  # still unreachable
        now = self.clock.now()
        if decision.accepted:
            await port.apply(AuthorizationChanged(now, replace(auth, recheck=False)))
            log.info("token accepted offline confirmed by the backend",
                     extra=fields(session=state.session_id))
            return
        cap = self.max_energy_on_invalid_id_wh
        if auth.energy_cap_wh is not None:
            cap = min(cap, auth.energy_cap_wh)
        await port.apply(AuthorizationChanged(now, replace(auth, recheck=False,
                                                           energy_cap_wh=cap)))
        log.warning("token accepted offline was rejected by the backend; energy capped",
                    extra=fields(session=state.session_id, reason=decision.reason_code,
                                 energy_cap_wh=cap))
        if not port.state.has_energy:
            await port.apply(StopRequested(now, StopReason.REMOTE))
