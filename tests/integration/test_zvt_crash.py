"""kill -9 at every ZVT step: the daemon is stopped with SIGKILL right after the payment
terminal took a pre-authorisation, booking or reversal (`..._sent`) and right after it
answered, before the journal says so (`..._answered`; terminal.payment.faultpoint
ZVT_POINTS, armed by EVTERM_FAULT_POINT at start). Started again without it, every
reservation ends with exactly one booking or one reversal, as the simulator's --state
file (the terminal's truth) and the journal both say."""

from __future__ import annotations

import shutil
import signal
import tempfile
from decimal import Decimal
from pathlib import Path

import pytest

from terminal.payment.faultpoint import ENV, ZVT_POINTS
from tests.integration.zvt_rig import ZvtRig, zvt_rig

FINAL = {"preauth": "voided", "booking": "captured", "reversal": "voided"}


def drive_until_killed(zvt: ZvtRig, step: str) -> None:
    """A session that reaches `step` (the kill comes from inside the daemon)."""
    rig = zvt.rig
    if step == "preauth":
        rig.ev("plug")
        zvt.wait_card_wait()
        zvt.control("present", card="visa")
        return
    if step == "booking":
        rig.ev("plug")
    accepted = zvt.present("visa")
    assert accepted["result"] == "accepted", accepted
    if step == "booking":
        rig.wait_phase("Charging", timeout_s=10)
        rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 500)
    if step == "reversal":  # the driver's own cancel before any energy: released at once
        # (the same card again while the session waits only says "already authorised")
        assert rig.api("stop", reason="Local")["ok"]
        return
    stop = zvt.present("visa")  # the same card ends it
    assert stop["result"] == "stopping", stop
    rig.wait_phase("Finishing")
    rig.ev("unplug")


def test_kill_at_every_zvt_step_ends_in_one_booking_or_one_reversal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = Path(tempfile.mkdtemp(prefix="evzvtk-"))  # short: socket paths < 108 bytes
    try:
        with zvt_rig(folder) as zvt:
            rig = zvt.rig
            rig.stop_daemon()
            for point in ZVT_POINTS:
                step = point.split("_")[1]
                monkeypatch.setenv(ENV, point)
                rig.start_daemon()
                monkeypatch.delenv(ENV)  # armed in the running daemon only
                zvt.subscribe()
                drive_until_killed(zvt, step)
                assert rig.daemon is not None
                assert rig.daemon.wait(timeout=30) == -signal.SIGKILL, point
                assert f"fault injection: killed at {point}" in rig.tail("daemon")
                rig.start_daemon()
                zvt.subscribe()
                payment = zvt.payments()[-1]
                settled = zvt.wait_settled(payment.session_id, FINAL[step])
                if rig.ev("status")["plugged"]:
                    rig.ev("unplug")
                rig.wait_phase("Available")
                if point == "zvt_preauth_sent":  # cut off before the card: nothing held
                    assert "receipt_number" not in settled.pt, (point, settled.pt)
                else:
                    assert settled.pt.get("receipt_number"), (point, settled.pt)
                rig.stop_daemon()

            state = zvt.sim_state()
            payments = zvt.payments()
            assert len(payments) == len(ZVT_POINTS)
            assert state["reservations"] == {}  # every reservation booked or released
            captured = [p for p in payments if p.status.value == "captured"]
            voided = [p for p in payments if p.status.value == "voided"]
            assert len(captured) == 2 and len(voided) == 4
            # exactly one booking per captured payment, of the amount the journal says
            assert sorted(state["batch"]) == sorted(
                str(p.pt["booking"]["receipt_number"]) for p in captured)
            for p in captured:
                booked = state["batch"][str(p.pt["booking"]["receipt_number"])]
                assert booked["amount_minor"] == int((p.amount_captured or 0) * 100)
            # exactly one reversal per voided reservation; none where nothing was held
            held = [p.pt["receipt_number"] for p in voided if "receipt_number" in p.pt]
            assert sorted(state["reversed"]) == sorted(held) and len(held) == 3
    finally:
        shutil.rmtree(folder, ignore_errors=True)
