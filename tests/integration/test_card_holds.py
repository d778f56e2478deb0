"""Card holds through the real stack (issue 18): a private pcscd with vpcd, cards tapped by
`evterm sim tap` in their own processes, the daemon, the station simulator and the
loopback backend simulator (its payment gateway's ledger counts the pre-authorisations).
A budget picked at the screen becomes the hold and the cap; a retried tap while the
session waits adds nothing; after a plug-in timeout the same card's tap reuses the hold
(one pre-authorisation at the gateway), charges and is captured, and the receipt says
what was reserved, charged and released; a hold that never sees energy is voided at its
grace deadline and the screen is told."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.pcscd import PcscdHandle
from tests.integration.test_card_sessions import CardRig, card_rig_for, closed

VISA_MASK = "411111******1111"


@pytest.fixture
def holds(request: pytest.FixtureRequest, pcscd: PcscdHandle, tap: Any) -> Iterator[CardRig]:
    """The card rig (tests/integration/test_card_sessions.py) with the test's settings."""
    folder = Path(tempfile.mkdtemp(prefix="evhold-"))  # short: socket paths < 108 bytes
    marker = request.node.get_closest_marker("cards")
    yield from card_rig_for(pcscd, tap, folder, **(dict(marker.kwargs) if marker else {}))
    shutil.rmtree(folder, ignore_errors=True)


def preauths(rig: CardRig, masked_pan: str) -> list[dict[str, Any]]:
    """The gateway's pre-authorisations of one card."""
    return [p for p in rig.backend.admin("ledger")["payments"]
            if p["masked_pan"] == masked_pan]


@pytest.mark.cards(session={"connection_timeout_s": 120}, payment={"hold_grace_s": 900})
def test_budget_hold_retried_taps_reuse_and_the_receipt_says_what_was_released(holds):
    cards, rig = holds, holds.rig
    assert rig.state()["card_hold"]["amount"] == "50.00"
    picked = rig.api("budget", amount="20.00")
    assert picked["ok"] and picked["state"]["card_hold"]["amount"] == "20.00", picked
    refused = rig.api("budget", amount="30.00")
    assert refused["ok"] is False and "not a budget offered here" in refused["error"]

    first = cards.present("visa")  # nobody plugs in yet
    assert (first["result"], first["cost_cap"]) == ("accepted", "20.00"), first
    again = cards.present("visa")
    assert (again["result"], again["reason"]) == ("info", "already_authorized"), again
    assert len(preauths(cards, VISA_MASK)) == 1
    # the plug-in timeout (120 s on the rig's clock, 4 s) ends it without energy
    rig.wait_for("the plug-in timeout", lambda: rig.state()["session_id"] is None, 20)
    reused = cards.present("visa")
    assert (reused["result"], reused["reason"]) == ("accepted", "hold_reused"), reused
    assert reused["session_id"] != first["session_id"] and reused["cost_cap"] == "20.00"
    [hold] = preauths(cards, VISA_MASK)  # one hold, one pre-authorisation
    assert Decimal(hold["approved"]) == Decimal("20.00")
    assert cards.payment(reused["session_id"]).reference == f"{first['session_id']}:pay"

    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1000)
    stop = cards.present("visa")
    assert stop["result"] == "stopping", stop
    rig.ev("unplug")
    rig.wait_phase("Available")
    _, receipt = closed(rig, reused["session_id"])
    payment = cards.wait_settled(reused["session_id"], "captured")
    charged = Decimal(receipt["amount_charged"])
    assert payment.amount_captured == charged
    shown = receipt["payment"]
    assert (Decimal(shown["reserved"]), Decimal(shown["charged"])) == (Decimal("20.00"), charged)
    assert Decimal(shown["released"]) == Decimal("20.00") - charged
    text = rig.api("receipt", session_id=reused["session_id"])["text"]
    assert "Reserved on card" in text and "Released" in text
    german = rig.api("receipt", session_id=reused["session_id"], language="de")["text"]
    assert "Auf der Karte reserviert" in german and "Freigegeben" in german
    [hold] = preauths(cards, VISA_MASK)
    assert Decimal(hold["captured"]) == charged


@pytest.mark.cards(session={"connection_timeout_s": 30}, payment={"hold_grace_s": 120})
def test_a_hold_without_energy_is_voided_at_its_grace_deadline_and_the_screen_is_told(holds):
    cards = holds
    mark = cards.events.mark()
    accepted = cards.present("mastercard")  # nobody plugs in
    assert accepted["result"] == "accepted", accepted
    session_id = accepted["session_id"]
    released = cards.events.wait_for(
        "the hold released", lambda m: m.get("type") == "hold_released", since=mark)
    assert (released["session_id"], released["amount"], released["currency"]) == (
        session_id, "50.00", "EUR")
    payment = cards.wait_settled(session_id, "voided")
    assert cards.ledger(payment.reference)["voided"] is True
    # voided by the grace deadline (120 s after the approval), not at the timeout (30 s)
    assert (payment.updated_at - payment.approved_at).total_seconds() >= 120
