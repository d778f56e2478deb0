"""What the backend may tell the terminal to do (docs/protocol.md, "commands").

Provides `Commands(...).handle(name, body) -> dict`: the answer's body on success,
`ProtocolError(field, reason)` when the command cannot be carried out (the link answers
with an error naming the field). The transport has already checked the envelope and,
for tariffs and lists, the operator's signature.

- `remote_start` {id_token, cost_cap?, energy_cap_wh?, tariff?, start_code?}: the app's
  start; the connector must be free and the terminal accepting sessions (not out of
  service, storage fine); the personal tariff must be valid OCPI. A
  `start_code` (from the screen's app-start QR code) must be the screen's current
  code, else it is refused naming `start_code` ("QR code expired"); a session started
  with it rotates the code.
- `remote_stop` {session_id?}: stops the running session (reason Remote); a given
  session id must be the running one.
- `tariff_update` {tariff}: the station's tariff for sessions starting from now; a
  running session keeps the terms it started with. Saved (atomically) in the state
  folder as `pushed_tariff.json`, which wins over `[session] tariff_file` at the next
  start.
- `reconcile` {since?}: every message queued since then is sent again (the backend
  drops what it has by idempotency key).
- `diagnostics` {}: the status snapshot, outbox figures and software version.
- `firmware_update` {requestId, firmware: {location, version}} (OCPP UpdateFirmware's
  shape, backend/firmware.py): written as a request file for the updater (evterm-update,
  run as root by systemd; docs/updates.md), answered `{"status": "Accepted"}`; refused
  while another update is under way or waiting, and for the version already running.
  Its progress comes as `firmware_status` events.
- `config_change`: refused; configuration is the file on the terminal (a technician's
  change, audited), not a remote setting.
Every command that changes something is written to the audit log (and so to the backend).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from terminal import __version__
from terminal.backend.firmware import FirmwareUpdate
from terminal.backend.messages import MessageError
from terminal.backend.protocol import ProtocolError
from terminal.desk import MAX_TOKEN_CHARS, Desk
from terminal.kernel.logsetup import fields, get_logger
from terminal.kernel.money import MAX_AMOUNT, MAX_ENERGY_WH, AmountError, check_amount
from terminal.pricing import TariffError, check_validity, parse_tariff
from terminal.session import Authorization, AuthorizationAccepted, StopReason, StopRequested
from terminal.update.journal import UpdateRequest
from terminal.update.request import UpdateRefused, submit

log = get_logger("commands")

PUSHED_TARIFF = "pushed_tariff.json"


def pushed_tariff_path(state_dir: str) -> Path:
    return Path(state_dir) / PUSHED_TARIFF


class Commands(Desk):
    async def handle(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"_{name}", None)
        if handler is None or name.startswith("_"):
            raise ProtocolError("command", f"unknown command {name!r}")
        return dict(await handler(body))

    # ---- sessions --------------------------------------------------------------------------

    async def _remote_start(self, body: dict[str, Any]) -> dict[str, Any]:
        port = self.port
        token = body.get("id_token")
        if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_CHARS:
            raise ProtocolError("id_token", f"expected 1 to {MAX_TOKEN_CHARS} characters")
        tariff_json = None
        if body.get("tariff") is not None:
            tariff_json = json.dumps(_tariff(body["tariff"], "tariff"), sort_keys=True)
        start_code = body.get("start_code")
        if start_code is not None:
            self._check_start_code(start_code)
        now = self.clock.now()
        if (refused := port.refusal_reason()) is not None:
            raise ProtocolError("station", f"not accepting sessions now: {refused}")
        auth = Authorization(
            id_token=token,
            source="app" if start_code is not None else "remote",  # the driver's phone
            valid_until=now + timedelta(seconds=self.config.session.authorization_valid_s),
            cost_cap=_amount(body, "cost_cap"),
            energy_cap_wh=_amount(body, "energy_cap_wh", MAX_ENERGY_WH),
            tariff_json=tariff_json,
        )
        session_id = str(uuid.uuid4())
        result = await port.apply(AuthorizationAccepted(now, session_id, auth))
        if result.refused:
            raise ProtocolError("station", result.refused)
        if start_code is not None:
            self.screen.rotate_start_code()  # the QR code on screen is used up
        await self._audit("remote_start", {"session_id": session_id,
                                           "by_qr_code": start_code is not None})
        return {"session_id": session_id, "phase": port.state.phase.value}

    def _check_start_code(self, code: Any) -> None:
        if not self.config.ui.app_start_url:
            raise ProtocolError("start_code", "app start by QR code is not offered at this "
                                "station ([ui] app_start_url is empty)")
        if not isinstance(code, str) or code.upper() != self.screen.start_code:
            raise ProtocolError("start_code", "QR code expired; scan the code on the "
                                "screen again")

    async def _remote_stop(self, body: dict[str, Any]) -> dict[str, Any]:
        port = self.port
        wanted = body.get("session_id")
        if wanted is not None and wanted != port.state.session_id:
            raise ProtocolError("session_id", f"{wanted!r} is not the running session")
        result = await port.apply(StopRequested(self.clock.now(), StopReason.REMOTE))
        if result.refused:
            raise ProtocolError("session_id", result.refused)
        await self._audit("remote_stop", {"session_id": port.state.session_id})
        return {"session_id": port.state.session_id, "phase": port.state.phase.value}

    # ---- tariff ------------------------------------------------------------------------------

    async def _tariff_update(self, body: dict[str, Any]) -> dict[str, Any]:
        tariff = _tariff(body.get("tariff"), "tariff")
        parsed = parse_tariff(tariff)
        try:
            check_validity(parsed, self.clock.now())
        except (TariffError, ValueError) as exc:
            raise ProtocolError("tariff", f"not valid now: {exc}") from None
        station_currency = self.pricing.station_terms.tariff.currency
        if station_currency != parsed.currency:
            raise ProtocolError("tariff.currency", f"{parsed.currency}: the station prices in "
                                f"{station_currency}")
        path = pushed_tariff_path(self.config.station.state_dir)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(tariff, sort_keys=True), encoding="utf-8")
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        self.pricing.replace_station_tariff(tariff)
        await self._audit("tariff_update", {"tariff_id": parsed.id})
        log.info("station tariff replaced by the backend", extra=fields(tariff=parsed.id))
        self.port.publish({"type": "tariff", "tariff_id": parsed.id})
        return {"tariff_id": parsed.id}

    # ---- backend housekeeping ------------------------------------------------------------------

    async def _reconcile(self, body: dict[str, Any]) -> dict[str, Any]:
        since_text = body.get("since")
        try:
            since = (datetime.fromisoformat(since_text) if since_text is not None
                     else datetime.fromisoformat("2000-01-01T00:00:00+00:00"))
        except (TypeError, ValueError):
            raise ProtocolError("since", "expected an ISO 8601 time with offset") from None
        if since.utcoffset() is None:
            raise ProtocolError("since", "expected an ISO 8601 time with offset")
        store = self.store
        count = await store.call(store.store.requeue_since, since)
        await self._audit("reconcile", {"since": since.isoformat(), "requeued": count})
        return {"requeued": count}

    async def _diagnostics(self, body: dict[str, Any]) -> dict[str, Any]:
        store = self.store
        return {"version": __version__, "state": self.snapshot(),
                "outbox": await store.call(store.store.outbox_stats)}

    async def _firmware_update(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            update = FirmwareUpdate.from_json(body)
        except MessageError as exc:
            raise ProtocolError(exc.field.removeprefix("FirmwareUpdate.") or "body",
                                exc.problem) from None
        try:
            submit(self.config.station.state_dir, self.config.update.root_dir,
                   UpdateRequest(update.request_id, update.version, update.location))
        except UpdateRefused as exc:
            field = {"version": "firmware.version"}.get(exc.field, "requestId")
            raise ProtocolError(field, exc.reason) from None
        await self._audit("firmware_update", {"request_id": update.request_id,
                                              "version": update.version})
        log.info("firmware update requested", extra=fields(version=update.version))
        return {"status": "Accepted", "requestId": update.request_id}

    async def _config_change(self, body: dict[str, Any]) -> dict[str, Any]:
        raise ProtocolError("key", "configuration is changed on the terminal by a technician "
                            "(the configuration file), not remotely")

    async def _audit(self, kind: str, detail: dict[str, Any]) -> None:
        await self.store.call(self.store.store.add_audit, kind, {"by": "backend", **detail},
                              self.clock.now())


def _tariff(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ProtocolError(name, "expected an OCPI 2.2.1 tariff object")
    try:
        parse_tariff(value)
    except (TariffError, ValueError) as exc:
        raise ProtocolError(name, f"not a valid OCPI 2.2.1 tariff: {exc}") from None
    return value


def _amount(body: dict[str, Any], key: str, maximum: Decimal = MAX_AMOUNT) -> Decimal | None:
    """A positive amount given as text, within the terminal's bounds; ProtocolError naming key."""
    value = body.get(key)
    if value is None:
        return None
    try:
        if not isinstance(value, str):
            raise AmountError(key, value, "a positive amount as text, e.g. \"25.00\"")
        return check_amount(value, key, maximum=maximum)
    except AmountError as exc:
        raise ProtocolError(key, exc.reason) from None
