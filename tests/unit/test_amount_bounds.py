"""Amounts are bounded at every boundary by the one rule of terminal.kernel.money:
finite, above 0, at most MAX_AMOUNT (energy: MAX_ENERGY_WH) and at most the allowed
decimals. A cap of 1e999999999, 1e26, NaN, Infinity or -1 is refused naming the field
at the backend's remote start (both the wire model and the command), in the backend's
authorisation answer and local list, and in the configuration; a session with the
largest allowed cap still closes with a receipt."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from terminal.backend.commands import Commands
from terminal.backend.messages import LocalListEntry, MessageError, TokenAuthResponse
from terminal.backend.protocol import ProtocolError, RemoteStart
from terminal.config import ConfigError, parse_config
from terminal.kernel.money import (
    MAX_AMOUNT,
    MAX_ENERGY_WH,
    AmountError,
    check_amount,
    check_energy_wh,
    plain,
)
from terminal.station import Station
from tests.unit.clockfake import FakeClock
from tests.unit.test_daemon_ui_api import Car, poll
from tests.unit.test_daemon_ui_api import run as run_station

HOSTILE = ["1e999999999", "1e26", "NaN", "Infinity", "-1", "sNaN", "-Infinity", "0"]


# ---- the one rule ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", [*HOSTILE, "1.0000001", "x", "", " ", "1" * 41])
def test_check_amount_refuses_naming_the_field(text: str) -> None:
    with pytest.raises(AmountError, match=r"^cost_cap: expected a number above 0 up to "
                                          r"1000000000 with at most \d decimals"):
        check_amount(text, "cost_cap")


@pytest.mark.parametrize("value", [1.5, True, None, [], {}, 10**400, 10**5000],
                         ids=["float", "bool", "none", "list", "dict", "int400", "int5000"])
def test_check_amount_refuses_other_types(value: Any) -> None:
    with pytest.raises(AmountError, match=r"^amount: "):
        check_amount(value, "amount")


def test_check_amount_accepts_what_is_in_bounds() -> None:
    assert check_amount("25.00", "x") == Decimal("25.00")
    assert check_amount(7, "x") == 7
    assert check_amount(plain(MAX_AMOUNT), "x") == MAX_AMOUNT
    assert check_amount("0", "x", zero_ok=True) == 0
    assert check_amount("0.6639", "x") == Decimal("0.6639")
    with pytest.raises(AmountError, match="at most 2 decimals"):
        check_amount("1.001", "x", currency="EUR")
    with pytest.raises(AmountError, match="at most 0 decimals"):
        check_amount("1.5", "x", currency="JPY")
    assert check_energy_wh(plain(MAX_ENERGY_WH), "e") == MAX_ENERGY_WH
    with pytest.raises(AmountError, match=r"^e: "):
        check_energy_wh(MAX_ENERGY_WH + 1, "e")


# ---- backend: remote start ------------------------------------------------------------------


@pytest.mark.parametrize("key", ["cost_cap", "energy_cap_wh"])
@pytest.mark.parametrize("text", HOSTILE)
def test_the_remote_start_message_refuses_unbounded_caps(key: str, text: str) -> None:
    with pytest.raises(ProtocolError) as raised:
        RemoteStart.from_json({"id_token": "APP-1", key: text})
    assert raised.value.field == f"body.{key}"
    assert "up to" in str(raised.value)


@pytest.mark.parametrize("key", ["cost_cap", "energy_cap_wh"])
@pytest.mark.parametrize("text", HOSTILE)
def test_the_remote_start_command_refuses_unbounded_caps(tmp_path: Path, key: str,
                                                         text: str) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        before = station.daemon.state
        with pytest.raises(ProtocolError) as raised:
            await station.commands.handle("remote_start", {"id_token": "APP-1", key: text})
        assert raised.value.field == key
        assert "up to" in str(raised.value)
        assert station.daemon.state == before

    run_station(tmp_path, body)


@pytest.mark.parametrize("key", ["cost_cap", "energy_cap_wh"])
@pytest.mark.parametrize("text", HOSTILE)
def test_the_local_api_start_refuses_unbounded_caps(tmp_path: Path, key: str,
                                                    text: str) -> None:
    from terminal.localapi import RequestError

    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        before = station.daemon.state
        with pytest.raises(RequestError, match=rf"^{key}: expected a number above 0 up to"):
            await station.driver_api.start({"id_token": "APP-1", key: text})
        assert station.daemon.state == before

    run_station(tmp_path, body)


def test_a_session_with_the_largest_cap_closes_with_a_receipt(tmp_path: Path) -> None:
    async def body(station: Station, car: Car, clock: FakeClock, published: list) -> None:
        commands: Commands = station.commands
        started = await commands.handle("remote_start", {
            "id_token": "APP-1", "cost_cap": plain(MAX_AMOUNT) + ".00",
            "energy_cap_wh": plain(MAX_ENERGY_WH)})
        assert station.daemon.state.authorization.cost_cap == MAX_AMOUNT
        await poll(station, clock, 5)
        assert station.daemon.state.phase.value == "Charging"
        await commands.handle("remote_stop", {"session_id": started["session_id"]})
        await poll(station, clock, 2)
        car.plugged = False
        await poll(station, clock, 2)
        assert station.daemon.state.phase.value == "Available"
        assert station.store.store.receipt(started["session_id"]) is not None
        charged = station.store.store.amount_charged(started["session_id"])
        assert charged is not None and Decimal(0) < charged < MAX_AMOUNT

    run_station(tmp_path, body)


# ---- backend: the authorisation answer and the local list -----------------------------------


@pytest.mark.parametrize("key", ["cost_cap", "energy_cap_wh"])
@pytest.mark.parametrize("text", HOSTILE)
def test_the_authorisation_answer_refuses_unbounded_caps(key: str, text: str) -> None:
    with pytest.raises(MessageError) as raised:
        TokenAuthResponse.from_json({"status": "Accepted", key: text})
    assert str(raised.value).startswith(f"TokenAuthResponse.{key}")
    with pytest.raises(MessageError) as raised:
        LocalListEntry.from_json({"id_token": "A", "status": "Accepted", key: text})
    assert str(raised.value).startswith(f"LocalListEntry.{key}")


def test_the_authorisation_answer_keeps_caps_in_bounds() -> None:
    answer = TokenAuthResponse.from_json({"status": "Accepted", "cost_cap": "1000000000.00",
                                          "energy_cap_wh": "1000000000"})
    assert (answer.cost_cap, answer.energy_cap_wh) == (MAX_AMOUNT, MAX_ENERGY_WH)


# ---- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(("section", "key"), [
    ("session", "default_cost_cap"), ("payment", "preauth_amount"),
    ("payment", "offline_floor_limit")])
@pytest.mark.parametrize("text", HOSTILE)
def test_config_amounts_are_bounded(section: str, key: str, text: str) -> None:
    with pytest.raises(ConfigError, match=rf"{section}\.{key} = '{text}'.*up to 1000000000"):
        parse_config({"station": {"id": "ST1"}, section: {key: text}})


# ---- what the terminal stored before the bounds applied ------------------------------------


def test_a_stored_answer_beyond_the_bounds_is_ignored_and_the_backend_asked(
        tmp_path: Path) -> None:
    import asyncio
    import json
    import sqlite3

    from terminal.backend.messages import AuthStatus
    from terminal.config import AuthConfig
    from terminal.identification.auth import Authorizer
    from terminal.store import AUTH_SCHEMA
    from terminal.store.auth_tables import AuthStore
    from tests.unit.test_auth import FakeBackend

    conn = sqlite3.connect(tmp_path / "auth.db", isolation_level=None)
    conn.executescript(AUTH_SCHEMA)
    clock = FakeClock()
    backend = FakeBackend({"T": TokenAuthResponse(AuthStatus.ACCEPTED, cost_cap=Decimal("30"))})
    auth = Authorizer(AuthConfig(), backend, AuthStore(conn), clock, station_id="ST1")
    assert asyncio.run(auth.authorize("T", "ISO14443")).source == "online"
    conn.execute("UPDATE auth_cache SET response_json = ?", (json.dumps(
        {"status": "Accepted", "cost_cap": "1e26", "technician": False}),))
    decision = asyncio.run(auth.authorize("T", "ISO14443"))
    assert (decision.accepted, decision.source, decision.cost_cap) == (True, "online", 30)
    assert len(backend.asked) == 2


def test_a_card_number_given_as_an_amount_is_not_repeated() -> None:
    with pytest.raises(AmountError) as raised:
        check_amount("4111111111111111", "cost_cap")
    assert "4111" not in str(raised.value)
