"""The service menu's actions and its out-of-service state (docs/service.md, "Actions").

Provides `Actions(deps, logins, diagnostics)`: the local-API ops `service_action`
(`ACTIONS`: out_of_service, in_service, stop_session, resend_outbox, restart,
meter_selfcheck, export, closing (the end-of-day closing now: its Z-report),
z_report (the latest Z-report), update: a signed release from a copy of the release
repository on the USB stick, handed to the updater, docs/updates.md) and
`service_receipt`, each for a logged-in technician only (terminal.service.login), and
`out_of_service` ({since, by, reason} or None), journaled as `out_of_service` in the
service menu's table so a restart keeps it (`load`).
The restart action exits with terminal.ports.RESTART_EXIT_CODE.

Every action and its outcome goes to the audit log (`service_action`, ok or the error)
and the log. On failure: a refused action raises `RequestError` whose message starts
with the field at fault (`token:`, `action:`, `reason:`, `folder:`...) and changes
nothing; a receipt request fails as the local API's `receipt` op does.
"""

from __future__ import annotations

from typing import Any

from terminal.kernel.clock import iso_utc
from terminal.kernel.logsetup import fields, get_logger
from terminal.localapi import RequestError
from terminal.payment.closing import Closings
from terminal.payment.ledger import LedgerUnavailable
from terminal.payment.zreport import z_report_text
from terminal.ports import RESTART_EXIT_CODE
from terminal.service.diagnostics import Diagnostics
from terminal.service.export import Export
from terminal.service.login import Login, Logins
from terminal.service.pins import mask_id
from terminal.service.port import ServiceDeps, audit
from terminal.session import StopReason, StopRequested
from terminal.update.journal import UpdateRequest
from terminal.update.request import UpdateRefused, submit

log = get_logger("service")

MAX_REASON_CHARS = 200
ACTIONS = ("out_of_service", "in_service", "stop_session", "resend_outbox", "restart",
           "meter_selfcheck", "export", "closing", "z_report", "update")
KEY_OUT_OF_SERVICE = "out_of_service"


def _string(request: dict[str, Any], key: str, max_chars: int) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
        raise RequestError(f"{key}: expected 1 to {max_chars} characters, got "
                           f"{type(value).__name__}")
    return value.strip()


