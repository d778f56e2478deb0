"""The service menu in process (terminal.service): PIN hashes; card + PIN login through
the real tap handler and authoriser; wrong PINs lock PIN entry with growing delays that
survive a restart; a good PIN resets; a card that is not a technician's gets nothing;
every op needs a live token; idle logout; out of service refuses every kind of start and
survives a restart; diagnostics with every section and no secret; the meter self-check
on the daemon's own polls; the export bundle only below its root, scanned for key
material, PIN hashes and card numbers; the actions (stop, resend, restart, receipt)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from drivers.charger import ChargerError
from drivers.readers.events import RfidTap
from hw_mocks.cards import TEST_PANS
from terminal.backend.protocol import ProtocolError
from terminal.config import parse_config
from terminal.identification.taps import TapHandler
from terminal.localapi import RequestError
from terminal.ports import RESTART_EXIT_CODE
from terminal.report.bundle import read_bundle
from terminal.service.export import BUNDLE_FILES
from terminal.service.login import KEY_PIN_LOCKOUT
from terminal.service.pins import (
    check_pin,
    hash_pin,
    load_pins,
    parse_pin_hash,
    set_pin,
    verify_pin,
)
from terminal.service_cli import render_report
from terminal.station import (
    Station,
    build_station,
    daemon_status,
    database_path,
    load_station_terms,
)
from terminal.store import SCHEMA_VERSION, Store
from terminal.store.service_tables import ServiceStore
from tests.unit.clockfake import FakeClock
from tests.unit.test_daemon_journal import REPO
from tests.unit.test_daemon_ui_api import Car

TECH = "04AABBCCDDEEFF"
DRIVER_CARD = "04A1B2C3D4E5F6"
PIN = "2468"
READER = "ACS ACR1252 00 00"
TARIFF = REPO / "examples/tariffs/de_dc_hpc_adhoc.json"
HASH_FORMAT = re.compile(r"^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]{24}\$[A-Za-z0-9+/=]{44}$")
IDLE_S = 300


@pytest.fixture(scope="module")
def pin_hash() -> str:
    return hash_pin(PIN)  # ~60 ms: once for the module


@dataclass
class Ctx:
    tmp: Path
    config: Any
    clock: FakeClock
    car: Car
    station: Station = field(init=False)
    taps: TapHandler = field(init=False)
    published: list[dict[str, Any]] = field(default_factory=list)

    async def open(self) -> None:
        """(Re)start the daemon on the same database, as a restart of the process."""
        config = self.config
        self.station = build_station(config, self.clock, Store.open(database_path(config)),
                                     self.car, self.car, load_station_terms(config))
        self.station.api.publish = self.published.append  # type: ignore[method-assign]
        self.taps = self.station.taps
        await self.station.recover()

    async def restart(self) -> None:
        self.station.store.close()
        await self.open()

    async def tap(self, uid: str = TECH) -> dict[str, Any]:
        await self.taps.handle(RfidTap(READER, uid))
        return next(m for m in reversed(self.published) if m["type"] == "tap")

    async def op(self, name: str, **request: Any) -> dict[str, Any]:
        return await self.station.api.handlers[name]({"op": name, **request})

    async def login(self, pin: str = PIN) -> str:
        await self.tap()
        return str((await self.op("service_login", pin=pin))["token"])

    async def action(self, token: str, action: str, **request: Any) -> dict[str, Any]:
        return await self.op("service_action", token=token, action=action, **request)

    async def poll(self, polls: int = 1, step_s: float = 1) -> None:
        for _ in range(polls):
            self.clock.advance(step_s)
            await self.station.daemon.poll_once()

    def service(self) -> dict[str, Any]:
        return dict(self.station.status.snapshot()["service"])

    def audit_kinds(self) -> list[str]:
        return [row["kind"] for row in reversed(self.station.store.store.audit(1000))]


Body = Callable[[Ctx], Awaitable[None]]


def run(tmp_path: Path, pin_hash: str, body: Body, **sections: dict[str, Any]) -> None:
    pins = tmp_path / "pins.json"
    pins.write_text(json.dumps({"technicians": {TECH: pin_hash}}))
    raw: dict[str, dict[str, Any]] = {
        "station": {"id": "DE*EVT*E0001*1", "operator": "Op GmbH",
                    "state_dir": str(tmp_path / "state")},
        "session": {"tariff_file": str(TARIFF)},
        "localapi": {"socket_path": str(tmp_path / "api.sock"), "dev_free_start": True},
        "auth": {"technician_ids": TECH},
        "service": {"pins_file": str(pins), "export_allowed_root": str(tmp_path / "media")},
    }
    for name, values in sections.items():
        raw[name] = {**raw.get(name, {}), **values}
    clock = FakeClock()
    ctx = Ctx(tmp_path, parse_config(raw), clock, Car(clock))

    async def scenario() -> None:
        await ctx.open()
        try:
            await body(ctx)
        finally:
            ctx.station.store.close()

    asyncio.run(scenario())


async def charging(ctx: Ctx) -> str:
    reply = await ctx.station.driver_api.start({"id_token": "APP-1"})
    await ctx.poll(3)
    assert ctx.station.daemon.state.phase.value == "Charging"
    return str(reply["session_id"])


# ---- PIN hashes ------------------------------------------------------------------------------


def test_a_pin_hash_is_salted_scrypt_and_verifies_only_its_pin(tmp_path, pin_hash):
    assert HASH_FORMAT.match(pin_hash), pin_hash
    n, r, p, salt, digest = parse_pin_hash(pin_hash)
    assert (n, r, p, len(salt), len(digest)) == (2**14, 8, 1, 16, 32)
    assert verify_pin(PIN, pin_hash)
    assert not verify_pin("2469", pin_hash) and not verify_pin("24680", pin_hash)
    assert hash_pin(PIN, salt=salt) == pin_hash  # deterministic for a given salt
    assert hash_pin(PIN) != pin_hash  # a new salt every time
    for bad in ("123", "1234567890123", "12a4", " 1234", 1234, None):
        with pytest.raises(ValueError, match=r"^pin: expected 4 to 12 digits$"):
            check_pin(bad)
    for broken in ("bcrypt$1$2$3$a$b", pin_hash.replace("$16384$", "$1000$"), "scrypt$x"):
        with pytest.raises(ValueError):
            verify_pin(PIN, broken)
    pins = tmp_path / "pins.json"
    set_pin(pins, "04aabbccddeeff", "13579")
    set_pin(pins, "0A1B2C3D4E", "97531")
    assert stat.S_IMODE(pins.stat().st_mode) == 0o600
    loaded = load_pins(pins)
    assert set(loaded) == {TECH, "0A1B2C3D4E"}
    assert verify_pin("13579", loaded[TECH]) and not verify_pin("97531", loaded[TECH])
    assert "13579" not in pins.read_text()


# ---- login -------------------------------------------------------------------------------------


def test_a_technician_card_opens_the_pin_window_and_the_right_pin_gives_a_token(tmp_path,
                                                                                  pin_hash):
    async def body(ctx: Ctx) -> None:
        assert ctx.service() == {"state": "none", "technician": None, "locked_until": None,
                                 "pin_until": None}
        tap = await ctx.tap()
        assert (tap["result"], tap["reason"], tap["message"]) == (
            "service", "technician", "Technician card")
        assert TECH not in json.dumps(tap)
        shown = ctx.service()
        assert (shown["state"], shown["technician"]) == ("pin", "\u2026EEFF")
        assert shown["pin_until"] == "2026-11-21T10:01:00.000Z"
        assert ctx.station.daemon.state.phase.value == "Available"  # no session for a technician
        reply = await ctx.op("service_login", pin=PIN)
        assert reply["technician"] == "\u2026EEFF" and reply["expires_in_s"] == IDLE_S
        assert len(reply["token"]) >= 32
        assert ctx.service()["state"] == "active"
        assert ctx.audit_kinds() == ["service_card", "service_login"]
        logout = await ctx.op("service_logout", token=reply["token"])
        assert logout["technician"] == "\u2026EEFF"
        assert ctx.service()["state"] == "none"
        assert ctx.audit_kinds()[-1] == "service_logout"
        with pytest.raises(RequestError, match=r"^token:"):
            await ctx.op("service_diagnostics", token=reply["token"])

    run(tmp_path, pin_hash, body)


def test_the_pin_window_closes_and_login_can_wait_for_the_card(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        with pytest.raises(RequestError, match=r"^card: tap a technician card first$"):
            await ctx.op("service_login", pin=PIN)
        await ctx.tap()
        await ctx.poll(1, step_s=60)  # pin_window_s = 60
        assert ctx.service()["state"] == "none"
        with pytest.raises(RequestError, match=r"^card:"):
            await ctx.op("service_login", pin=PIN)
        waiting = asyncio.create_task(ctx.op("service_login", pin=PIN, wait_card_s=5))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        await ctx.tap()
        assert (await waiting)["technician"] == "\u2026EEFF"
        with pytest.raises(RequestError, match=r"^card: tap a technician card first \(none "
                                               r"within 0.1 s\)$"):
            await ctx.op("service_login", pin=PIN, wait_card_s=0.1)
        for bad in ({"pin": PIN, "wait_card_s": 500}, {"pin": PIN, "wait_card_s": "5"}):
            with pytest.raises(RequestError, match=r"^wait_card_s:"):
                await ctx.op("service_login", **bad)

    run(tmp_path, pin_hash, body)


def test_five_wrong_pins_lock_with_growing_delays_that_survive_a_restart(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        await ctx.tap()
        for left in ("4 attempts", "3 attempts", "2 attempts", "1 attempt"):
            with pytest.raises(RequestError, match=fr"^pin: wrong PIN \({left} left\)$"):
                await ctx.op("service_login", pin="1111")
        with pytest.raises(RequestError,
                           match=r"^locked: too many wrong PINs; try again in 30 s$"):
            await ctx.op("service_login", pin="1111")
        shown = ctx.service()
        assert (shown["state"], shown["locked_until"]) == ("locked", "2026-11-21T10:00:30.000Z")
        await ctx.tap()
        with pytest.raises(RequestError, match=r"^locked:"):  # even the right PIN
            await ctx.op("service_login", pin=PIN)

        await ctx.restart()  # the lockout is journaled
        assert ctx.service()["state"] == "locked"
        ctx.clock.advance(10)
        await ctx.tap()
        with pytest.raises(RequestError, match=r"^locked: .* try again in 20 s$"):
            await ctx.op("service_login", pin=PIN)
        ctx.clock.advance(21)
        await ctx.tap()
        for _ in range(4):
            with pytest.raises(RequestError, match=r"^pin: wrong PIN"):
                await ctx.op("service_login", pin="9999")
        with pytest.raises(RequestError, match=r"^locked: .* try again in 60 s$"):
            await ctx.op("service_login", pin="9999")  # the second lockout is twice as long
        await ctx.restart()  # a fresh state machine, same journal
        assert ctx.service()["state"] == "locked"
        ctx.clock.advance(61)
        token = await ctx.login()
        assert token
        saved = ServiceStore(ctx.station.store.store).get(KEY_PIN_LOCKOUT)
        assert saved == {"failures": 0, "lockouts": 0, "locked_until": None}
        kinds = ctx.audit_kinds()
        assert kinds.count("service_lockout") == 2
        assert kinds.count("service_login_failed") == 12  # 10 wrong, 2 while locked
        lockouts = [json.loads(r["detail"]) for r in ctx.station.store.store.audit(100)
                    if r["kind"] == "service_lockout"]
        assert [d["delay_s"] for d in lockouts] == [60, 30]
        queued = [m for m in ctx.station.store.store.outbox() if m.kind == "Audit"]
        assert len(queued) == len(kinds)  # every audit row goes to the backend

    run(tmp_path, pin_hash, body)


def test_a_good_pin_resets_the_count_of_wrong_ones(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        await ctx.tap()
        for _ in range(3):
            with pytest.raises(RequestError, match=r"^pin:"):
                await ctx.op("service_login", pin="0000")
        token = str((await ctx.op("service_login", pin=PIN))["token"])
        await ctx.op("service_logout", token=token)
        await ctx.tap()
        for left in ("4 attempts", "3 attempts", "2 attempts", "1 attempt"):  # a fresh five
            with pytest.raises(RequestError, match=fr"\({left} left\)"):
                await ctx.op("service_login", pin="0000")

    run(tmp_path, pin_hash, body)


def test_a_technician_without_a_pin_cannot_log_in(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        await ctx.tap("0A1B2C3D4E")
        with pytest.raises(RequestError, match=r"^pin: no PIN is set for this technician card"):
            await ctx.op("service_login", pin=PIN)

    run(tmp_path, pin_hash, body, auth={"technician_ids": f"{TECH},0A1B2C3D4E"})


def test_a_card_that_is_not_a_technicians_gets_nothing(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        tap = await ctx.tap(DRIVER_CARD)
        assert tap["result"] == "declined"  # an ordinary card: the offline policy decides
        assert ctx.service()["state"] == "none"
        with pytest.raises(RequestError, match=r"^card: tap a technician card first"):
            await ctx.op("service_login", pin=PIN)
        assert not any(kind.startswith("service") for kind in ctx.audit_kinds())

    run(tmp_path, pin_hash, body)


OPS = [("service_logout", {}), ("service_diagnostics", {}), ("service_report_daily", {}),
       ("service_receipt", {"session_id": "x"}),
       *[("service_action", {"action": action, "reason": "r", "folder": "/tmp/x"})
         for action in ("out_of_service", "in_service", "stop_session", "resend_outbox",
                        "restart", "meter_selfcheck", "export", "no_such_action")]]


def test_every_service_op_needs_a_live_token(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        token = await ctx.login()
        await charging(ctx)
        ctx.clock.advance(IDLE_S)  # expired, not yet swept by a poll
        for op, request in OPS:
            for bad in ({}, {"token": ""}, {"token": 5}, {"token": "not-a-token"},
                        {"token": token}):
                with pytest.raises(RequestError, match=r"^token: .*log in first"):
                    await ctx.op(op, **request, **bad)
        assert ctx.station.daemon.state.phase.value == "Charging"
        assert ctx.station.service.out_of_service is None and ctx.station.daemon.exit_code == 0
        assert ctx.audit_kinds() == ["service_card", "service_login", "service_logout"]

    run(tmp_path, pin_hash, body)


def test_an_idle_technician_is_logged_out(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        token = await ctx.login()
        for _ in range(3):  # each op refreshes the idle timer
            ctx.clock.advance(IDLE_S - 1)
            await ctx.op("service_diagnostics", token=token)
        ctx.published.clear()
        await ctx.poll(1, step_s=IDLE_S)
        assert ctx.service()["state"] == "none"
        pushed = [m["state"]["service"]["state"] for m in ctx.published if m["type"] == "state"]
        assert pushed[-1] == "none"
        logout = ctx.station.store.store.audit(1)[0]
        assert logout["kind"] == "service_logout"
        assert json.loads(logout["detail"]) == {"technician": "\u2026EEFF", "reason": "idle"}
        with pytest.raises(RequestError, match=r"^token:"):
            await ctx.op("service_diagnostics", token=token)
        assert ctx.audit_kinds().count("service_diagnostics") == 1  # once per login

    run(tmp_path, pin_hash, body)


# ---- out of service ------------------------------------------------------------------------------


def test_out_of_service_refuses_every_start_and_survives_a_restart(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        token = await ctx.login()
        with pytest.raises(RequestError, match=r"^reason:"):
            await ctx.action(token, "out_of_service", reason="  ")
        reply = await ctx.action(token, "out_of_service", reason="Cable replaced")
        expected = {"since": "2026-11-21T10:00:00.000Z", "by": "\u2026EEFF",
                    "reason": "Cable replaced"}
        assert reply["out_of_service"] == expected
        state = ctx.station.status.snapshot()
        assert state["out_of_service"] == expected and state["accepting_sessions"] is False
        assert daemon_status(ctx.station).endswith("; out of service: Cable replaced")
        with pytest.raises(RequestError, match=r"^out of service: Cable replaced$"):
            await ctx.station.driver_api.start({"id_token": "APP-1"})
        tap = await ctx.tap(DRIVER_CARD)
        assert (tap["result"], tap["reason"], tap["message"]) == (
            "declined", "unavailable", "out of service: Cable replaced")
        with pytest.raises(ProtocolError, match=r"out of service"):
            await ctx.station.commands.handle("remote_start", {"id_token": "APP-1"})
        assert ctx.station.daemon.state.phase.value == "Available"

        await ctx.restart()
        state = ctx.station.status.snapshot()
        assert state["out_of_service"] == expected and state["accepting_sessions"] is False
        assert state["service"]["state"] == "none"  # logins do not survive a restart
        with pytest.raises(RequestError, match=r"^out of service"):
            await ctx.station.driver_api.start({"id_token": "APP-1"})
        token = await ctx.login()  # a technician card still opens the service menu
        reply = await ctx.action(token, "in_service")
        assert reply["out_of_service"] is None and reply["state"]["accepting_sessions"]
        await ctx.station.driver_api.start({"id_token": "APP-1"})
        assert ctx.station.daemon.state.phase.value == "Authorized"
        actions = [json.loads(r["detail"]) for r in ctx.station.store.store.audit(100)
                   if r["kind"] == "service_action"]
        assert [(a["action"], a["ok"]) for a in reversed(actions)] == [
            ("out_of_service", False), ("out_of_service", True), ("in_service", True)]

    run(tmp_path, pin_hash, body)


# ---- diagnostics ---------------------------------------------------------------------------------


def key_files(tmp_path: Path) -> dict[str, Path]:
    files = {"token": tmp_path / "token.key", "gateway": tmp_path / "gateway.pem",
             "operator": tmp_path / "operator.pem", "client": tmp_path / "client.key"}
    files["token"].write_text(os.urandom(32).hex() + "\n")
    files["gateway"].write_bytes(X25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    files["operator"].write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    files["client"].write_bytes(generate_private_key(SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return files


def with_keys(tmp_path: Path) -> dict[str, dict[str, Any]]:
    files = key_files(tmp_path)
    return {"payment": {"token_key_file": str(files["token"]),
                        "gateway_key_file": str(files["gateway"]), "token_key_id": "k7"},
            "backend": {"operator_key_file": str(files["operator"]),
                        "key_file": str(files["client"])}}


def secrets_of(tmp_path: Path, pin_hash: str) -> list[str]:
    """Everything that must never leave the terminal: key file bodies, the PIN hash and
    its parts, the full technician id."""
    found = [pin_hash, *pin_hash.split("$")[4:]]
    for name in ("token.key", "gateway.pem", "operator.pem", "client.key"):
        text = (tmp_path / name).read_text().strip()
        found.append(text)
        found += [line for line in text.splitlines() if not line.startswith("-----")]
    return found


SECTIONS = {"generated_at", "station", "meter", "readers", "charger", "backend", "storage",
            "software", "config", "recent_sessions", "recent_faults"}


def test_diagnostics_show_every_section_and_no_secret(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        session_id = await charging(ctx)
        await ctx.station.driver_api.stop({})
        await ctx.poll(2)
        ctx.car.plugged = False
        await ctx.poll(2)

        async def broken() -> Any:
            raise ChargerError("no reply from unit 2")

        ctx.car.status = broken  # type: ignore[method-assign]
        await ctx.poll(1)
        token = await ctx.login()
        diag = (await ctx.op("service_diagnostics", token=token))["diagnostics"]
        assert set(diag) == SECTIONS
        meter = diag["meter"]
        assert meter["serial"] == "S1" and meter["expected_serial"] is None
        assert set(meter["last_reading"]) == {"energy_wh", "power_w", "voltage_v",
                                              "current_a", "at"}
        assert meter["counters"]["polls"] >= 8 and meter["counters"]["failed_polls"] == 0
        assert diag["charger"]["fault"] == "no reply from unit 2"
        assert diag["charger"]["counters"]["failed_polls"] == 1
        backend = diag["backend"]
        assert backend["kind"] == "none" and backend["outbox_depth"] > 0
        assert backend["oldest_undelivered_age_s"] >= 0 and backend["last_ack_at"] is None
        assert diag["storage"]["database_bytes"] > 0 and diag["storage"]["free_bytes"] > 0
        assert diag["storage"]["schema_version"] == SCHEMA_VERSION == 13
        assert diag["software"]["version"] == "0.1.0"
        recent, = diag["recent_sessions"]
        assert recent["id"] == session_id and recent["stop_reason"] == "Local"
        assert recent["energy_wh"] == "80" and recent["total"] and recent["currency"] == "EUR"
        assert any(f["source"] == "charger" and f["event"] == "raised"
                   for f in diag["recent_faults"])
        moments = [f["at"] for f in diag["recent_faults"]]
        assert moments == sorted(moments, reverse=True)  # newest first: the screen's order
        config = diag["config"]
        assert set(config) == {"station", "meter", "charger", "session", "localapi",
                               "logging", "readers", "payment", "zvt", "auth", "backend",
                               "ui", "service", "retention", "update", "report", "cdr"}
        assert config["payment"]["token_key_file"] == str(tmp_path / "token.key")
        assert config["payment"]["token_key_id"] == "***"
        assert config["auth"]["technician_ids"] == "***"
        assert config["zvt"]["password"] == "***"  # the payment terminal's password
        assert config["service"]["pins_file"] == str(tmp_path / "pins.json")
        assert config["service"]["pin_window_s"] == 60.0
        text = json.dumps(diag)
        for secret in [*secrets_of(tmp_path, pin_hash), TECH]:
            assert secret not in text
        report = render_report(diag)
        assert "charger" in report and "no reply from unit 2" in report
        assert session_id in report

    run(tmp_path, pin_hash, body, **with_keys(tmp_path))


# ---- actions -------------------------------------------------------------------------------------


async def selfcheck(ctx: Ctx, token: str) -> dict[str, Any]:
    """The self-check runs on the daemon's polls: drive them until it answers."""
    task = asyncio.create_task(ctx.action(token, "meter_selfcheck"))
    for _ in range(10):  # it needs two; at most 10 s on the fake clock (idle logout: 300)
        await asyncio.sleep(0.02)  # the op reaches its wait (or its audit row is written)
        if task.done():
            break
        await ctx.poll(1)
    return await task


