"""The service menu for field technicians: card + PIN login, diagnostics and actions
(docs/service.md, docs/local-api.md ops `service_*`).

Provides `Service(deps, logins, readers)` (terminal.service.port.ServiceDeps; the login
state machine is built first, since the tap handler hands it technician cards; the
readers for the diagnostics): `register(api)` routes the
local-API ops `service_login`, `service_keep_pin` (a touch on the PIN pad: the PIN
window is open for its full time again), `service_logout`, `service_diagnostics`,
`service_receipt`, `service_action` and `service_report_daily` (the last 30 days per
day, for the service screen's plots); `load()` reads the journaled state (out of
service, PIN lockout) before the API serves; `refusal()` and `snapshot(now)` answer the
daemon's status; `technician_tapped(token, reader)` opens the PIN window; `after_poll()`
runs after each of the daemon's polls; `diagnostics()` and `meter_selfcheck()`.

The package, one job a module:
- pins: PIN rules, the scrypt hash and the pins file (`hash_pin`, `set_pin`, ...).
- redaction: the configuration with secrets masked; the scan of a bundle for secrets.
- login: the login state machine (PIN window, lockout, idle logout).
- diagnostics: the diagnostics, recent faults and the meter self-check.
- export: the export bundle.
- actions: the actions and the out-of-service state.
- daily: the last 30 days per local day (terminal.report.daily), for the plots.
- port: `ServiceDeps`, everything the package depends on (never the daemon itself:
  the session port, terminal.ports), and the out-of-service gate; the journal's SQL
  is in the store package.

Every op and its outcome goes to the audit log (kinds `service_*`, queued for the
backend); technicians appear there by the last 4 characters of their card id. Requests
without a valid token are only logged (they cannot flood the audit log).

On failure: a refused op raises `RequestError` whose message starts with the field at
fault (`token:`, `pin:`, `card:`, `locked:`, `action:`, `reason:`, `folder:`...) and
changes nothing. A bundle in which the scan finds a secret is deleted and the export
refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from terminal.kernel.logsetup import fields, get_logger
from terminal.localapi import LocalApi
from terminal.service.actions import Actions
from terminal.service.daily import DailyFigures
from terminal.service.diagnostics import Diagnostics
from terminal.service.login import Logins
from terminal.service.pins import mask_id
from terminal.service.port import ReaderStatus, ServiceDeps, audit

log = get_logger("service")


class Service:
    """The service menu as the station sees it: its login state machine (`logins`), its
    diagnostics (`diag`) and its actions (`actions`), behind one object."""

    def __init__(self, deps: ServiceDeps, logins: Logins, readers: ReaderStatus) -> None:
        self.deps = deps
        self.logins = logins
        self.diag = Diagnostics(deps, readers)
        self.actions = Actions(deps, self.logins, self.diag)
        self.daily = DailyFigures(deps, self.logins)

    @property
    def out_of_service(self) -> dict[str, str] | None:
        """{since, by, reason} while a technician has set the terminal out of service."""
        return self.deps.out_of_service.value

    def register(self, api: LocalApi) -> None:
        # open to the screen's role too: each op carries its own authentication (the
        # technician card on the daemon's reader, the PIN, then the login's token)
        api.route_for_all("service_login", self.logins.op_login)
        api.route_for_all("service_keep_pin", self.logins.op_keep_pin)
        api.route_for_all("service_logout", self.logins.op_logout)
        api.route_for_all("service_diagnostics", self._op_diagnostics)
        api.route_for_all("service_receipt", self.actions.op_receipt)
        api.route_for_all("service_action", self.actions.op_action)
        api.route_for_all("service_report_daily", self.daily.op_report_daily)

    async def load(self) -> None:
        """Out of service and the PIN lockout as journaled (before the API serves)."""
        await self.actions.load()
        await self.logins.load()
        if self.out_of_service is not None:
            log.warning("terminal is out of service", extra=fields(**self.out_of_service))

    # ---- what the daemon asks --------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why new sessions are refused by the service menu (None: they are not)."""
        return self.deps.out_of_service.refusal()

    def snapshot(self, now: datetime) -> dict[str, Any]:
        """`service` and `out_of_service` of the status snapshot."""
        state = self.logins.snapshot(now)
        oos = dict(self.out_of_service) if self.out_of_service else None
        return {"service": state, "out_of_service": oos}

    async def technician_tapped(self, id_token: str, reader: str) -> None:
        """A technician card at a free connector: the PIN window opens."""
        await self.logins.technician_tapped(id_token, reader)

    async def after_poll(self) -> None:
        """After every poll: fault changes noted, the meter self-check woken, expired PIN
        windows closed and idle technicians logged out."""
        self.diag.after_poll()
        await self.logins.expire()

    async def diagnostics(self) -> dict[str, Any]:
        """Every section of the diagnostics (terminal.service.diagnostics)."""
        return await self.diag.report()

    async def meter_selfcheck(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The meter self-check on the daemon's own polls: (checks, the two readings)."""
        return await self.diag.meter_selfcheck()

    async def _op_diagnostics(self, request: dict[str, Any]) -> dict[str, Any]:
        login = await self.logins.logged_in(request)
        if not login.diagnostics_audited:  # the screen refreshes them every 2 s
            login.diagnostics_audited = True
            await audit(self.deps, "service_diagnostics",
                        {"technician": mask_id(login.technician)})
        return {"diagnostics": await self.diagnostics()}
