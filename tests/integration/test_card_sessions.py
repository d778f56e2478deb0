"""Whole sessions started and stopped by cards through the real stack: a private pcscd
with vpcd, cards tapped by `evterm sim tap` in their own processes, the daemon, the
station simulator and the loopback backend simulator (CSMS + payment gateway). Ends
with a scan of everything the terminal wrote or sent for the test card numbers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.backend_process import BackendProcess
from hw_mocks.cards import TEST_PANS
from hw_mocks.pcscd import PcscdHandle
from hw_mocks.rig import Rig, RigError, Subscriber
from terminal.kernel.money import round_half_up
from terminal.store import PaymentRow, Store

PERSONAL_TARIFF = {
    "country_code": "DE", "party_id": "EVT", "id": "FLEET-CONTRACT-7", "currency": "EUR",
    "type": "REGULAR",
    "elements": [{"price_components": [{"type": "ENERGY", "price": 0.30, "vat": 19.0,
                                        "step_size": 1}]}],
    "last_updated": "2026-01-01T00:00:00Z",
}
TECHNICIAN = "04AABBCCDDEEFF"
TOKENS = [
    {"id_token": "1A2B3C4D", "status": "Accepted"},  # rfid-4
    {"id_token": "04A1B2C3D4E5F6", "status": "Accepted", "tariff": PERSONAL_TARIFF},  # rfid-7
    {"id_token": "04A1B2C3D4E5F6A7B8C9", "status": "Blocked"},  # rfid-10
    {"id_token": "0A1B2C3D4E", "status": "Accepted"},  # a 125 kHz EM4100 tag
]
RULES = {TEST_PANS["amex"]: {"partial": "2.00"}}


@dataclass
class CardRig:
    rig: Rig
    backend: BackendProcess
    events: Subscriber
    pcscd: PcscdHandle
    tap: Any  # the conftest `tap` fixture

    left_at_s: float = 0.0

    def present(self, card: str, hold_s: float = 0.6) -> dict[str, Any]:
        """Tap a card on reader 0; the daemon's outcome (the `tap` event). vpcd cards are
        seen at pcscd's 0.4 s presence poll, so a card comes at least 0.5 s after the
        previous one left (as any two drivers' taps would)."""
        time.sleep(max(0.0, self.left_at_s + 0.5 - time.monotonic()))
        mark = self.events.mark()
        self.tap(card, hold_s=hold_s).wait_left()
        self.left_at_s = time.monotonic()
        try:
            return self.events.tap(mark)
        except RigError as exc:
            raise RigError(f"{exc} (card {card}); daemon log:\n{self.rig.tail('daemon')}") \
                from None

    def payment(self, session_id: str) -> PaymentRow:
        store = Store.open(self.rig.database, create=False)
        try:
            found = store.payment(session_id=session_id)
            assert found is not None
            return found
        finally:
            store.close()

    def ledger(self, reference: str) -> dict[str, Any]:
        payments = self.backend.admin("ledger")["payments"]
        return next(p for p in payments if p["reference"] == reference)

    def wait_settled(self, session_id: str, status: str) -> PaymentRow:
        settled: PaymentRow = self.rig.wait_for(
            f"payment of {session_id} {status}",
            lambda: (p := self.payment(session_id)).status == status and p, 20)
        return settled


def card_rig_for(pcscd: PcscdHandle, tap: Any, folder: Path,
                 **settings: dict[str, object]) -> Iterator[CardRig]:
    backend = BackendProcess(folder / "bk", TOKENS, RULES)
    backend.start()
    token_key = folder / "token.key"
    token_key.write_text(os.urandom(32).hex())
    extra: dict[str, dict[str, object]] = {
        "readers": {"pcsc": True, "pcsc_socket": pcscd.socket_path},
        "payment": {"token_key_file": str(token_key),
                    "gateway_key_file": str(backend.gateway_public), "preauth_amount": "50.00"},
        "backend": {"kind": "loopback", "socket_path": backend.socket,
                    "request_timeout_s": 2.0},
        "auth": {"technician_ids": TECHNICIAN},
    }
    for name, values in settings.items():
        extra[name] = {**extra.get(name, {}), **values}
    rig = Rig(folder / "rig", speed=30.0, extra=extra,
              session={"connection_timeout_s": 600})
    try:
        rig.start_station()
        rig.start_daemon()
        rig.wait_reader()
        events = Subscriber(rig.socket_path)
        yield CardRig(rig, backend, events, pcscd, tap)
        events.close()
    finally:
        rig.close()
        backend.close()


@pytest.fixture
def cards(request: pytest.FixtureRequest, pcscd: PcscdHandle, tap: Any) -> Iterator[CardRig]:
    folder = Path(tempfile.mkdtemp(prefix="evcard-"))  # short: socket paths < 108 bytes
    marker = request.node.get_closest_marker("cards")
    settings = dict(marker.kwargs) if marker else {}
    if "pty_pair" in request.fixturenames:  # the serial 125 kHz reader on a pty
        settings["readers"] = {"serial_rfid_device": request.getfixturevalue("pty_pair")[1]}
    yield from card_rig_for(pcscd, tap, folder, **settings)
    shutil.rmtree(folder, ignore_errors=True)


def closed(rig: Rig, session_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    store = Store.open(rig.database, create=False)
    try:
        row = store.session(session_id)
        receipt = store.receipt(session_id)
        assert row is not None and row["closed_at"], row
        assert receipt is not None
        return row, receipt[0]
    finally:
        store.close()


# ---- card payment -----------------------------------------------------------------------


def test_card_payment_session_is_captured_exactly_and_refunds_show_on_the_receipt(cards):
    rig = cards.rig
    rig.ev("plug")
    accepted = cards.present("visa")
    assert (accepted["result"], accepted["kind"]) == ("accepted", "card"), accepted
    assert accepted["cost_cap"] == "50.00"
    session_id = accepted["session_id"]
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 2000)
    other = cards.present("mastercard")
    assert (other["result"], other["reason"]) == ("in_use", "in_use"), other
    assert other["message"] == "This charger is in use"
    stop = cards.present("visa")  # the same card stops its session
    assert stop["result"] == "stopping", stop
    assert rig.wait_phase("Finishing")["stop_reason"] == "Local"
    rig.ev("unplug")
    rig.wait_phase("Available")

    _, receipt = closed(rig, session_id)
    payment = cards.wait_settled(session_id, "captured")
    assert payment.masked_pan == "411111******1111"
    assert payment.amount_captured == Decimal(receipt["amount_charged"])
    ledger = cards.ledger(payment.reference)
    assert Decimal(ledger["captured"]) == Decimal(receipt["amount_charged"]) > 0
    assert receipt["payment"]["card_scheme"] == "Visa"
    assert receipt["payment"]["card_last4"] == "1111"
    assert receipt["payment"]["reference"] == ledger["psp_reference"]

    # a partial refund from the backend reaches the session and its receipt
    mark = cards.events.mark()
    cards.backend.admin("push_refund", psp_reference=ledger["psp_reference"], amount="1.00",
                        reason="goodwill")
    cards.events.wait_for("the receipt update", lambda m: m.get("type") == "receipt_updated"
                          and m["session_id"] == session_id, since=mark)
    shown = rig.api("receipt", session_id=session_id)
    paid = Decimal(receipt["amount_charged"]) - Decimal("1.00")
    assert shown["receipt"]["amount_refunded"] == "1.00"
    assert Decimal(shown["receipt"]["amount_paid"]) == paid
    assert "Refund" in shown["text"] and "Paid after refunds" in shown["text"]
    german = rig.api("receipt", session_id=session_id, language="de")
    assert "Erstattung" in german["text"]


@pytest.mark.cards()
def test_partial_approval_is_the_cost_cap_and_capture_never_exceeds_it(cards):
    rig = cards.rig
    rig.ev("plug")
    accepted = cards.present("amex")  # the gateway approves 2.00 of the 50.00 asked
    assert accepted["result"] == "accepted" and accepted["cost_cap"] == "2.00", accepted
    session_id = accepted["session_id"]
    assert rig.wait_phase("Finishing", timeout_s=30)["stop_reason"] == "CostLimitReached"
    rig.ev("unplug")
    rig.wait_phase("Available")
    _, receipt = closed(rig, session_id)
    payment = cards.wait_settled(session_id, "captured")
    assert payment.amount_captured == Decimal(receipt["amount_charged"])
    assert Decimal(receipt["amount_charged"]) <= Decimal("2.00")
    assert "American Express" in rig.api("receipt", session_id=session_id)["text"]


@pytest.mark.cards(session={"connection_timeout_s": 30})
def test_a_card_session_without_energy_is_voided(cards):
    accepted = cards.present("mastercard")  # nobody plugs in
    assert accepted["result"] == "accepted", accepted
    session_id = accepted["session_id"]
    payment = cards.wait_settled(session_id, "voided")
    assert payment.amount_captured is None
    assert cards.ledger(payment.reference)["voided"] is True
    assert cards.rig.wait_phase("Available")["session_id"] is None


def test_declined_expired_and_unreadable_cards_are_refused_with_a_reason(cards):
    rig = cards.rig
    outcomes = {card: cards.present(card) for card in
                ("visa-declined", "visa-insufficient", "visa-expired", "broken-tlv",
                 "unsupported-aid")}
    assert outcomes["visa-declined"]["reason"] == "do_not_honor"
    assert outcomes["visa-declined"]["message"] == "Card declined by your bank"
    assert outcomes["visa-insufficient"]["reason"] == "insufficient_funds"
    assert outcomes["visa-expired"]["reason"] == "expired_card"
    assert outcomes["visa-expired"]["message"] == "This card has expired"
    assert (outcomes["broken-tlv"]["result"], outcomes["broken-tlv"]["reason"]) == (
        "tap_again", "read_failed")
    accepted = "visa,vpay,mastercard,maestro,amex,discover,jcb,unionpay,interac"
    assert (outcomes["unsupported-aid"]["result"], outcomes["unsupported-aid"]["reason"]) == (
        "declined", f"scheme_not_accepted:{accepted}")
    assert outcomes["unsupported-aid"]["message"] == (
        "This card type is not accepted here - accepted: Visa, V PAY, Mastercard, Maestro, "
        "American Express, Discover/Diners Club, JCB, UnionPay, Interac")
    assert all(o["result"] != "accepted" for o in outcomes.values())
    # the expired card never reached the gateway
    asked = [m["body"]["masked_pan"] for m in
             cards.backend.admin("received", filter_op="preauthorize")["messages"]]
    assert sorted(asked) == ["400000******0002", "400000******9995"]
    assert rig.state()["phase"] == "Available"
    # a card pulled away mid-read is a clean "tap again"
    time.sleep(0.5)
    mark = cards.events.mark()
    cards.tap("mastercard", hold_s=5, remove_after_apdus=3).wait_left()
    early = cards.events.tap(mark)
    assert (early["result"], early["reason"]) == ("tap_again", "tap_again"), early


@pytest.mark.cards(payment={"offline_floor_limit": "10.00"})
def test_offline_card_payment_under_the_floor_limit_is_captured_when_back(cards):
    rig = cards.rig
    # the RFID card is checked online once, so the cache knows it
    first = cards.present("rfid-4")
    assert first["result"] == "accepted" and first["decided_by"] == "online", first
    rig.api("stop", reason="Local")
    rig.wait_phase("Available")
    cards.backend.admin("silent", on=True)
    rig.ev("plug")
    accepted = cards.present("visa")
    assert accepted["result"] == "accepted" and accepted["offline"] is True, accepted
    assert accepted["cost_cap"] == "10.00"
    session_id = accepted["session_id"]
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1000)
    cards.present("visa")
    rig.wait_phase("Finishing")
    rig.ev("unplug")
    rig.wait_phase("Available")
    _, receipt = closed(rig, session_id)
    assert cards.payment(session_id).status == "capture_pending"
    assert cards.payment(session_id).envelope_json is not None  # sealed, kept for later
    # offline, the cached charge card still works; an unknown one does not
    cached = cards.present("rfid-4")  # LocalPreAuthorize: the cache answers at once
    assert cached["result"] == "accepted" and cached["decided_by"] == "cache", cached
    rig.api("stop", reason="Local")
    rig.wait_phase("Available")
    unknown = cards.present("rfid:0A0B0C0D")
    assert (unknown["result"], unknown["reason"]) == ("declined", "offline"), unknown
    cards.backend.admin("silent", on=False)
    payment = cards.wait_settled(session_id, "captured")
    assert payment.envelope_json is None  # gone once the gateway has it
    assert payment.amount_captured == Decimal(receipt["amount_charged"])
    assert Decimal(cards.ledger(payment.reference)["captured"]) == Decimal(
        receipt["amount_charged"])


