"""Whole sessions paid at an external ZVT payment terminal: the daemon keeps
`evterm sim zvt` (its own process) waiting for a card, a card held to it starts a
session with a pre-authorisation of the hold, the same card stops it, the bill is
booked and the rest released; declines with the terminal's result codes reach the
driver as text, a partial approval lowers the cap, slow intermediate statuses, a card
removed, and a connection dropped mid-preauth and mid-booking end in a known state.
The terminal's state file is the truth. Ends with a scan for card numbers."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.kernel.redact import card_numbers_in
from terminal.store import Store
from tests.integration.zvt_rig import ZvtRig, zvt_rig


@pytest.fixture
def zvt() -> Iterator[ZvtRig]:
    folder = Path(tempfile.mkdtemp(prefix="evzvtp-"))  # short: socket paths < 108 bytes
    with zvt_rig(folder) as rig:
        yield rig
    shutil.rmtree(folder, ignore_errors=True)


def receipt_of(zvt: ZvtRig, session_id: str, language: str = "en") -> dict:
    reply = zvt.rig.api("receipt", session_id=session_id, language=language)
    assert reply["ok"], reply
    return reply


def test_a_card_at_the_terminal_pays_its_session_exactly(zvt: ZvtRig) -> None:
    rig = zvt.rig
    rig.ev("plug")
    accepted = zvt.present("visa")
    assert (accepted["result"], accepted["kind"], accepted["reader"]) == (
        "accepted", "card", "zvt"), accepted
    assert accepted["cost_cap"] == "50.00" and accepted["decided_by"] == "zvt"
    assert accepted["decision_ms"] is not None and accepted["decision_ms"] > 0
    session_id = accepted["session_id"]
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 2000)
    other = zvt.present("mastercard")
    assert (other["result"], other["reason"]) == ("in_use", "in_use"), other
    stop = zvt.present("visa")  # the same card: the same token
    assert stop["result"] == "stopping", stop
    assert rig.wait_phase("Finishing")["stop_reason"] == "Local"
    rig.ev("unplug")
    rig.wait_phase("Available")

    payment = zvt.wait_settled(session_id, "captured")
    charged = payment.amount_captured
    assert charged is not None and Decimal(0) < charged < Decimal("50.00")
    assert payment.via == "zvt" and payment.masked_pan == "************0010"
    assert payment.pt["terminal_id"] == 29001006
    state = zvt.sim_state()
    assert state["reservations"] == {}
    assert [b["amount_minor"] for b in state["batch"].values()] == [int(charged * 100)]
    assert state["released_minor"] == 5000 - int(charged * 100)
    shown = rig.wait_for("the receipt with the terminal's lines",
                         lambda: "BUCHUNG" in (r := receipt_of(zvt, session_id))["text"] and r)
    assert Decimal(shown["receipt"]["amount_charged"]) == charged
    assert shown["receipt"]["payment"]["reference"] == payment.psp_reference
    assert "Card terminal receipt" in shown["text"]
    assert "Beleg des Kartenterminals" in receipt_of(zvt, session_id, "de")["text"]


def test_declines_partial_approval_and_slow_statuses(zvt: ZvtRig) -> None:
    rig = zvt.rig
    zvt.control("next", decline="05")
    declined = zvt.present("visa")
    assert (declined["result"], declined["reason"]) == ("declined", "do_not_honor")
    assert declined["message"] == "Card declined by your bank"
    girocard = zvt.present("girocard")  # not in [payment] accepted_schemes
    assert girocard["reason"].startswith("scheme_not_accepted:visa,"), girocard
    zvt.control("next", decline="78")
    expired = zvt.present("mastercard")
    assert (expired["reason"], expired["message"]) == ("expired_card",
                                                       "This card has expired")
    zvt.control("next", card_removed=True)
    removed = zvt.present("visa")
    assert removed["reason"] == "tap_again", removed
    rig.wait_phase("Available")

    zvt.control("next", partial="2.00", slow_s=1.5)
    rig.ev("plug")
    partial = zvt.present("maestro")
    assert partial["result"] == "accepted" and partial["cost_cap"] == "2.00", partial
    assert partial["decision_ms"] >= 1500  # the terminal's "please wait" statuses
    session_id = partial["session_id"]
    assert rig.wait_phase("Finishing", timeout_s=30)["stop_reason"] == "CostLimitReached"
    rig.ev("unplug")
    rig.wait_phase("Available")
    payment = zvt.wait_settled(session_id, "captured")
    assert payment.amount_approved == Decimal("2.00")
    assert payment.amount_captured is not None and payment.amount_captured <= Decimal("2.00")
    booked = [b["amount_minor"] for b in zvt.sim_state()["batch"].values()]
    assert booked == [int(payment.amount_captured * 100)]
    statuses = {p.session_id: p.status.value for p in zvt.payments()}
    assert sorted(statuses.values()) == ["captured", "declined", "declined", "declined"]


def test_connections_dropped_mid_preauth_and_mid_booking(zvt: ZvtRig) -> None:
    rig = zvt.rig
    rig.ev("plug")
    zvt.control("next", drop_after="status")  # reserved; the answer never arrives
    accepted = zvt.present("visa")
    assert accepted["result"] == "accepted", accepted  # learnt from the terminal
    session_id = accepted["session_id"]
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1000)
    zvt.control("next", drop_after="status")  # the booking is done; its answer is lost
    stop = zvt.present("visa")
    assert stop["result"] == "stopping", stop
    rig.wait_phase("Finishing")
    rig.ev("unplug")
    payment = zvt.wait_settled(session_id, "captured")
    state = zvt.sim_state()
    assert state["reservations"] == {}
    assert [b["amount_minor"] for b in state["batch"].values()] == [
        int((payment.amount_captured or 0) * 100)]

    # no card number anywhere: the terminal gave only masked ones, and they stay so
    rig.stop_daemon()
    store = Store.open(rig.database, create=False)
    try:
        rows = [json.dumps(row) for table in ("payments", "receipts", "outbox", "audit")
                for row in store.conn.execute(f"SELECT * FROM {table}").fetchall()]
    finally:
        store.close()
    haystacks = {"journal rows": "\n".join(rows),
                 "daemon log": rig.daemon_log.read_text(encoding="utf-8"),
                 "backend": json.dumps(zvt.backend.admin("received")),
                 "tap events": json.dumps(zvt.events.messages if zvt.events else [])}
    assert "************0010" in haystacks["journal rows"]
    for name, text in haystacks.items():
        assert card_numbers_in(text) == [], f"card numbers in {name}"
