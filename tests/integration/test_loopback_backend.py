"""The terminal's LoopbackBackend against the real `evterm sim backend-loopback` process:
token auth, payments, pushes, a killed and restarted server, silence, junk on the wire."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.backend_process import BackendProcess
from terminal.backend.api import BackendUnavailable
from terminal.backend.loopback import LoopbackBackend
from terminal.backend.messages import (
    AuthStatus,
    CaptureRequest,
    LocalListUpdate,
    PreauthRequest,
    Refund,
    TokenAuthRequest,
    VoidRequest,
)
from terminal.config import AuthConfig
from terminal.identification.auth import Authorizer
from terminal.kernel.cards import CardData, mask_pan
from terminal.payment.crypto import TokenKey, load_gateway_key, seal, tokenize
from terminal.store import AUTH_SCHEMA
from terminal.store.auth_tables import AuthStore

STATION = "DE*EVT*E0001*1"
VISA = "4111111111111111"  # public test card numbers only
DO_NOT_HONOR = "4000000000000002"
KEY = TokenKey("k1", bytes(range(32)))
TOKENS = [
    {"id_token": "04AABBCCDD", "status": "Accepted", "cost_cap": "30.00", "group_id": "FLEET"},
    {"id_token": "04BLOCKED0", "status": "Blocked"},
]


class BackendSim(BackendProcess):
    """The simulator process, with admin commands awaitable from the test's loop."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, TOKENS)

    async def admin(self, cmd: str, **values: Any) -> dict[str, Any]:  # type: ignore[override]
        return await asyncio.to_thread(BackendProcess.admin, self, cmd, **values)


@pytest.fixture
def sim() -> Iterator[BackendSim]:
    folder = Path(tempfile.mkdtemp(prefix="evbk-"))  # short: a socket path < 108 bytes
    backend_sim = BackendSim(folder)
    backend_sim.start()
    yield backend_sim
    if backend_sim.proc is not None:
        backend_sim.proc.kill()
        backend_sim.proc.wait(timeout=5)
    shutil.rmtree(folder, ignore_errors=True)


class Listener:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.changed = asyncio.Event()

    async def wait_for(self, kind: str, count: int = 1, timeout_s: float = 5.0) -> list[Any]:
        async def enough() -> list[Any]:
            while len(found := [v for k, v in self.events if k == kind]) < count:
                self.changed.clear()
                await self.changed.wait()
            return found

        return await asyncio.wait_for(enough(), timeout_s)

    def _add(self, kind: str, value: Any) -> None:
        self.events.append((kind, value))
        self.changed.set()

    async def on_refund(self, refund: Refund) -> None:
        self._add("refund", refund)

    async def on_local_list(self, update: LocalListUpdate) -> None:
        self._add("local_list", update)

    async def on_connectivity(self, online: bool) -> None:
        self._add("online", online)


async def connected(sim: BackendSim, timeout_s: float = 2.0, **kwargs: Any
                    ) -> tuple[LoopbackBackend, Listener]:
    backend = LoopbackBackend(sim.socket, STATION, timeout_s, reconnect_min_s=0.05,
                              reconnect_max_s=0.3, **kwargs)
    listener = Listener()
    backend.set_listener(listener)
    await backend.start()
    assert backend.online
    assert await listener.wait_for("online") == [True]
    return backend, listener


def preauth_request(sim: BackendSim, pan: str, reference: str) -> PreauthRequest:
    card = CardData(pan, "2812")
    envelope = seal(card, load_gateway_key(sim.gateway_public), STATION, reference)
    return PreauthRequest(reference, STATION, Decimal("50.00"), "EUR", envelope,
                          tokenize(card, KEY), mask_pan(pan), "visa")