def test_card_payment_is_declined_offline_without_a_floor_limit(cards):
    cards.backend.stop()
    declined = cards.present("visa")
    assert (declined["result"], declined["reason"]) == ("declined", "offline_payment")
    assert declined["message"] == "Charger offline - only charge cards work now"


# ---- RFID ---------------------------------------------------------------------------------


def test_rfid_session_with_a_personal_tariff_stopped_by_the_same_card(cards):
    rig = cards.rig
    rig.ev("plug")
    accepted = cards.present("rfid-7")
    assert (accepted["result"], accepted["kind"]) == ("accepted", "rfid"), accepted
    session_id = accepted["session_id"]
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1000)
    assert cards.present("rfid-4")["result"] == "in_use"
    assert cards.present("rfid-7")["result"] == "stopping"
    assert rig.wait_phase("Finishing")["stop_reason"] == "Local"
    rig.ev("unplug")
    rig.wait_phase("Available")
    row, receipt = closed(rig, session_id)
    assert receipt["tariff_id"] == "FLEET-CONTRACT-7"
    assert row["id_token"] == "04A1B2C3D4E5F6"
    # the personal tariff's price, shown gross: 0.30 EUR/kWh + 19 % VAT = 0.357 EUR/kWh
    assert [Decimal(line["unit_price"]) for line in receipt["charges"]] == [Decimal("0.357")]
    energy_kwh = Decimal(receipt["energy_wh"]) / 1000
    gross = round_half_up(energy_kwh * Decimal("0.357"), 2)
    assert Decimal(receipt["total"]["incl_vat"]) == gross
    # the VAT contained in the gross amount; net = gross - VAT
    assert Decimal(receipt["total"]["excl_vat"]) == gross - round_half_up(gross * 19 / 119, 2)


