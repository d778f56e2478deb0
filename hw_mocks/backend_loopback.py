"""`evterm sim backend-loopback`: the backend simulator on a Unix socket (JSON lines).

Serves hw_mocks.backend_logic to terminals (terminal.backend.loopback) and takes admin
requests from tests and `evterm sim backend-admin` on the same socket; the protocol is
in docs/authorisation.md.

- Terminal requests (`hello`, `authorize_token`, `preauthorize`, `capture`, `void`,
  `settlement_batch`)
  are answered in their own task, so a delayed answer does not hold up the others.
  `silent` drops them unanswered; `delay_s` answers the four business requests late.
- Pushes (`refund`, `local_list`) go to every terminal connection that said hello, or
  to one station's.
- Admin (`{"op": "admin", "cmd": ...}`, always answered; `LoopbackAdmin` on the
  dispatcher of hw_mocks.backend_admin, whose `admin()` is the client): status, silent,
  delay, push_refund, push_local_list, set_token, received, ledger, send_raw (a line
  sent verbatim, `repeat` times over, to the terminals, to test their robustness),
  disconnect.

Prints a JSON ready line on stdout when it serves; exits 0 on SIGTERM/SIGINT, removing
its socket. A stale socket file is replaced; any other file at the path is refused.
A malformed request is answered with ok false and an error naming what was wrong.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from hw_mocks.backend_admin import AdminError, BackendAdmin, amount
from hw_mocks.backend_logic import BackendLogic
from hw_mocks.signals import stop_on_signals
from terminal.backend.messages import LocalListUpdate
from terminal.kernel.logsetup import fields, get_logger
from terminal.localapi import remove_stale_socket

log = get_logger("sim.backend")

MAX_LINE_BYTES = 256 * 1024
TERMINAL_OPS = ("hello", "authorize_token", "preauthorize", "capture", "void",
                "settlement_batch")
class _Connection:
    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.station_id: str | None = None
        self.lock = asyncio.Lock()

    async def send_line(self, data: bytes) -> None:
        async with self.lock:
            self.writer.write(data)
            await self.writer.drain()

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_line((json.dumps(message) + "\n").encode())


class LoopbackServer:
    def __init__(self, logic: BackendLogic, socket_path: str | Path) -> None:
        self.logic = logic
        self.socket_path = str(socket_path)
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.ignored = 0
        self.admin = LoopbackAdmin(self)

    async def start(self) -> None:
        remove_stale_socket(self.socket_path)
        self._server = await asyncio.start_unix_server(
            self._serve, path=self.socket_path, limit=MAX_LINE_BYTES)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for conn in list(self._connections):
            conn.writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.socket_path)

    def terminals(self, station_id: str | None = None) -> list[_Connection]:
        return [c for c in self._connections if c.station_id is not None
                and (station_id is None or c.station_id == station_id)]

    async def push(self, kind: str, body: dict[str, Any], station_id: str | None = None) -> int:
        """Send a push to the terminals; how many it went to."""
        line = (json.dumps({"push": kind, "body": body}) + "\n").encode()
        return await self.broadcast(line, station_id)

    async def broadcast(self, line: bytes, station_id: str | None) -> int:
        sent = 0
        for conn in self.terminals(station_id):
            with contextlib.suppress(ConnectionError, OSError):
                await conn.send_line(line)
                sent += 1
        return sent

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer)
        self._connections.add(conn)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    await conn.send({"ok": False,
                                     "error": f"line longer than {MAX_LINE_BYTES} bytes"})
                    break
                if not line:
                    break
                if line.strip():
                    await self._on_line(conn, line)
        except (ConnectionError, OSError):
            pass
        finally:
            self._connections.discard(conn)
            writer.close()
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    async def _on_line(self, conn: _Connection, line: bytes) -> None:
        try:
            message = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            await conn.send({"ok": False, "error": f"not JSON: {exc}"})
            return
        if not isinstance(message, dict):
            await conn.send({"ok": False, "error": "a request must be a JSON object"})
            return
        op = message.get("op")
        reply: dict[str, Any] = {"id": message.get("id"), "op": op}
        if op == "admin":
            await conn.send({**reply, **await self.admin.handle(message)})
        elif op in TERMINAL_OPS:
            if self.logic.silent:
                self.ignored += 1
                return
            task = asyncio.create_task(self._answer(conn, op, message, reply))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            known = ", ".join((*TERMINAL_OPS, "admin"))
            await conn.send({**reply, "ok": False, "error": f"unknown op {op!r}; known: {known}"})

    async def _answer(self, conn: _Connection, op: str, message: dict[str, Any],
                      reply: dict[str, Any]) -> None:
        if op == "hello":
            station = message.get("station_id")
            if not isinstance(station, str) or not station:
                answer = {"ok": False, "error": "hello: station_id: expected a non-empty string"}
            else:
                conn.station_id = station
                log.info("terminal connected", extra=fields(station=station))
                answer = {"ok": True, "server": "evterm backend-loopback", "v": 1}
        else:
            if self.logic.delay_s > 0:
                await asyncio.sleep(self.logic.delay_s)
            try:
                answer = {"ok": True, "body": self.logic.handle(op, message.get("body"))}
            except ValueError as exc:
                answer = {"ok": False, "error": str(exc)}
        with contextlib.suppress(ConnectionError, OSError):
            await conn.send({**reply, **answer})


class LoopbackAdmin(BackendAdmin):
    """The admin commands of the loopback server: the shared ones and status,
    push_refund, push_local_list, send_raw, disconnect."""

    COMMANDS = ("status", "silent", "delay", "push_refund", "push_local_list", "set_token",
                "received", "ledger", "send_raw", "disconnect", "plant")

    def __init__(self, server: LoopbackServer) -> None:
        super().__init__(server.logic)
        self.server = server

    async def _cmd_status(self, message: dict[str, Any]) -> dict[str, Any]:
        return {"silent": self.logic.silent, "delay_s": self.logic.delay_s,
                "terminals": sorted(str(c.station_id) for c in self.server.terminals()),
                "received": len(self.logic.received), "ignored": self.server.ignored,
                "tokens": len(self.logic.tokens), "list_version": self.logic.list_version}

    async def _cmd_push_refund(self, message: dict[str, Any]) -> dict[str, Any]:
        psp_reference = message.get("psp_reference")
        if not isinstance(psp_reference, str):
            raise AdminError(f"psp_reference: expected a string, got {psp_reference!r}")
        refund = self.logic.refund(psp_reference, amount(message), message.get("reason"))
        delivered = await self.server.push("refund", refund.to_json(),
                                           message.get("station_id"))
        return {"refund": refund.to_json(), "delivered": delivered}

    async def _cmd_push_local_list(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("update") is not None:
            update = LocalListUpdate.from_json(message["update"])
            self.logic.list_version = max(self.logic.list_version, update.version)
        else:
            update = self.logic.local_list()
        delivered = await self.server.push("local_list", update.to_json(),
                                           message.get("station_id"))
        return {"update": update.to_json(), "delivered": delivered}

    async def _cmd_send_raw(self, message: dict[str, Any]) -> dict[str, Any]:
        line, repeat = message.get("line"), message.get("repeat", 1)
        if not isinstance(line, str):
            raise AdminError(f"line: expected a string, got {line!r}")
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 1 <= repeat <= 10**7:
            raise AdminError(f"repeat: expected an integer from 1 to 10000000, got {repeat!r}")
        sent = await self.server.broadcast((line * repeat + "\n").encode(),
                                           message.get("station_id"))
        return {"delivered": sent}

    async def _cmd_disconnect(self, message: dict[str, Any]) -> dict[str, Any]:
        dropped = self.server.terminals(message.get("station_id"))
        for conn in dropped:
            conn.writer.close()
        return {"disconnected": len(dropped)}


async def serve(logic: BackendLogic, socket_path: str) -> None:
    server = LoopbackServer(logic, socket_path)
    await server.start()
    print(json.dumps({"event": "ready", "socket": socket_path, "pid": os.getpid(),
                      "tokens": len(logic.tokens), "rules": logic.rule_count}), flush=True)
    stop = stop_on_signals()
    try:
        await stop.wait()
    finally:
        await server.close()


def run_forever(logic: BackendLogic, socket_path: str) -> int:
    try:
        asyncio.run(serve(logic, socket_path))
    except (OSError, RuntimeError) as exc:
        print(f"evterm sim backend-loopback: {exc}", file=sys.stderr)
        return 2
    return 0
