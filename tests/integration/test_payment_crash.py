"""A card payment killed while 'requested': the daemon is stopped with SIGKILL at a
deterministic point of the pre-authorisation (EVTERM_FAULT_POINT, read once at start;
terminal.payment.faultpoint), started again without it, and the hold the gateway may
have placed is voided exactly once (the gateway's ledger and the requests it got)."""

from __future__ import annotations

import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.pcscd import PcscdHandle
from terminal.payment.faultpoint import ENV, POINTS
from terminal.store import Store
from tests.integration.test_card_sessions import card_rig_for


@pytest.mark.parametrize("point", POINTS)
def test_a_payment_killed_while_requested_is_voided_exactly_once(
        pcscd: PcscdHandle, tap: Any, monkeypatch: pytest.MonkeyPatch, point: str) -> None:
    folder = Path(tempfile.mkdtemp(prefix="evcrash-"))  # short: socket paths < 108 bytes
    monkeypatch.setenv(ENV, point)
    try:
        for cards in card_rig_for(pcscd, tap, folder):
            rig = cards.rig
            monkeypatch.delenv(ENV)  # armed in the running daemon only
            tap("mastercard", hold_s=0.6).wait_left()
            assert rig.daemon is not None
            assert rig.daemon.wait(timeout=20) == -signal.SIGKILL
            assert f"fault injection: killed at {point}" in rig.tail("daemon")
            store = Store.open(rig.database, create=False)
            try:
                ((session_id,),) = store.conn.execute(
                    "SELECT session_id FROM payments").fetchall()
                payment = store.payment(session_id=session_id)
                assert payment is not None and payment.status.value == "requested"
            finally:
                store.close()
            ready = rig.start_daemon()
            assert ready["recovery"]["open_session"] == payment.session_id
            settled = cards.wait_settled(payment.session_id, "voided")
            assert settled.reason == "interrupted"
            voids = [m for m in cards.backend.admin("received", filter_op="void")["messages"]
                     if m["key"] == payment.reference]
            assert len(voids) == 1 and voids[0]["count"] == 1, voids
            held = [p for p in cards.backend.admin("ledger")["payments"]
                    if p["reference"] == payment.reference]
            if point == "payment_answered":  # the gateway held the money: now released
                assert len(held) == 1 and held[0]["voided"] is True, held
                assert held[0]["captured"] is None
            else:  # the gateway was never asked: nothing held
                assert held == []
            rig.wait_phase("Available")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