def test_technician_card_stops_any_session_and_blocked_cards_get_nothing(cards):
    rig = cards.rig
    blocked = cards.present("rfid-10")
    assert (blocked["result"], blocked["reason"]) == ("declined", "blocked"), blocked
    assert blocked["message"] == "This card is blocked"
    rig.ev("plug")
    accepted = cards.present("rfid-4")
    assert accepted["result"] == "accepted"
    rig.wait_phase("Charging", timeout_s=10)
    stop = cards.present(f"rfid:{TECHNICIAN}")
    assert (stop["result"], stop["reason"]) == ("stopping", "technician_stop"), stop
    assert rig.wait_phase("Finishing")["stop_reason"] == "Technician"


@pytest.mark.cards(auth={"offline_tx_for_unknown_id": True,
                          "max_energy_on_invalid_id_wh": 500})
def test_unknown_card_accepted_offline_is_capped_when_the_backend_rejects_it(cards):
    rig = cards.rig
    cards.backend.stop()
    rig.wait_for("the backend link down", lambda: rig.state()["backend_online"] is False, 10)
    accepted = cards.present("rfid:0A0B0C0D")
    assert (accepted["result"], accepted["decided_by"], accepted["offline"]) == (
        "accepted", "offline_policy", True), accepted
    session_id = accepted["session_id"]
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=10)
    cards.backend.start()  # back: the token is checked and turns out unknown
    finishing = rig.wait_phase("Finishing", timeout_s=20)
    assert finishing["stop_reason"] == "EnergyLimitReached"
    assert finishing["energy_cap_wh"] == "500"
    rig.ev("unplug")
    rig.wait_phase("Available")
    row, _ = closed(rig, session_id)
    assert json.loads(row["authorization_json"])["recheck"] is False


