"""NotifySettlement over a real mosquitto: `evterm daemon` with the MQTT link and a PC/SC
reader (private pcscd + vpcd, cards tapped by `evterm sim tap`), `evterm sim station`
and `evterm sim backend`, each its own process. A captured card session gives one
Settled with the receipt's amount, a hold released for want of energy one Canceled, a
declined card one Rejected; the VAT number the driver gave is on the receipt and in
the settlement; a daemon killed (SIGKILL) while its capture waits for the
gateway, and again after everything was delivered and sent once more, still gives
exactly one per payment. The simulator checks every field as OCPP 2.1's schema does and
drops what fails, naming the field."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.backend_process import BackendMqttProcess
from hw_mocks.mosquitto import Broker, Probe
from hw_mocks.rig import Rig, Subscriber
from terminal.backend import protocol
from terminal.backend.settlement import KIND, NotifySettlement, SettlementStatus
from terminal.store import PaymentRow, Store
from tests.integration.test_mqtt_sessions import STATION, all_delivered, mqtt_section


@dataclass
class SettleRig:
    rig: Rig
    sim: BackendMqttProcess
    tap: Any
    events: Subscriber | None = None
    left_at_s: float = 0.0

    def subscribe(self) -> None:
        if self.events is not None:
            self.events.close()
        self.events = Subscriber(self.rig.socket_path)

    def present(self, card: str) -> dict[str, Any]:
        """Tap a card; the daemon's `tap` event (vpcd sees a card at its 0.4 s poll)."""
        assert self.events is not None
        time.sleep(max(0.0, self.left_at_s + 0.5 - time.monotonic()))
        mark = self.events.mark()
        self.tap(card, hold_s=0.6).wait_left()
        self.left_at_s = time.monotonic()
        return self.events.tap(mark)

    def payment(self, session_id: str) -> PaymentRow | None:
        store = Store.open(self.rig.database, create=False)
        try:
            return store.payment(session_id=session_id)
        finally:
            store.close()

    def wait_status(self, session_id: str, status: str, timeout_s: float = 30) -> PaymentRow:
        found: PaymentRow = self.rig.wait_for(
            f"payment of {session_id} {status}",
            lambda: (p := self.payment(session_id)) is not None and p.status == status and p,
            timeout_s)
        return found

    def settlements(self) -> list[dict[str, Any]]:
        return list(self.sim.admin("events", station_id=STATION, kind=KIND)["events"])


@pytest.fixture
def settle_rig(tmp_path: Path, pcscd: Any, tap: Any, backend_sim: Any) -> Iterator[SettleRig]:
    broker = Broker(tmp_path / "broker", persistent=True).start()
    folder = Path(tempfile.mkdtemp(prefix="evst-"))  # short: socket paths < 108 bytes
    try:
        sim = backend_sim(broker)
        token_key = folder / "token.key"
        token_key.write_text(os.urandom(32).hex())
        rig = Rig(folder / "rig", speed=30.0, session={"connection_timeout_s": 30}, extra={
            "backend": mqtt_section(broker, sim),
            "readers": {"pcsc": True, "pcsc_socket": pcscd.socket_path},
            "payment": {"token_key_file": str(token_key),
                        "gateway_key_file": str(sim.gateway_public),
                        "preauth_amount": "50.00"},
        })
        with rig:
            rig.start_station()
            rig.start_daemon()
            rig.wait_reader()
            rig.wait_for("the backend link", lambda: rig.state()["backend_online"], 10)
            settle = SettleRig(rig, sim, tap)
            settle.subscribe()
            yield settle
            if settle.events is not None:
                settle.events.close()
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def receipt_of(rig: Rig, session_id: str) -> dict[str, Any]:
    store = Store.open(rig.database, create=False)
    try:
        found = store.receipt(session_id)
        assert found is not None
        return found[0]
    finally:
        store.close()


