"""Card holds at an external ZVT payment terminal through the real stack (the rig of
tests/integration/zvt_rig.py: the daemon, the station simulator, `evterm sim zvt` and the
loopback backend, each its own process; the simulator's state file is the truth).

One story on one rig (the rig's clock runs 30x): a 20.00 budget picked at the screen is
a 20.00 reservation at the terminal; nobody plugs in, the plug-in timeout ends the
session, and the same card read again takes over the reservation (the terminal still
holds one); it charges, the booking takes the bill's amount and the receipt shows
Reserved / Charged / Released. Then another card whose session never sees energy keeps
its reservation until the grace deadline, when it is reversed once and the screen is
told (`hold_released`)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.zvt_rig import ZvtRig, zvt_rig

TIMEOUT_S = 120  # [session] connection_timeout_s: 4 s on the rig's clock
GRACE_S = 300  # [payment] hold_grace_s: 10 s on the rig's clock


@pytest.fixture
def zvt() -> Iterator[ZvtRig]:
    folder = Path(tempfile.mkdtemp(prefix="evzvth-"))  # short: socket paths < 108 bytes
    with zvt_rig(folder, session={"connection_timeout_s": TIMEOUT_S},
                 payment={"hold_grace_s": GRACE_S}) as rig:
        yield rig
    shutil.rmtree(folder, ignore_errors=True)


def reserved_minor(zvt: ZvtRig) -> list[int]:
    """The terminal's open reservations, in cents."""
    return [r["amount_minor"] for r in zvt.sim_state()["reservations"].values()]


def test_a_budget_reservation_is_reused_after_a_timeout_booked_and_another_reversed(zvt):
    rig = zvt.rig
    picked = rig.api("budget", amount="20.00")
    assert picked["ok"] and picked["state"]["card_hold"]["amount"] == "20.00", picked
    first = zvt.present("visa")  # nobody plugs in yet
    assert (first["result"], first["cost_cap"]) == ("accepted", "20.00"), first
    assert reserved_minor(zvt) == [2000]
    rig.wait_for("the plug-in timeout", lambda: rig.state()["session_id"] is None, 20)

    reused = zvt.present("visa")
    assert (reused["result"], reused["reason"]) == ("accepted", "hold_reused"), reused
    assert reused["session_id"] != first["session_id"] and reused["cost_cap"] == "20.00"
    state = zvt.sim_state()
    assert state["next_receipt"] == 2 and reserved_minor(zvt) == [2000]  # one reservation
    session_id = reused["session_id"]
    assert zvt.payment(session_id).reference == f"{first['session_id']}:pay"

    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1000)
    stop = zvt.present("visa")
    assert stop["result"] == "stopping", stop
    rig.ev("unplug")
    rig.wait_phase("Available")
    payment = zvt.wait_settled(session_id, "captured")
    charged = payment.amount_captured
    assert charged is not None and Decimal(0) < charged < Decimal("20.00")
    state = zvt.sim_state()
    assert state["reservations"] == {} and state["reversed"] == []
    assert [b["amount_minor"] for b in state["batch"].values()] == [int(charged * 100)]
    assert state["released_minor"] == 2000 - int(charged * 100)
    shown = rig.wait_for("the receipt with the terminal's lines", lambda: "BUCHUNG" in (
        r := rig.api("receipt", session_id=session_id))["text"] and r)
    rows = shown["receipt"]["payment"]
    assert (Decimal(rows["reserved"]), Decimal(rows["charged"]),
            Decimal(rows["released"])) == (Decimal("20.00"), charged,
                                           Decimal("20.00") - charged)
    assert "Reserved on card" in shown["text"] and "Released" in shown["text"]
    german = rig.api("receipt", session_id=session_id, language="de")["text"]
    assert "Auf der Karte reserviert" in german and "Freigegeben" in german

    # another card, no vehicle: kept past the plug-in timeout, reversed at the deadline
    events = zvt.events or zvt.subscribe()
    mark = events.mark()
    other = zvt.present("mastercard")
    assert (other["result"], other["cost_cap"]) == ("accepted", "50.00"), other
    rig.wait_for("the plug-in timeout", lambda: rig.state()["session_id"] is None, 20)
    assert reserved_minor(zvt) == [5000]  # kept for a retried tap
    released = events.wait_for("the hold released",
                               lambda m: m.get("type") == "hold_released", since=mark)
    assert (released["session_id"], released["amount"]) == (other["session_id"], "50.00")
    voided = zvt.wait_settled(other["session_id"], "voided")
    assert voided.approved_at is not None
    assert (voided.updated_at - voided.approved_at).total_seconds() >= GRACE_S
    state = zvt.sim_state()
    assert state["reservations"] == {} and state["reversed"] == [3]
    assert len(state["batch"]) == 1  # nothing booked for it
