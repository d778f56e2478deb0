"""What the journal keeps for the operator's report, through the real stack (a private
pcscd with cards tapped by `evterm sim tap`, the station simulator, the loopback backend
and `evterm daemon`): an RFID session, a declined bank card and a charger fault leave
their taps (with decision times) and the connector's status rows; the session's fact
carries its receipt's money; a kill -9 of the daemon is journaled as an outage."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.pcscd import PcscdHandle
from hw_mocks.rig import Rig
from terminal.report.facts import iter_sessions, iter_status, iter_taps, open_read_only
from terminal.store import Store
from tests.integration.test_card_sessions import CardRig, card_rig_for


@pytest.fixture
def cards(pcscd: PcscdHandle, tap: Any) -> Iterator[CardRig]:
    folder = Path(tempfile.mkdtemp(prefix="evrep-"))  # short: socket paths < 108 bytes
    yield from card_rig_for(pcscd, tap, folder)
    shutil.rmtree(folder, ignore_errors=True)


def status_rows(rig: Rig) -> list[tuple[str, str]]:
    conn = open_read_only(rig.database)
    try:
        return [(s.status, s.cause) for s in iter_status(conn)]
    finally:
        conn.close()


def test_taps_status_changes_and_an_outage_are_journaled(cards):
    rig = cards.rig
    rig.ev("plug")
    accepted = cards.present("rfid-4")
    assert (accepted["result"], accepted["kind"]) == ("accepted", "rfid"), accepted
    session_id = accepted["session_id"]
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1000)
    assert cards.present("rfid-4")["result"] == "stopping"
    rig.wait_phase("Finishing")
    rig.ev("unplug")
    rig.wait_phase("Available")
    declined = cards.present("visa-declined")
    assert (declined["result"], declined["reason"]) == ("declined", "do_not_honor")
    rig.ev("fault", kind="charger_error", code=3)
    rig.wait_for("the charger fault journaled",
                 lambda: ("Faulted", "charger_fault") in status_rows(rig), 15)
    rig.ev("clear")
    rig.wait_for("available again", lambda: status_rows(rig)[-1] == ("Available", "ready"), 15)

    conn = open_read_only(rig.database)
    try:
        taps = list(iter_taps(conn))
        facts = list(iter_sessions(conn, "ST1"))
    finally:
        conn.close()
    by_result = {(t.kind, t.result): t for t in taps}
    rfid = by_result[("rfid", "accepted")]
    assert (rfid.token, rfid.session_id, rfid.reason) == ("1A2B3C4D", session_id, "accepted")
    card = by_result[("card", "declined")]
    assert card.reason == "do_not_honor" and card.token  # the card's token, no number
    assert all(t.decision_ms is not None and t.decision_ms >= 0 for t in taps)
    assert len(taps) == 2  # the stop tap is no authorisation decision
    rows = status_rows(rig)
    # the start's row: "started" (Available, or Occupied when the first poll came after
    # the plug on a loaded machine), or a fault the first poll saw, with its own cause
    assert rows[0][1] == "started" or rows[0][0] == "Faulted", rows
    assert any(status == "Occupied" for status, _ in rows[:-2]), rows
    assert rows[-2:] == [("Faulted", "charger_fault"), ("Available", "ready")], rows
    assert all(a != b for a, b in pairwise(rows))  # changes only
    fact = next(f for f in facts if f.session_id == session_id)
    refused = next(f for f in facts if f.session_id == card.session_id)
    assert (refused.final_phase, refused.amount_charged) == ("Rejected", 0)
    store = Store.open(rig.database, create=False)
    try:
        receipt = store.receipt(session_id)
    finally:
        store.close()
    assert receipt is not None
    assert fact.session_id == session_id and fact.payment_method == "rfid"
    assert fact.amount_charged == Decimal(receipt[0]["amount_charged"]) > 0
    assert fact.energy_wh == Decimal(receipt[0]["energy_wh"]) > 0

    rig.kill_daemon()  # a power cut
    rig.start_daemon()
    rig.wait_for("the restart journaled",
                 lambda: status_rows(rig)[-1] == ("Available", "started"), 15)
    assert status_rows(rig)[-2] == ("Unavailable", "power_loss")
    conn = open_read_only(rig.database)
    try:
        *_, outage, restarted = iter_status(conn)
    finally:
        conn.close()
    assert outage.at < restarted.at  # from the last sign of life: the outage counts
    assert rig.stop_daemon() == 0
    assert status_rows(rig)[-1] == ("Unavailable", "stopped")