def test_serial_125khz_tag_starts_and_stops_a_session(cards, pty_pair):
    rig = cards.rig
    rig.wait_for("the serial reader", lambda: rig.state()["readers"].get(pty_pair[1]) == "ready",
                 5)
    rig.ev("plug")
    mark = cards.events.mark()
    emulator = subprocess.run(
        [sys.executable, "-m", "terminal.cli", "sim", "rfid", "--device", pty_pair[0], "--tag",
         "0A1B2C3D4E", "--hold-s", "0.5", "--garbage", "7", "--bad-checksum"],
        capture_output=True, text=True, timeout=20)
    assert emulator.returncode == 0, emulator.stderr
    accepted = cards.events.tap(mark)
    assert (accepted["result"], accepted["kind"], accepted["reader"]) == (
        "accepted", "rfid", pty_pair[1]), accepted
    rig.wait_phase("Charging", timeout_s=10)
    time.sleep(0.6)  # out of the field longer than the reader's hold time: a new tap
    mark = cards.events.mark()
    subprocess.run([sys.executable, "-m", "terminal.cli", "sim", "rfid", "--device",
                    pty_pair[0], "--tag", "0A1B2C3D4E", "--hold-s", "0.5"],
                   capture_output=True, text=True, timeout=20, check=True)
    assert cards.events.tap(mark)["result"] == "stopping"
    assert rig.wait_phase("Finishing")["stop_reason"] == "Local"


