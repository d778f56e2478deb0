"""Who may do what on the local API (docs/local-api.md, "Roles"), over the real socket
of an in-process station: the role comes from the peer's user id (SO_PEERCRED). Here
the test process is the peer; `service_uids` decides whether its user has the service
role. The driver role (the touchscreen) never starts a session, stops only the session
on the screen and fetches only the receipt on offer; the service role starts only with
a technician's login, unless `[localapi] dev_free_start` is on."""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from terminal.localapi import LocalApi, Role, default_service_uids
from tests.unit.test_service import Ctx, charging, run
from tests.unit.test_service import pin_hash as pin_hash  # the module-scoped fixture


@pytest.fixture
def short_dir():
    """A short folder for the socket (a Unix socket path must stay under 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="evroles") as folder:
        yield Path(folder)


async def ask(path: Path, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    """One connection: each request, then its reply line."""
    reader, writer = await asyncio.open_unix_connection(str(path))
    replies = []
    try:
        for message in requests:
            writer.write((json.dumps(message) + "\n").encode())
            await writer.drain()
            replies.append(json.loads(await reader.readline()))
    finally:
        writer.close()
    return replies


async def serve(ctx: Ctx, role: Role) -> LocalApi:
    """The station's socket, with the test process's user in `role`."""
    api = ctx.station.api
    api.service_uids = default_service_uids() if role is Role.SERVICE else frozenset()
    await api.start()
    return api


def sections(short_dir: Path, free_start: bool) -> dict[str, dict[str, Any]]:
    return {"localapi": {"socket_path": str(short_dir / "api.sock"),
                         "dev_free_start": free_start}}


def test_peers_get_their_role_from_their_user_id():
    api = LocalApi("/nonexistent.sock")
    assert api.role_of(0) is Role.SERVICE and api.role_of(os.geteuid()) is Role.SERVICE
    assert api.role_of(65534) is Role.DRIVER  # nobody: the screen's rights only
    assert api.role_of(None) is Role.DRIVER  # no credentials: the narrow role


def test_the_screen_cannot_start_list_or_use_another_stop(tmp_path, short_dir, pin_hash):
    async def body(ctx: Ctx) -> None:
        api = await serve(ctx, Role.DRIVER)
        path = api.path
        try:
            start, listing = await ask(path, {"op": "start", "id_token": "ANY-TOKEN"},
                                       {"op": "sessions"})
            for reply, op in ((start, "start"), (listing, "sessions")):
                assert reply["ok"] is False
                assert reply["error"].startswith(f"op: {op} needs the service role"), reply
            assert ctx.station.daemon.state.session_id is None  # nothing started

            session_id = await charging(ctx)  # started by the service role (in process)
            refused = await ask(
                path,
                {"op": "stop", "reason": "Technician", "session_id": session_id},
                {"op": "stop", "session_id": session_id, "id_token": "APP-1"},
                {"op": "stop", "session_id": "another-session"},
                {"op": "stop", "reason": "Local"},
            )
            assert [r["ok"] for r in refused] == [False] * 4
            assert [r["error"].split(":")[0] for r in refused] == [
                "reason", "id_token", "session_id", "session_id"]
            assert "is not the session on the screen" in refused[2]["error"]
            assert ctx.station.daemon.state.phase.value == "Charging"  # still charging

            stopped, = await ask(path, {"op": "stop", "reason": "Local",
                                        "session_id": session_id})
            assert stopped["ok"] is True, stopped
            assert ctx.station.daemon.state.stop_reason.value == "Local"

            # the driver's own intents still work
            language, status = await ask(path, {"op": "language", "language": "de"},
                                         {"op": "status"})
            assert language["ok"] and status["ok"] and status["state"]["language"] == "de"
        finally:
            await api.close()

    run(tmp_path, pin_hash, body, **sections(short_dir, free_start=True))


def test_the_screen_gets_only_the_receipt_on_offer(tmp_path, short_dir, pin_hash):
    async def body(ctx: Ctx) -> None:
        first = await charging(ctx)
        await ctx.station.driver_api.stop({})
        await ctx.poll(2)
        ctx.car.plugged = False
        await ctx.poll(2)
        ctx.car.plugged = True
        await ctx.poll(1)
        second = await charging(ctx)
        await ctx.station.driver_api.stop({})
        await ctx.poll(2)
        ctx.car.plugged = False
        await ctx.poll(2)
        assert ctx.station.status.snapshot()["receipt_pending"]["session_id"] == second
        api = await serve(ctx, Role.DRIVER)
        try:
            earlier, latest, unnamed = await ask(
                api.path, {"op": "receipt", "session_id": first},
                {"op": "receipt", "session_id": second, "language": "de"},
                {"op": "receipt"})
            assert earlier["ok"] is False and earlier["error"].startswith("session_id:")
            assert "is not the receipt on offer" in earlier["error"]
            assert latest["ok"] is True and latest["session_id"] == second
            assert "Beleg" in latest["text"] or latest["receipt"]["language"] == "de"
            assert unnamed["ok"] is False and unnamed["error"].startswith("session_id:")
        finally:
            await api.close()
        api = await serve(ctx, Role.SERVICE)
        try:
            service, = await ask(api.path, {"op": "receipt", "session_id": first})
            assert service["ok"] is True and service["session_id"] == first
        finally:
            await api.close()

    run(tmp_path, pin_hash, body, **sections(short_dir, free_start=True))


def test_technician_ops_from_the_screen_still_need_the_login(tmp_path, short_dir, pin_hash):
    async def body(ctx: Ctx) -> None:
        api = await serve(ctx, Role.DRIVER)
        try:
            anonymous, = await ask(api.path, {"op": "service_action",
                                              "action": "out_of_service", "reason": "x"})
            assert anonymous["ok"] is False
            assert anonymous["error"].startswith("token: log in first")
            token = await ctx.login()  # card on the daemon's reader + PIN
            diag, = await ask(api.path, {"op": "service_diagnostics", "token": token})
            assert diag["ok"] is True, diag
            start, = await ask(api.path, {"op": "start", "id_token": "ANY", "token": token})
            assert start["error"].startswith("op: start needs the service role")
        finally:
            await api.close()

    run(tmp_path, pin_hash, body, **sections(short_dir, free_start=False))


def test_the_service_role_starts_only_with_a_technician_login(tmp_path, short_dir, pin_hash):
    async def body(ctx: Ctx) -> None:
        api = await serve(ctx, Role.SERVICE)
        try:
            free, forged = await ask(api.path, {"op": "start", "id_token": "ANY"},
                                     {"op": "start", "id_token": "ANY", "token": "made-up"})
            assert free["ok"] is False and free["error"].startswith("token: log in first")
            assert forged["ok"] is False and forged["error"].startswith(
                "token: unknown or expired")
            assert ctx.station.daemon.state.session_id is None
            token = await ctx.login()
            started, = await ask(api.path, {"op": "start", "id_token": "TEST-CARD",
                                            "token": token})
            assert started["ok"] is True, started
            assert ctx.station.daemon.state.session_id == started["session_id"]
            assert "service_start" in ctx.audit_kinds()
            listing, = await ask(api.path, {"op": "sessions"})
            assert listing["ok"] is True and listing["sessions"][0]["id"] == (
                started["session_id"])
            other, = await ask(api.path, {"op": "stop", "reason": "Technician",
                                          "session_id": "an-earlier-session"})
            assert other["ok"] is False and other["error"].startswith("session_id:")
            assert ctx.station.daemon.state.stop_reason is None  # still running
        finally:
            await api.close()

    run(tmp_path, pin_hash, body, **sections(short_dir, free_start=False))


def test_dev_free_start_lets_only_the_service_role_start_without_login(tmp_path, short_dir,
                                                                       pin_hash):
    async def body(ctx: Ctx) -> None:
        api = await serve(ctx, Role.SERVICE)
        try:
            started, = await ask(api.path, {"op": "start", "id_token": "DEV-1"})
            assert started["ok"] is True, started
        finally:
            await api.close()

    run(tmp_path, pin_hash, body, **sections(short_dir, free_start=True))