def test_every_card_payment_reports_its_end_exactly_once_across_kills(settle_rig):
    s, rig, sim = settle_rig, settle_rig.rig, settle_rig.sim
    # a card session whose capture is waiting for a silent gateway when the daemon dies
    rig.ev("plug")
    accepted = s.present("visa")
    assert accepted["result"] == "accepted", accepted
    charged = accepted["session_id"]
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1500)
    given = rig.api("vat_number", session_id=charged, vat_number="de 123 456 789")
    assert given["ok"] and given["vat_number"] == "DE123456789", given
    assert s.present("visa")["result"] == "stopping"
    rig.wait_phase("Finishing")
    sim.admin("silent", on=True)
    rig.ev("unplug")
    rig.wait_phase("Available")
    s.wait_status(charged, "capture_pending")
    rig.kill_daemon()  # kill -9 while the capture waits for its answer
    assert s.settlements() == []
    sim.admin("silent", on=False)
    rig.start_daemon()
    s.subscribe()
    payment = s.wait_status(charged, "captured")

    # a hold for a session that never delivered energy: released
    held = s.present("mastercard")  # nobody plugs in: the connection times out
    assert held["result"] == "accepted", held
    voided = s.wait_status(held["session_id"], "voided")
    rig.wait_phase("Available")

    # a card the bank declines
    declined = s.present("visa-declined")
    assert declined["reason"] == "do_not_honor", declined
    (refused,) = [p for p in (s.payment(declined["session_id"]),) if p is not None]
    assert refused.status == "declined"

    view = all_delivered(rig, sim)
    assert view["rejected"] == []  # every field passed the simulator's checks
    got = {e["session_id"]: e for e in s.settlements()}
    assert set(got) == {charged, held["session_id"], declined["session_id"]}
    settled = NotifySettlement.from_json(got[charged]["payload"])
    receipt = receipt_of(rig, charged)
    assert settled.status is SettlementStatus.SETTLED
    assert settled.settlement_amount == Decimal(receipt["amount_charged"]) > 0
    assert settled.settlement_amount == payment.amount_captured
    assert (settled.psp_ref, settled.transaction_id, settled.receipt_id) == (
        payment.psp_reference, charged, charged)
    assert settled.currency == "EUR" and settled.vat_number == "DE123456789"
    assert receipt["payment"]["vat_number"] == "DE123456789"  # and on the receipt
    assert "Customer VAT no." in rig.api("receipt", session_id=charged)["text"]
    canceled = NotifySettlement.from_json(got[held["session_id"]]["payload"])
    assert (canceled.status, canceled.settlement_amount) == (SettlementStatus.CANCELED, 0)
    assert canceled.status_info == "hold of 50.00 EUR released"
    assert canceled.psp_ref == voided.psp_reference and canceled.receipt_id is None
    assert canceled.vat_number is None  # none given: none sent
    rejected = NotifySettlement.from_json(got[declined["session_id"]]["payload"])
    assert (rejected.status, rejected.status_info) == (SettlementStatus.REJECTED,
                                                       "do_not_honor")
    assert rejected.psp_ref == refused.reference  # the gateway gave none

    # killed again and everything sent once more: still one per payment
    rig.kill_daemon()
    rig.start_daemon()
    rig.wait_for("the backend link", lambda: rig.state()["backend_online"], 10)
    reply = sim.admin("command", station_id=STATION, name="reconcile", body={})
    assert reply["answer"]["ok"] and reply["answer"]["body"]["requeued"] >= 3, reply
    view = all_delivered(rig, sim)
    assert view["duplicates"] >= 3
    again = s.settlements()
    assert sorted(e["session_id"] for e in again) == sorted(got)
    assert all(e["count"] >= 2 for e in again)  # sent twice, recorded once
    store = Store.open(rig.database, create=False)
    try:
        queued = [m.session_id for m in store.outbox() if m.kind == KIND]
    finally:
        store.close()
    assert sorted(queued) == sorted(got)  # and queued once each at the terminal


def test_the_simulator_checks_settlements_like_the_ocpp_schema(tmp_path, backend_sim):
    broker = Broker(tmp_path / "broker").start()
    try:
        sim = backend_sim(broker)
        good = NotifySettlement(
            psp_ref="PSP-1", status=SettlementStatus.SETTLED,
            settlement_amount=Decimal("12.34"), settlement_time=datetime.now(UTC),
            reference="S-1:pay", currency="EUR", transaction_id="S-1").to_json()
        bad = {
            "long-psp": {**good, "pspRef": "P" * 256},
            "amount-text": {**good, "settlementAmount": "12.34"},
            "no-time": {k: v for k, v in good.items() if k != "settlementTime"},
            "status": {**good, "status": "Paid"},
            "extra": {**good, "pspReference": "PSP-1"},
        }
        with Probe(broker, "ST9").connect() as station:
            topic = protocol.up("ST9", "event")
            for key, payload in (("ok", good), *bad.items()):
                station.publish(topic, protocol.encode(protocol.Event(
                    KIND, key, "2026-12-03T09:00:00Z", payload, "S-1").to_json()))
            deadline = time.monotonic() + 5
            while len(sim.admin("events")["rejected"]) < len(bad) \
                    and time.monotonic() < deadline:
                time.sleep(0.05)
        view = sim.admin("events", kind=KIND)
        assert [e["idempotency_key"] for e in view["events"]] == ["ok"]
        assert Decimal(str(view["events"][0]["payload"]["settlementAmount"])) == \
            Decimal("12.34")
        assert [r["field"] for r in view["rejected"]] == [
            "payload.pspRef", "payload.settlementAmount", "payload.settlementTime",
            "payload.status", "payload.pspReference"]
    finally:
        broker.stop()