# ---- no card number anywhere ----------------------------------------------------------------


def pan_forms(pan: str) -> list[bytes]:
    spaced = " ".join(pan[i:i + 4] for i in range(0, len(pan), 4))
    padded = pan + "F" * (len(pan) % 2)
    return [pan.encode(), spaced.encode(), padded.lower().encode(), padded.encode(),
            bytes.fromhex(padded)]


def test_no_card_number_is_found_in_the_database_logs_or_messages(cards):
    rig = cards.rig
    for card in ("visa", "mastercard", "maestro", "discover", "jcb", "unionpay", "interac"):
        rig.ev("plug")
        accepted = cards.present(card)
        assert accepted["result"] == "accepted", (card, accepted)
        rig.wait_phase("Charging", timeout_s=10)
        cards.present(card)
        rig.wait_phase("Finishing")
        rig.ev("unplug")
        rig.wait_phase("Available")
        cards.wait_settled(accepted["session_id"], "captured")
    for card in ("visa-declined", "visa-expired", "broken-tlv", "visa-61xx",
                 "mastercard-6cxx", "mc-maestro"):
        cards.present(card)
    received = json.dumps(cards.backend.admin("received"))
    assert "preauthorize" in received and "capture" in received
    rig.stop_daemon()
    haystacks: dict[str, bytes] = {"backend messages": received.encode()}
    for path in (rig.folder / "state").iterdir():
        haystacks[str(path)] = path.read_bytes()
    haystacks["daemon log"] = rig.daemon_log.read_bytes()
    haystacks["tap events"] = json.dumps(cards.events.messages).encode()
    assert any("evterm.db" in name for name in haystacks)
    for card, pan in TEST_PANS.items():
        for form in pan_forms(pan):
            for name, data in haystacks.items():
                assert form not in data, f"{card}'s number ({form!r}) found in {name}"


@pytest.mark.cards(payment={"accepted_schemes": "girocard, visa"})
def test_accepted_schemes_reach_the_reader_and_the_driver_is_told_what_is_accepted(cards):
    """[payment] accepted_schemes through the daemon: a phone asking for confirmation is
    told to see it; CB and Mastercard (not accepted here) are refused naming girocard and
    Visa, without a session or a gateway request; girocard is paid for."""
    phone = cards.present("phone-6986")
    assert (phone["result"], phone["reason"]) == ("tap_again", "see_phone")
    assert phone["message"] == "See phone for instructions, then tap again"
    for card in ("cb", "mastercard"):
        refused = cards.present(card)
        assert (refused["result"], refused["reason"]) == (
            "declined", "scheme_not_accepted:girocard,visa"), card
        assert refused["message"] == \
            "This card type is not accepted here - accepted: girocard, Visa"
    assert cards.backend.admin("received", filter_op="preauthorize")["messages"] == []
    assert cards.rig.state()["phase"] == "Available"
    giro = cards.present("girocard", hold_s=0.8)
    assert giro["result"] == "accepted", giro
    asked, = cards.backend.admin("received", filter_op="preauthorize")["messages"]
    assert (asked["body"]["scheme"], asked["body"]["masked_pan"]) == (
        "girocard", "400000******0016")