def test_the_meter_self_check_passes_on_a_good_meter(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        token = await ctx.login()
        idle = await selfcheck(ctx, token)
        assert idle["passed"] is True, idle
        assert [c["name"] for c in idle["checks"]] == [
            "read", "serial", "counter_not_backwards", "counter_follows_power", "no_fault"]
        assert "no power; the counter moved 0 Wh" in idle["checks"][3]["detail"]
        assert len(idle["readings"]) == 2
        await charging(ctx)
        busy = await selfcheck(ctx, token)
        assert busy["passed"] is True, busy

    run(tmp_path, pin_hash, body, meter={"expected_serial": "S1"})


def test_the_meter_self_check_fails_naming_a_wrong_serial(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        token = await ctx.login()
        reply = await selfcheck(ctx, token)
        assert reply["passed"] is False
        failed = {c["name"]: c["detail"] for c in reply["checks"] if not c["ok"]}
        assert failed["serial"] == "meter reports S1, expected S9"
        audit = json.loads(ctx.station.store.store.audit(1)[0]["detail"])
        assert audit["action"] == "meter_selfcheck" and audit["passed"] is False
        assert "serial" in audit["failed"]

    run(tmp_path, pin_hash, body, meter={"expected_serial": "S9"})


def test_stop_resend_receipt_and_restart(tmp_path, pin_hash):
    async def body(ctx: Ctx) -> None:
        woken: list[bool] = []
        ctx.station.daemon.link.wake = lambda: woken.append(True)  # type: ignore[method-assign]
        token = await ctx.login()  # a technician card tapped during a session stops it
        session_id = await charging(ctx)
        stopped = await ctx.action(token, "stop_session")
        assert stopped["session_id"] == session_id
        assert ctx.station.daemon.state.stop_reason.value == "Technician"
        await ctx.poll(2)
        ctx.car.plugged = False
        await ctx.poll(2)
        with pytest.raises(RequestError, match=r"^action: stop_session:"):
            await ctx.action(token, "stop_session")
        woken.clear()
        resent = await ctx.action(token, "resend_outbox")
        assert woken and resent["woken"] is True
        assert resent["pending"] == len(ctx.station.store.store.outbox(pending_only=True)) - 1
        receipt = await ctx.op("service_receipt", token=token, session_id=session_id,
                               language="de")
        assert receipt["session_id"] == session_id and "Energie" in receipt["text"]
        with pytest.raises(RequestError, match=r"^action: expected one of"):
            await ctx.action(token, "format_disk")
        restart = await ctx.action(token, "restart")
        assert restart == {"action": "restart", "restarting": True, "exit_code": 75}
        assert ctx.station.daemon.exit_code == RESTART_EXIT_CODE
        await asyncio.sleep(0.3)
        assert ctx.station.daemon._stopping.is_set()
        kinds = ctx.audit_kinds()
        assert kinds.count("service_action") == 5 and "service_receipt" in kinds

    run(tmp_path, pin_hash, body)


def scan(folder: Path, forbidden: list[str]) -> list[str]:
    hits = []
    for path in folder.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [f"{path.name}: {s[:12]}" for s in forbidden if s.encode() in data]
    return hits


def pan_forms() -> list[str]:
    forms = []
    for pan in TEST_PANS.values():
        forms += [pan, " ".join(pan[i:i + 4] for i in range(0, len(pan), 4))]
    return forms


def test_the_export_bundle_stays_under_its_root_and_holds_no_secret(tmp_path, pin_hash):
    log_file = tmp_path / "station.log"
    visa = TEST_PANS["visa"]
    log_file.write_text(f"2026-11-21T10:00:00.000Z INFO evterm.x: something pan={visa}\n"
                        "2026-11-21T10:00:01.000Z INFO evterm.station: daemon ready\n")

    async def body(ctx: Ctx) -> None:
        root = tmp_path / "media"
        token = await ctx.login()
        await ctx.station.driver_api.report_problem({"text": f"charged twice on "
                                              f"{' '.join(visa[i:i + 4] for i in (0, 4, 8, 12))}"})
        for outside in (str(tmp_path / "elsewhere"), str(root / ".." / "escape"), "usb",
                        "/etc"):
            with pytest.raises(RequestError, match=r"^folder: .* is not under "
                                                   "export_allowed_root"):
                await ctx.action(token, "export", folder=outside)
        (root).mkdir()
        (root / "link").symlink_to(tmp_path)
        with pytest.raises(RequestError, match=r"^folder:"):
            await ctx.action(token, "export", folder=str(root / "link" / "x"))
        assert not (tmp_path / "x").exists() and not (tmp_path / "elsewhere").exists()

        reply = await ctx.action(token, "export", folder=str(root / "usb1"))
        bundle = Path(reply["path"])
        assert bundle.parent == root / "usb1"
        assert bundle.name.startswith("evterm-diag-DE-EVT-E0001-1-20261121T1000")
        assert sorted(p.name for p in bundle.iterdir()) == sorted(BUNDLE_FILES)
        assert reply["files"] == list(BUNDLE_FILES) and reply["bytes"] > 0
        facts = read_bundle(bundle)  # the report's facts (docs/reports.md)
        assert facts.station_id == ctx.station.config.station.id
        assert facts.timezone == ctx.station.config.station.timezone
        assert list(facts.statuses) == [] and list(facts.sessions) == []
        forbidden = [*secrets_of(tmp_path, pin_hash), *pan_forms(), TECH]
        assert scan(bundle, forbidden) == []
        config = tomllib.loads((bundle / "config.redacted.toml").read_text())
        assert config["payment"]["token_key_id"] == "***"
        assert config["payment"]["token_key_file"] == str(tmp_path / "token.key")
        integrity = (bundle / "db-integrity.txt").read_text()
        assert "integrity_check: ok" in integrity and "  sessions: 0" in integrity
        log_text = (bundle / "log.txt").read_text()
        assert "daemon ready" in log_text and "pan=[number removed]" in log_text
        audit = json.loads((bundle / "audit.json").read_text())
        assert {"service_card", "service_login", "problem_report"} <= {a["kind"]
                                                                       for a in audit}
        assert any(a["kind"] == "problem_report" and "[number removed]" in a["detail"]["text"]
                   for a in audit)
        diagnostics = json.loads((bundle / "diagnostics.json").read_text())
        assert set(diagnostics) == SECTIONS
        assert json.loads((bundle / "sessions.json").read_text()) == []
        assert ctx.audit_kinds()[-1] == "service_action"

        # key material in the log: the bundle is refused and removed
        log_file.write_text((tmp_path / "token.key").read_text())
        with pytest.raises(RequestError, match=r"^folder: export refused, .*payment"
                                               r"\.token_key_file"):
            await ctx.action(token, "export", folder=str(root / "usb2"))
        assert list((root / "usb2").iterdir()) == []

    run(tmp_path, pin_hash, body, service={"log_file": str(log_file)}, **with_keys(tmp_path))
