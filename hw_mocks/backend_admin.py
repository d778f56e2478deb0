"""The admin side both backend simulators share: hw_mocks.backend_loopback (admin on
its terminal socket) and hw_mocks.backend_mqtt (admin on its own socket).

Provides:
- `AdminError`: an admin request that cannot be done; the message goes back to the
  client.
- `BackendAdmin(logic)`: the one dispatcher. `await handle(message)` runs
  `message["cmd"]` and answers `{"ok": true, "cmd": CMD, **result}`, or `{"ok": false,
  "cmd": CMD, "error": why}` for an unknown command (the known ones listed), an
  AdminError, a LedgerError or any ValueError (a bad entry, a bad local list). The
  commands both simulators answer: `silent` {on}, `delay` {delay_s, 0 to 600},
  `received` {filter_op?}, `ledger`, `set_token` {entry}, `plant` {kind, reference,
  amount?} (a discrepancy for the reconciliation tests, hw_mocks.backend_settlement).
  A simulator subclasses it, adds its own commands as `_cmd_<name>` methods and lists
  every command it answers in `COMMANDS`.
- `number`, `flag`, `text`, `amount`: one value of an admin request; AdminError naming
  the key when it is not what it must be.
- `admin(socket_path, cmd, socket_timeout_s=30, **values)`: one admin request from a
  blocking client (tests, the CLI); the reply, ok true or false. OSError /
  ConnectionError when the simulator is not there.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hw_mocks.backend_logic import BackendLogic, LedgerError
from terminal.backend.messages import LocalListEntry
from terminal.localapi import request as _request


class AdminError(ValueError):
    """An admin request that cannot be done; the message goes back to the client."""


def number(message: dict[str, Any], name: str, default: float, high: float) -> float:
    value = message.get(name, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value <= high:
        raise AdminError(f"{name}: expected a number from 0 to {high}, got {value!r}")
    return float(value)


def flag(message: dict[str, Any], name: str, default: bool | None) -> bool | None:
    value = message.get(name, default)
    if value is not None and not isinstance(value, bool):
        raise AdminError(f"{name}: expected true or false, got {value!r}")
    return value


def text(message: dict[str, Any], name: str, *, optional: bool = False) -> str | None:
    value = message.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        raise AdminError(f"{name}: expected a non-empty string, got {value!r}")
    return value


def amount(message: dict[str, Any], name: str = "amount") -> Decimal | None:
    """An optional amount given as text (a refund's)."""
    if message.get(name) is None:
        return None
    try:
        return Decimal(str(message[name]))
    except InvalidOperation:
        raise AdminError(f"{name}: expected an amount as text, got "
                         f"{message[name]!r}") from None


class BackendAdmin:
    """Admin commands by name over one BackendLogic; see the module docstring."""

    COMMANDS: tuple[str, ...] = ("silent", "delay", "received", "ledger", "set_token",
                                 "plant")

    def __init__(self, logic: BackendLogic) -> None:
        self.logic = logic

    async def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        cmd = message.get("cmd")
        try:
            if cmd not in self.COMMANDS:
                raise AdminError(f"unknown cmd {cmd!r}; known: {', '.join(self.COMMANDS)}")
            result = await getattr(self, f"_cmd_{cmd}")(message)
        except (AdminError, LedgerError, ValueError) as exc:
            return {"ok": False, "cmd": cmd, "error": str(exc)}
        return {"ok": True, "cmd": cmd, **result}

    async def _cmd_silent(self, message: dict[str, Any]) -> dict[str, Any]:
        on = message.get("on")
        if not isinstance(on, bool):
            raise AdminError(f"on: expected true or false, got {on!r}")
        self.logic.silent = on
        return {"silent": on}

    async def _cmd_delay(self, message: dict[str, Any]) -> dict[str, Any]:
        if "delay_s" not in message:
            raise AdminError("delay_s: required")
        self.logic.delay_s = number(message, "delay_s", 0.0, 600)
        return {"delay_s": self.logic.delay_s}

    async def _cmd_received(self, message: dict[str, Any]) -> dict[str, Any]:
        logic = self.logic
        return {"messages": logic.received_json(text(message, "filter_op", optional=True)),
                "duplicates": logic.duplicates, "pan_leaks": list(logic.pan_leaks)}

    async def _cmd_ledger(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"payments": [p.to_json() for p in self.logic.ledger.values()]}

    async def _cmd_plant(self, message: dict[str, Any]) -> dict[str, Any]:
        from hw_mocks.backend_settlement import plant

        payment = plant(self.logic, str(text(message, "kind")),
                        str(text(message, "reference")), amount(message))
        return {"payment": payment.to_json(),
                "extra_captures": [str(a) for a in
                                   self.logic.extra_captures.get(payment.psp_reference, ())]}

    async def _cmd_set_token(self, message: dict[str, Any]) -> dict[str, Any]:
        self.logic.set_token(LocalListEntry.from_json(message.get("entry")))
        return {"tokens": len(self.logic.tokens)}


def admin(socket_path: str | Path, cmd: str, *, socket_timeout_s: float = 30.0,
          **values: Any) -> dict[str, Any]:
    """One admin request from a blocking client (tests, CLI); the reply (ok true or
    false). OSError/ConnectionError when the simulator is not there."""
    return _request(socket_path, {"op": "admin", "id": "admin", "cmd": cmd, **values},
                    socket_timeout_s)
