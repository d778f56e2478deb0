"""The demo's stack with the external payment terminal (`evterm demo --payment-terminal
zvt`), without the touchscreen: mosquitto, pcscd, the MQTT backend simulator, the
station simulator, `evterm sim zvt` and the daemon, each its own process. A bank card
held to the terminal pays its session; the PC/SC reader sends bank cards there and
keeps taking charge cards; a card the bank declines is told so."""

from __future__ import annotations

import shutil
import tempfile
from decimal import Decimal
from pathlib import Path

from hw_mocks.demo_stack import DemoStack
from terminal.store import Store


def test_the_demo_stack_takes_bank_cards_at_the_zvt_terminal() -> None:
    folder = Path(tempfile.mkdtemp(prefix="evzvtd-"))  # short: socket paths < 108 bytes
    try:
        with DemoStack(folder / "s", with_ui=False, payment_terminal="zvt",
                       meter_model="carlo_gavazzi_em580", say=lambda text: None) as stack:
            assert stack.rig is not None
            rig = stack.rig
            pcsc = stack.tap("visa")  # a bank card on our reader: pay at the terminal
            assert (pcsc["result"], pcsc["reason"]) == ("declined", "pay_at_terminal")
            declined = stack.tap("zvt:visa-declined")
            assert (declined["reason"], declined["reader"]) == ("do_not_honor", "zvt")
            stack.plug()
            accepted = stack.tap("zvt:visa")
            assert accepted["result"] == "accepted" and accepted["cost_cap"] == "50.00"
            rig.wait_phase("Charging", timeout_s=15)
            rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 500)
            assert stack.tap("zvt:visa")["result"] == "stopping"
            rig.wait_phase("Finishing", timeout_s=20)
            stack.unplug()
            rig.wait_phase("Available", timeout_s=20)

            def captured() -> bool:
                store = Store.open(rig.database, create=False)
                try:
                    payment = store.payment(session_id=accepted["session_id"])
                    return payment is not None and payment.status.value == "captured"
                finally:
                    store.close()

            rig.wait_for("the booking", captured, 20)
            batch = stack.zvt_request("status")["batch"]
            assert len(batch) == 1
            charge = stack.tap("rfid-7")  # a charge card still works on the PC/SC reader
            assert charge["result"] == "accepted", charge
    finally:
        shutil.rmtree(folder, ignore_errors=True)