def test_token_auth_payment_and_refund_push(sim):
    async def scenario() -> None:
        backend, listener = await connected(sim)
        try:
            ok = await backend.authorize_token(TokenAuthRequest("04AABBCCDD", "ISO14443",
                                                                STATION))
            assert (ok.status, ok.cost_cap, ok.group_id) == (AuthStatus.ACCEPTED,
                                                             Decimal("30.00"), "FLEET")
            assert ok.cache_expiry is not None
            blocked = await backend.authorize_token(TokenAuthRequest("04BLOCKED0", "Local",
                                                                     STATION))
            assert blocked.status is AuthStatus.BLOCKED

            declined = await backend.preauthorize(preauth_request(sim, DO_NOT_HONOR, "S-1"))
            assert (declined.approved, declined.reason) == (False, "do_not_honor")
            approved = await backend.preauthorize(preauth_request(sim, VISA, "S-2"))
            assert (approved.approved, approved.amount_approved) == (True, Decimal("50.00"))
            psp = approved.psp_reference
            above = await backend.capture(CaptureRequest("S-2", psp, Decimal("50.01"), "EUR"))
            assert (above.ok, above.reason) == (False, "amount_above_authorised")
            # the answer to a reference is final: a retry gets the same answer
            again = await backend.capture(CaptureRequest("S-2", psp, Decimal("20"), "EUR"))
            assert again == above
            captured = await backend.capture(CaptureRequest("S-2b", psp, Decimal("23.40"),
                                                            "EUR"))
            assert captured.ok
            voided = await backend.void(VoidRequest("S-2v", psp))
            assert (voided.ok, voided.reason) == (False, "already_captured")

            pushed = await sim.admin("push_refund", psp_reference=psp, amount="3.40",
                                     reason="goodwill")
            assert pushed["delivered"] == 1
            [refund] = await listener.wait_for("refund")
            assert (refund.psp_reference, refund.reference, refund.amount, refund.reason) == (
                psp, "S-2", Decimal("3.40"), "goodwill")
            await sim.admin("push_local_list")
            [update] = await listener.wait_for("local_list")
            assert (update.version, update.update_type) == (1, "Full")
            assert {e.id_token for e in update.entries} == {"04AABBCCDD", "04BLOCKED0"}

            received = await sim.admin("received")
            ops = [(m["op"], m["key"], m["count"]) for m in received["messages"]]
            assert ops[2:] == [("preauthorize", "S-1", 1), ("preauthorize", "S-2", 1),
                               ("capture", "S-2", 2), ("capture", "S-2b", 1),
                               ("void", "S-2v", 1)]
            assert received["pan_leaks"] == []
            status = await sim.admin("status")
            assert status["terminals"] == [STATION]
        finally:
            await backend.close()
        assert listener.events[-1] == ("online", False)

    asyncio.run(scenario())
    socket_path = sim.socket
    assert sim.stop(signal.SIGTERM) == 0
    assert not os.path.exists(socket_path)
    log_text = sim.log_text()
    assert "masked_pan=411111******1111" in log_text
    for pan in (VISA, DO_NOT_HONOR):
        assert pan not in log_text


def test_killed_server_fails_fast_and_the_link_comes_back(sim, tmp_path):
    conn = sqlite3.connect(tmp_path / "auth.db", isolation_level=None)
    conn.executescript(AUTH_SCHEMA)  # the daemon adds it as a store migration

    async def scenario() -> None:
        backend, listener = await connected(sim)
        authorizer = Authorizer(AuthConfig(offline_tx_for_unknown_id=True), backend,
                                AuthStore(conn), station_id=STATION)
        try:
            online = await authorizer.authorize("04AABBCCDD", "ISO14443")
            assert (online.accepted, online.source) == (True, "online")
            sim.stop(signal.SIGKILL)
            assert await listener.wait_for("online", 2) == [True, False]
            assert not backend.online
            started = time.monotonic()
            with pytest.raises(BackendUnavailable, match="offline"):
                await backend.authorize_token(TokenAuthRequest("04AABBCCDD", "ISO14443",
                                                               STATION))
            assert time.monotonic() - started < 0.1
            started = time.monotonic()
            cached = await authorizer.authorize("04AABBCCDD", "ISO14443")
            unknown = await authorizer.authorize("04NEWCARD0", "ISO14443")
            assert time.monotonic() - started < 0.5
            assert (cached.accepted, cached.source) == (True, "cache")
            assert (unknown.accepted, unknown.unknown, unknown.offline) == (True, True, True)

            await asyncio.to_thread(sim.start)  # the stale socket file is replaced
            assert await listener.wait_for("online", 3) == [True, False, True]
            assert backend.online
            recheck = await authorizer.recheck("04NEWCARD0", "ISO14443")
            assert recheck is not None
            assert (recheck.accepted, recheck.reason_code) == (False, "unknown")
        finally:
            await backend.close()

    asyncio.run(scenario())
    conn.close()


