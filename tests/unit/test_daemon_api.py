"""The daemon's local API ops for the touchscreen, in process: the price list in every
language follows the station's tariff; a driver's problem report is audited and queued
for the backend; bad input is refused naming the field."""

from __future__ import annotations

import pytest

from terminal.backend.commands import Commands
from terminal.localapi import RequestError
from terminal.station import Station
from tests.unit.clockfake import FakeClock
from tests.unit.test_commands import new_tariff, run


def test_the_status_carries_the_price_list_in_four_languages(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        prices = station.status.snapshot()["price_list"]
        assert prices["tariff_id"] == "DE-HPC-ADHOC-2025" and prices["currency"] == "EUR"
        assert set(prices["texts"]) == {"en", "de", "fr", "nl"}
        assert prices["texts"]["en"][0] == "0.59 EUR/kWh incl. 19% VAT"
        assert prices["texts"]["de"][0] == "0,59 EUR/kWh inkl. 19 % MwSt."
        assert station.status.snapshot()["price_list"] is prices  # computed once per tariff
        await commands.handle("tariff_update", {"tariff": new_tariff(price=0.42)})
        pushed = station.status.snapshot()["price_list"]
        assert pushed["tariff_id"] == "PUSHED-1"
        assert pushed["texts"]["en"][0] == "0.4998 EUR/kWh incl. 19% VAT"

    run(tmp_path, body)


def test_a_problem_report_is_audited_and_queued_for_the_backend(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        reply = await station.driver_api.report_problem({"text": " Cable damaged ",
                                                  "category": "damage"})
        audit, = station.store.store.audit()
        assert audit["id"] == reply["reference"] and audit["kind"] == "problem_report"
        queued, = [m for m in station.store.store.outbox() if m.kind == "Audit"]
        assert queued.payload["detail"]["text"] == "Cable damaged"
        assert queued.payload["detail"]["category"] == "damage"

    run(tmp_path, body)


def test_a_card_number_typed_into_a_problem_report_never_reaches_the_journal(tmp_path):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        await station.driver_api.report_problem({"text": "charged twice on 4111 1111 1111 1111, "
                                                  "ref 1234567890123"})
        queued, = [m for m in station.store.store.outbox() if m.kind == "Audit"]
        assert queued.payload["detail"]["text"] == ("charged twice on [number removed], "
                                                    "ref 1234567890123")  # not Luhn-valid
        database = b"".join(p.read_bytes() for p in station.store.store.path.parent.glob("*"))
        assert b"4111" not in database

    run(tmp_path, body)


@pytest.mark.parametrize(("request_", "field"), [
    ({}, "text"), ({"text": "   "}, "text"), ({"text": "x" * 501}, "text"),
    ({"text": 5}, "text"), ({"text": "broken", "category": "weather"}, "category"),
])
def test_bad_problem_reports_are_refused_naming_the_field(tmp_path, request_, field):
    async def body(station: Station, commands: Commands, clock: FakeClock) -> None:
        with pytest.raises(RequestError, match=f"^{field}:"):
            await station.driver_api.report_problem(request_)
        assert station.store.store.audit() == []

    run(tmp_path, body)
