"""A company's VAT number: given by the driver for the open session (the local API's
`vat_number` op), kept with its authorisation, printed on its receipt in every language
and sent with its card payment's NotifySettlement; refused naming the field when it is
not one, and nothing changes when none is given."""

from __future__ import annotations

import json

import pytest

from terminal.backend.commands import Commands
from terminal.localapi import RequestError
from terminal.receipt import ReceiptError
from terminal.receipt.labels import LABELS
from terminal.session import Authorization
from terminal.station import Station
from terminal.store import Store
from tests.unit.clockfake import FakeClock
from tests.unit.session_helpers import T0
from tests.unit.test_commands import charge, run
from tests.unit.test_receipt import de_receipt, row
from tests.unit.test_store import journal_session
from tests.unit.test_store_payments import add_payment


def test_the_driver_gives_a_vat_number_for_the_open_session(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        api = station.driver_api
        with pytest.raises(RequestError, match=r"session_id: .* \(none\)"):
            await api.vat_number({"session_id": "S-x", "vat_number": "DE123456789"})
        started = await commands.handle("remote_start", {"id_token": "APP-1"})
        session_id = started["session_id"]
        await charge(station, clock)
        reply = await api.vat_number({"session_id": session_id,
                                      "vat_number": "de 123.456-789"})
        assert reply["vat_number"] == "DE123456789"
        auth = station.daemon.state.authorization
        assert auth is not None and auth.vat_number == "DE123456789"
        assert auth.id_token == "APP-1" and auth.source == "remote"  # the rest unchanged
        row_ = station.store.store.session(session_id)
        assert json.loads(row_["authorization_json"])["vat_number"] == "DE123456789"
        again = await api.vat_number({"session_id": session_id, "vat_number": "ATU12345678"})
        assert again["vat_number"] == "ATU12345678"  # the last one counts
        for request, field in (
                ({"session_id": session_id, "vat_number": "123456789"}, "vat_number"),
                ({"session_id": session_id}, "vat_number"),
                ({"session_id": session_id, "vat_number": "DE" + "1" * 19}, "vat_number"),
                ({"session_id": "another", "vat_number": "DE123456789"}, "session_id"),
                ({"vat_number": "DE123456789"}, "session_id"),
                ({"session_id": session_id, "vat_number": "DE1", "company": "X"}, "company")):
            with pytest.raises(RequestError) as caught:
                await api.vat_number(request)
            assert str(caught.value).startswith(f"{field}:"), caught.value
        assert station.daemon.state.authorization.vat_number == "ATU12345678"

    run(tmp_path, body)


def test_an_authorisation_without_a_vat_number_reads_and_writes_as_before():
    auth = Authorization("APP-1", "app")
    assert "vat_number" not in auth.to_json()
    assert Authorization.from_json(auth.to_json()) == auth
    given = Authorization("APP-1", "app", vat_number="DE123456789")
    assert Authorization.from_json(json.loads(json.dumps(given.to_json()))) == given


@pytest.mark.parametrize("language", sorted(LABELS))
def test_the_receipt_prints_the_vat_number_in_every_language(language):
    receipt = de_receipt(language, vat_number="DE123456789")
    label = LABELS[language]["vat_number"]
    assert row(label, "DE123456789") in receipt.to_text().splitlines()
    assert receipt.to_json()["payment"]["vat_number"] == "DE123456789"


def test_a_receipt_without_a_vat_number_is_unchanged_and_a_bad_one_is_refused():
    plain = de_receipt()
    assert "vat_number" not in plain.to_json()["payment"]
    assert all(LABELS["en"]["vat_number"] not in line for line in plain.to_text().splitlines())
    with pytest.raises(ReceiptError, match="vat_number"):
        de_receipt(vat_number="12-345")


@pytest.mark.parametrize(("given", "sent"), [
    ("NL123456789B01", "NL123456789B01"),
    (None, None),
    ("??", None),  # a journal edited by hand: left out, the payment still ends
])
def test_the_settlement_carries_the_vat_number_of_the_session(tmp_path, given, sent):
    store = Store.open(tmp_path / "evterm.db")
    journal_session(store)
    add_payment(store)
    auth = {**Authorization("k1." + "ab" * 20, "card").to_json(), "vat_number": given}
    store.conn.execute("UPDATE sessions SET authorization_json = ? WHERE id = 'S-1'",
                       (json.dumps(auth),))
    store.update_payment("S-1:pay", T0, status="voided")
    (queued,) = [m for m in store.outbox() if m.kind == "NotifySettlement"]
    assert queued.payload.get("vatNumber") == sent
    assert store.payment(reference="S-1:pay").status == "voided"


@pytest.mark.parametrize("typed", ["DE4111111111111111", "DE 4111 1111 1111 1111",
                                   "FR5500-0000-0000-0004"])
def test_a_card_number_typed_as_a_vat_number_is_refused_without_repeating_it(typed):
    from terminal.kernel.vat import VatNumberError, check_vat_number

    with pytest.raises(VatNumberError) as caught:
        check_vat_number(typed)
    assert "card number" in str(caught.value)
    digits = "".join(c for c in typed if c.isdigit())
    assert digits not in str(caught.value).replace(" ", "").replace("-", "")


@pytest.mark.parametrize("number", ["DE123456789", "NL123456789B01", "IT12345678901",
                                    "GB123456789012", "FRXX123456789"])
def test_real_vat_number_forms_are_still_taken(number):
    from terminal.kernel.vat import check_vat_number

    assert check_vat_number(number) == number