def test_silent_server_times_out_and_slow_answers_are_matched(sim):
    async def scenario() -> None:
        backend, _ = await connected(sim, timeout_s=0.5)
        request = TokenAuthRequest("04AABBCCDD", "ISO14443", STATION)
        try:
            await sim.admin("silent", on=True)
            started = time.monotonic()
            with pytest.raises(BackendUnavailable, match=r"no answer to authorize_token"):
                await backend.authorize_token(request)
            assert 0.5 <= time.monotonic() - started < 1.5
            assert backend.online  # silent, not gone
            await sim.admin("silent", on=False)
            await sim.admin("delay", delay_s=0.2)
            answers = await asyncio.gather(
                backend.authorize_token(request),
                backend.authorize_token(TokenAuthRequest("04BLOCKED0", "Local", STATION)),
                backend.authorize_token(TokenAuthRequest("04UNKNOWN0", "Local", STATION)))
            assert [a.status for a in answers] == [AuthStatus.ACCEPTED, AuthStatus.BLOCKED,
                                                   AuthStatus.UNKNOWN]
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_malformed_lines_from_the_server_are_dropped(sim):
    junk = [
        "not json at all",
        "[1, 2, 3]",
        '{"id": "9999", "ok": true, "body": {}}',
        '{"push": "refund", "body": {"refund_id": "R"}}',
        '{"push": "teleport", "body": {}}',
        '{"push": "local_list", "body": {"version": 0, "update_type": "Full", "entries": []}}',
        "\xff" * 10,
    ]

    async def scenario() -> None:
        backend, listener = await connected(sim)
        try:
            for line in junk:
                assert (await sim.admin("send_raw", line=line))["delivered"] == 1
            # longer than the link's line limit: dropped, and its tail read as junk
            assert (await sim.admin("send_raw", line="x", repeat=300_000))["delivered"] == 1
            update = {"version": 5, "update_type": "Differential",
                      "entries": [{"id_token": "04AABBCCDD", "status": "Removed"}]}
            await sim.admin("push_local_list", update=update)
            [received] = await listener.wait_for("local_list")
            assert (received.version, received.entries[0].status) == (5, None)
            answer = await backend.authorize_token(TokenAuthRequest("04AABBCCDD", "ISO14443",
                                                                    STATION))
            assert answer.status is AuthStatus.ACCEPTED
            assert backend.online
            assert backend.stats["connects"] == 1
            assert backend.stats["dropped_lines"] >= len(junk) + 1
            assert [k for k, _ in listener.events] == ["online", "local_list"]
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_admin_command_line(sim):
    def cli(*args: str) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-m", "terminal.cli", "sim", "backend-admin", *args,
             "--socket", sim.socket], capture_output=True, text=True, timeout=20)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert cli("silent", "on")["silent"] is True
    assert cli("status")["silent"] is True
    assert cli("delay", "0.5")["delay_s"] == 0.5
    refused = subprocess.run(
        [sys.executable, "-m", "terminal.cli", "sim", "backend-admin", "refund", "PSP-NOPE",
         "--socket", sim.socket], capture_output=True, text=True, timeout=20)
    assert refused.returncode == 2
    assert "no such payment" in refused.stderr