class Actions:
    """What a logged-in technician does, and whether the terminal is out of service."""

    def __init__(self, deps: ServiceDeps, logins: Logins, diagnostics: Diagnostics) -> None:
        self.deps = deps
        self.clock = deps.clock
        self.logins = logins
        self.diagnostics = diagnostics
        self.export = Export(deps, diagnostics)
        self.out_of_service = deps.out_of_service



    async def load(self) -> None:
        """Out of service as journaled."""
        tables = self.deps.tables
        self.out_of_service.value = await self.deps.store.call(tables.get, KEY_OUT_OF_SERVICE)

    async def op_receipt(self, request: dict[str, Any]) -> dict[str, Any]:
        login = await self.logins.logged_in(request)
        wanted: dict[str, Any] = {k: request[k] for k in ("session_id", "language")
                                  if k in request}
        reply = await self.deps.receipts(wanted)
        await audit(self.deps, "service_receipt", {"technician": mask_id(login.technician),
                                              "session_id": reply["session_id"]})
        return reply

    async def op_action(self, request: dict[str, Any]) -> dict[str, Any]:
        login = await self.logins.logged_in(request)
        action = request.get("action")
        technician = mask_id(login.technician)
        detail: dict[str, Any] = {"technician": technician, "action": str(action)[:40]}
        try:
            if action not in ACTIONS:
                raise RequestError(f"action: expected one of {', '.join(ACTIONS)}, got "
                                   f"{action!r:.40}")
            result = await getattr(self, f"_action_{action}")(request, login)
        except RequestError as exc:
            await audit(self.deps, "service_action", {**detail, "ok": False, "error": str(exc)})
            raise
        await audit(self.deps, "service_action", {**detail, "ok": True, **result.pop("_audit", {})})
        log.warning("service action", extra=fields(technician=technician, action=action))
        return {"action": action, **result}

    async def _action_out_of_service(self, request: dict[str, Any],
                                     login: Login) -> dict[str, Any]:
        reason = _string(request, "reason", MAX_REASON_CHARS)
        now = self.clock.now()
        since = self.out_of_service.value["since"] if self.out_of_service.value else iso_utc(now)
        value = {"since": since, "by": mask_id(login.technician), "reason": reason}
        await self.deps.store.call(self.deps.tables.put, KEY_OUT_OF_SERVICE, value, now)
        self.out_of_service.value = value
        return {"out_of_service": value, "state": self.deps.session.publish_state(),
                "_audit": {"reason": reason}}

    async def _action_in_service(self, request: dict[str, Any], login: Login) -> dict[str, Any]:
        was = self.out_of_service.value
        await self.deps.store.call(self.deps.tables.delete, KEY_OUT_OF_SERVICE)
        self.out_of_service.value = None
        return {"out_of_service": None, "state": self.deps.session.publish_state(),
                "_audit": {"was_out_of_service": was is not None}}

    async def _action_stop_session(self, request: dict[str, Any],
                                   login: Login) -> dict[str, Any]:
        deps = self.deps
        session_id = deps.session.state.session_id
        result = await deps.session.apply(StopRequested(self.clock.now(), StopReason.TECHNICIAN))
        if result.refused:
            raise RequestError(f"action: stop_session: {result.refused}")
        return {"session_id": session_id, "state": deps.snapshot(),
                "_audit": {"session_id": session_id}}

    async def _action_resend_outbox(self, request: dict[str, Any],
                                    login: Login) -> dict[str, Any]:
        deps = self.deps
        figures = await deps.store.call(self.deps.tables.backend_figures)
        wake = deps.link.wake
        if wake is not None:
            wake()
        backend = self.diagnostics.backend(figures, self.clock.now())
        counts = {"pending": figures["pending"],
                  "oldest_pending_at": figures["oldest_pending_at"],
                  "oldest_age_s": backend["oldest_undelivered_age_s"]}
        return {**counts, "backend_online": backend["connected"], "woken": wake is not None,
                "_audit": {"pending": figures["pending"]}}

    async def _action_restart(self, request: dict[str, Any], login: Login) -> dict[str, Any]:
        self.deps.restart()
        return {"restarting": True, "exit_code": RESTART_EXIT_CODE}

    async def _action_meter_selfcheck(self, request: dict[str, Any],
                                      login: Login) -> dict[str, Any]:
        checks, readings = await self.diagnostics.meter_selfcheck()
        passed = all(check["ok"] for check in checks)
        failed = [check["name"] for check in checks if not check["ok"]]
        return {"passed": passed, "checks": checks, "readings": readings,
                "_audit": {"passed": passed, "failed": failed}}

    async def _action_export(self, request: dict[str, Any], login: Login) -> dict[str, Any]:
        folder = (_string(request, "folder", 4096) if request.get("folder") is not None
                  else None)  # default: the USB stick's mount point itself
        return await self.export.run(folder)

    def _closings(self) -> Closings:
        if self.deps.closings is None:
            raise RequestError("action: no end-of-day closing on this terminal (card payment "
                               "is not configured)")
        return self.deps.closings

    async def _action_closing(self, request: dict[str, Any], login: Login) -> dict[str, Any]:
        try:
            report = await self._closings().close("service")
        except LedgerUnavailable as exc:
            raise RequestError(f"action: closing: {exc.reason}; try again later") from None
        return {"z_report": report, "text": z_report_text(report),
                "_audit": {"closing_id": report["closing_id"],
                           "findings": len(report["findings"]),
                           "remaining": len(report["remaining"])}}

    async def _action_z_report(self, request: dict[str, Any], login: Login) -> dict[str, Any]:
        report = await self._closings().last()
        return {"z_report": report,
                "text": z_report_text(report) if report else "no closing yet\n"}

    async def _action_update(self, request: dict[str, Any], login: Login) -> dict[str, Any]:
        """{folder: the release repository's copy below export_allowed_root, version}."""
        from pathlib import Path

        from terminal.backend.firmware import check_version
        from terminal.backend.messages import MessageError

        config = self.deps.config
        folder = _string(request, "folder", 4096)
        root = Path(config.service.export_allowed_root).resolve()
        if not Path(folder).is_absolute() or not Path(folder).resolve().is_relative_to(root):
            raise RequestError(f"folder: {folder} is not under export_allowed_root {root}")
        try:
            version = check_version("version", request.get("version"))
            submit(config.station.state_dir, config.update.root_dir,
                   UpdateRequest(None, version, folder=str(Path(folder).resolve())))
        except (MessageError, UpdateRefused) as exc:
            raise RequestError(str(exc)) from None
        return {"version": version, "folder": folder,
                "_audit": {"version": version, "folder": folder}}
