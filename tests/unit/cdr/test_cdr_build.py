"""The CDR builder: OCPI 2.2.1 field names and types, where each value comes from,
signed data, exact JSON; and the journal: the CDR with its receipt in one transaction,
its outbox message, the bill from the journal carrying the same CDR."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from hw_mocks.backend_cdr import check_cdr
from hw_mocks.ocpi_reference import check_total
from terminal.billing import bill_from_journal
from terminal.cdr import dumps, loads
from terminal.cdr.cdrs import auth_method, token_uid
from terminal.cdr.signed_data import plain_data, signed_data
from terminal.config import ConfigError
from terminal.config.loader import parse_config_bytes
from terminal.pricing import Sample, SessionInput, parse_tariff
from terminal.report.bundle import Pseudonyms
from terminal.service.export import cdrs_json
from terminal.store import Store
from tests.unit.cdr.helpers import SITE, cdr_of
from tests.unit.retention_helpers import TARIFF, charge

D = Decimal
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
REQUIRED = ("country_code", "party_id", "id", "start_date_time", "end_date_time",
            "cdr_token", "auth_method", "cdr_location", "currency", "charging_periods",
            "total_cost", "total_energy", "total_time", "last_updated")


def _session(minutes: int = 30) -> SessionInput:
    samples = tuple(Sample(START + timedelta(minutes=m), D(1000) + D(250) * m, D(15000),
                           D(0)) for m in range(minutes + 1))
    return SessionInput(START, samples[-1].t, samples, D(100))


def test_a_cdr_has_every_required_field_with_the_spec_types() -> None:
    cdr = cdr_of(parse_tariff(TARIFF), _session(), "Europe/Amsterdam")
    for name in REQUIRED:
        assert name in cdr, name
    assert cdr["id"] == cdr["session_id"] == "S1"
    assert cdr["cdr_token"] == {"country_code": "DE", "party_id": "EVT", "uid": "TOKEN1",
                                "type": "RFID", "contract_id": "TOKEN1"}
    assert cdr["cdr_location"]["evse_id"] == "DE*EVT*E1"
    assert cdr["cdr_location"]["coordinates"] == {"latitude": "52.520008",
                                                  "longitude": "13.404954"}
    assert cdr["start_date_time"] == "2025-03-03T09:00:00.000Z"
    assert cdr["total_energy"] == D("7.5")
    assert cdr["total_time"] == D("0.5")
    assert cdr["tariffs"][0]["id"] == "NL-TOD-2025"
    assert cdr["charging_periods"][0]["tariff_id"] == "NL-TOD-2025"
    assert "remark" not in cdr and "signed_data" not in cdr
    assert check_cdr({"session_id": "S1", "cdr": json.loads(dumps(cdr))},
                     "Europe/Amsterdam") == []


def test_a_tariff_without_identification_gets_the_stations() -> None:
    t = parse_tariff({"currency": "EUR", "elements": [{"price_components": [
        {"type": "ENERGY", "price": D("0.5"), "step_size": 1}]}]})
    cdr = cdr_of(t, _session())
    tariff = cdr["tariffs"][0]
    assert (tariff["id"], tariff["country_code"], tariff["party_id"]) == (
        "EVSE1-TARIFF", "DE", "EVT")
    assert tariff["last_updated"] == "2025-03-03T09:00:00.000Z"
    assert cdr["total_cost"] == {"excl_vat": D("3.75"), "incl_vat": D("3.75")}


def test_json_numbers_are_exact() -> None:
    cdr = cdr_of(parse_tariff(TARIFF), _session(7))
    text = dumps(cdr)
    assert loads(text) == json.loads(text, parse_float=D, parse_int=D)
    assert loads(text)["total_cost"] == cdr["total_cost"]
    assert "e-" not in text.lower().replace("true", "")


@pytest.mark.parametrize(("source", "offline", "method"), [
    ("rfid", False, "AUTH_REQUEST"), ("rfid", True, "WHITELIST"), ("remote", False, "COMMAND"),
    ("app", False, "COMMAND"), ("local", False, "WHITELIST"), ("card", False, "AUTH_REQUEST")])
def test_auth_method(source: str, offline: bool, method: str) -> None:
    assert auth_method(source, offline) == method


def test_a_card_token_fits_ocpi_uid() -> None:
    token = "k1." + "ab" * 20
    assert token_uid(token) == token[:36] and len(token_uid(token)) == 36


def test_signed_data_carries_both_documents() -> None:
    begin = 'OCMF|{"FV":"1.0","RD":[{"RV":1}]}|{"SD":"3045"}'
    end = 'OCMF|{"FV":"1.0","RD":[{"RV":2}]}|{"SD":"3046"}'
    data = signed_data(begin, end, "04ab")
    b64 = lambda text: base64.b64encode(text.encode()).decode()  # noqa: E731
    assert data == {"encoding_method": "OCMF", "public_key": "BKs=", "signed_values": [
        {"nature": "Start", "plain_data": '{"FV":"1.0","RD":[{"RV":1}]}',
         "signed_data": b64(begin)},
        {"nature": "End", "plain_data": '{"FV":"1.0","RD":[{"RV":2}]}',
         "signed_data": b64(end)}]}
    assert signed_data(None, None, "04ab") is None
    cdr = cdr_of(parse_tariff(TARIFF), _session(), signed=data)
    assert cdr["signed_data"] == data
    assert check_cdr({"session_id": "S1", "cdr": json.loads(dumps(cdr))}) == []


def test_plain_data_fits_ocpi_and_keeps_the_readings() -> None:
    reading = {"TM": "2025-03-03T09:00:00,000+0000 S", "TX": "B", "RV": 1.5, "RI": "1-b:1.8.0",
               "RU": "kWh", "ST": "G", "EF": "", "UC": "x" * 40}
    payload = {"FV": "1.0", "GI": "x" * 300, "RD": [reading, dict(reading, TX="E")]}
    document = "OCMF|" + json.dumps(payload) + '|{"SD":"30"}'
    short = plain_data(document)
    assert len(short) <= 512
    assert [r["TX"] for r in json.loads(short)["RD"]] == ["B", "E"]
    assert "UC" not in short
    small = 'OCMF|{"FV":"1.0"}|{"SD":"30"}'
    assert plain_data(small) == '{"FV":"1.0"}'


def test_the_simulator_check_names_a_bad_field() -> None:
    cdr = json.loads(dumps(cdr_of(parse_tariff(TARIFF), _session())))
    cdr["auth_method"] = "MAGIC"
    del cdr["cdr_location"]["city"]
    problems = check_cdr({"session_id": "S1", "cdr": cdr})
    assert any("auth_method" in p for p in problems)
    assert any("cdr_location.city" in p for p in problems)


def test_the_cdr_is_stored_and_queued_with_the_receipt(tmp_path) -> None:
    store = Store.open(tmp_path / "j.db")
    charge(store, "S-1", START, 120)
    text = store.cdr("S-1")
    assert text is not None
    cdr = loads(text)
    messages = [m for m in store.outbox(limit=1000) if m.kind == "cdr"]
    assert [m.idempotency_key for m in messages] == ["S-1:cdr"]
    assert json.loads(json.dumps(messages[0].payload))["cdr"]["id"] == "S-1"
    receipt, _ = store.receipt("S-1")
    assert cdr["total_cost"]["incl_vat"] == D(receipt["amount_charged"])
    assert check_total(cdr, "Europe/Amsterdam") == []
    rebuilt = bill_from_journal(store, "S-1", site=SITE)
    assert rebuilt is not None and rebuilt.cdr_json == text  # rebuilt identically
    assert store.cdrs(["S-1", "S-unknown"]) == [text]


def test_the_cdr_options_are_checked() -> None:
    base = ('[station]\nid = "DE*EVT*E1"\noperator = "Op"\n[meter]\nmodel = "eastron-sdm630"\n'
            'url = "modbus-tcp://127.0.0.1:5020"\n')
    with pytest.raises(ConfigError) as caught:
        parse_config_bytes((base + '[cdr]\ncountry_code = "de"\nparty_id = "TOOLONG"\n'
                            'latitude = "91.0"\ncountry = "DE"\n').encode(), "test")
    text = str(caught.value)
    for key in ("country_code", "party_id", "latitude", "country"):
        assert f"[cdr] {key}" in text or f"cdr.{key}" in text or key in text, key


def test_the_export_bundle_holds_the_sessions_cdrs_exactly(tmp_path) -> None:
    store = Store.open(tmp_path / "j.db")
    charge(store, "S-1", START, 60)
    charge(store, "S-2", START + timedelta(hours=1), 60, energy_wh=D(2_000_000))
    pseudonyms = Pseudonyms()
    exported = cdrs_json(store, store.sessions(), pseudonyms)
    found = json.loads(exported, parse_float=D, parse_int=D)
    assert [c["id"] for c in found] == ["S-1", "S-2"]
    stored = loads(store.cdr("S-1"))
    token = stored["cdr_token"]
    assert token["uid"] not in exported  # a bundle holds no token
    assert found[0]["cdr_token"]["uid"] == pseudonyms(token["uid"])
    assert found[0]["cdr_token"]["contract_id"] == pseudonyms(token["contract_id"])
    for cdr in (found[0], stored):
        del cdr["cdr_token"]
    assert found[0] == stored  # the rest exactly as stored
    assert cdrs_json(store, [], pseudonyms) == "[]\n"


def test_a_cdr_that_cannot_be_built_never_holds_up_the_receipt(tmp_path, monkeypatch,
                                                                caplog) -> None:
    store = Store.open(tmp_path / "j.db")
    charge(store, "S-1", START, 60)

    def broken(data: object) -> dict:
        raise KeyError("planted")

    monkeypatch.setattr("terminal.billing.build_cdr", broken)
    bill = bill_from_journal(store, "S-1", site=SITE)
    assert bill is not None and bill.cdr is None and bill.receipt == store.receipt("S-1")
    assert "CDR cannot be built" in caplog.text
