"""The service menu for field technicians: card + PIN login, diagnostics and actions
(docs/service.md, docs/local-api.md ops `service_*`).

Provides `Service(daemon)`, the one object the daemon holds: `register(api)` routes the
local-API ops `service_login`, `service_logout`, `service_diagnostics`, `service_receipt`
and `service_action`; `load()` reads the journaled state (out of service, PIN lockout)
before the API serves; `refusal()` and `snapshot(now)` answer the daemon's status;
`technician_tapped(token, reader)` opens the PIN window; `after_poll()` runs after each
of the daemon's polls; `attach(ident)` gives it the readers and the backend link;
`diagnostics()` and `meter_selfcheck()`. The public names of the modules below are
re-exported here (`RESTART_EXIT_CODE`, `BUNDLE_FILES`, `hash_pin`, `set_pin`, ...).

The package, one job a module:
- pins: PIN rules, the scrypt hash and the pins file (`hash_pin`, `set_pin`, ...).
- redaction: the configuration with secrets masked; the scan of a bundle for secrets.
- login: the login state machine (PIN window, lockout, idle logout).
- diagnostics: the diagnostics, recent faults and the meter self-check.
- export: the export bundle.
- actions: the actions and the out-of-service state.
- port: `DaemonPort`, everything the package uses of the daemon (it never imports
  terminal.daemon); the journal's SQL is in terminal.service_tables.

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
from terminal.service.actions import (
    ACTIONS,
    KEY_OUT_OF_SERVICE,
    MAX_REASON_CHARS,
    RESTART_EXIT_CODE,
    Actions,
)
from terminal.service.diagnostics import RECENT_FAULTS, RECENT_SESSIONS, Diagnostics
from terminal.service.export import (
    BUNDLE_FILES,
    EXPORT_AUDIT_ROWS,
    EXPORT_LOG_BYTES,
    EXPORT_SESSIONS,
    Export,
)
from terminal.service.login import (
    KEY_PIN_LOCKOUT,
    MAX_LOGINS,
    MAX_WAIT_CARD_S,
    Lockout,
    Login,
    Logins,
    PinWindow,
)
from terminal.service.pins import (
    CARD_PATTERN,
    HASH_BYTES,
    PIN_PATTERN,
    SALT_BYTES,
    SCRYPT_N,
    SCRYPT_P,
    SCRYPT_R,
    check_pin,
    hash_pin,
    load_pins,
    mask_id,
    normalize_card,
    parse_pin_hash,
    set_pin,
    verify_pin,
)
from terminal.service.port import DaemonPort, SeenPort, audit
from terminal.service.redaction import (
    MASK,
    PATH_SUFFIXES,
    SECRET_NAME,
    redact_config,
    render_toml,
    scan_folder,
    scrub_json,
    secret_texts,
)

__all__ = [
    "ACTIONS", "BUNDLE_FILES", "CARD_PATTERN", "EXPORT_AUDIT_ROWS", "EXPORT_LOG_BYTES",
    "EXPORT_SESSIONS", "HASH_BYTES", "KEY_OUT_OF_SERVICE", "KEY_PIN_LOCKOUT", "MASK",
    "MAX_LOGINS", "MAX_REASON_CHARS", "MAX_WAIT_CARD_S", "PATH_SUFFIXES", "PIN_PATTERN",
    "RECENT_FAULTS", "RECENT_SESSIONS", "RESTART_EXIT_CODE", "SALT_BYTES", "SCRYPT_N",
    "SCRYPT_P", "SCRYPT_R", "SECRET_NAME", "Actions", "DaemonPort", "Diagnostics", "Export",
    "Lockout", "Login", "Logins", "PinWindow", "SeenPort", "Service", "check_pin", "hash_pin",
    "load_pins", "mask_id", "normalize_card", "parse_pin_hash", "redact_config",
    "render_toml", "scan_folder", "scrub_json", "secret_texts", "set_pin", "verify_pin",
]

log = get_logger("service")


class Service:
    """The service menu as the daemon sees it: its login state machine (`logins`), its
    diagnostics (`diag`) and its actions (`actions`), behind one object."""

    def __init__(self, daemon: DaemonPort) -> None:
        self.daemon = daemon
        self.logins = Logins(daemon)
        self.diag = Diagnostics(daemon, lambda: self.out_of_service)
        self.actions = Actions(daemon, self.logins, self.diag)

    @property
    def out_of_service(self) -> dict[str, str] | None:
        """{since, by, reason} while a technician has set the terminal out of service."""
        return self.actions.out_of_service

    @out_of_service.setter
    def out_of_service(self, value: dict[str, str] | None) -> None:
        self.actions.out_of_service = value

    def attach(self, ident: Any) -> None:
        """The readers and the backend link (terminal.identification) for diagnostics."""
        self.diag.attach(ident)

    def register(self, api: LocalApi) -> None:
        api.route("service_login", self.logins.op_login)
        api.route("service_logout", self.logins.op_logout)
        api.route("service_diagnostics", self._op_diagnostics)
        api.route("service_receipt", self.actions.op_receipt)
        api.route("service_action", self.actions.op_action)

    async def load(self) -> None:
        """Out of service and the PIN lockout as journaled (before the API serves)."""
        await self.actions.load()
        await self.logins.load()
        if self.out_of_service is not None:
            log.warning("terminal is out of service", extra=fields(**self.out_of_service))

    # ---- what the daemon asks ----------------------------------------------------------------

    def refusal(self) -> str | None:
        """Why new sessions are refused by the service menu (None: they are not)."""
        if self.out_of_service is None:
            return None
        return f"out of service: {self.out_of_service['reason']}"

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
            await audit(self.daemon, "service_diagnostics",
                        {"technician": mask_id(login.technician)})
        return {"diagnostics": await self.diagnostics()}
