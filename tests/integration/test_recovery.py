"""Power loss of the terminal: the daemon is killed with SIGKILL (no clean-up at all)
while the car charges on, and started again. Sessions resume or close from the
meter's counter; none is lost, none is billed twice, and the energy billed over all
sessions equals the meter's own delta to the Wh."""

from __future__ import annotations

import random
import time
from decimal import Decimal

import pytest

from hw_mocks.rig import Rig
from terminal.store import Store
from tests.integration.crash_loop import crash_loop, start

CRASH_CURVE = {"max_power_w": 150_000, "ramp_s": 10, "constant_s": 600, "taper_s": 300,
               "taper_end_power_w": 20_000}


def sessions(rig: Rig) -> list[dict]:
    store = Store.open(rig.database, create=False)
    try:
        found = []
        for row in store.sessions(limit=10_000):
            readings = store.readings(row["id"])
            events = [m for m in store.outbox() if m.session_id == row["id"]]
            found.append({"row": row, "readings": readings, "events": events,
                          "receipt": store.receipt(row["id"])})
        return found
    finally:
        store.close()


def billed(session: dict) -> Decimal:
    row = session["row"]
    if row["meter_start_wh"] is None:
        return Decimal(0)
    return Decimal(row["meter_stop_wh"]) - Decimal(row["meter_start_wh"])


def test_killed_while_charging_resumes_the_same_session(rig):
    session_id = start(rig)
    rig.ev("plug")
    rig.wait_phase("Charging")
    rig.kill_daemon()
    time.sleep(1.0)  # 30 s of charging while the terminal is down
    assert rig.ev("status")["output_on"] is True
    ready = rig.start_daemon()
    assert ready["recovery"] == {"open_session": session_id, "resumed": True, "plugged": True,
                                 "authorization_valid": True, "phase": "SuspendedEV"}
    state = rig.wait_phase("Charging")
    assert state["session_id"] == session_id
    rig.api("stop", id_token="TOKEN-A")
    rig.wait_phase("Finishing")
    delivered = Decimal(str(rig.ev("unplug")["plugs"][-1]["delivered_wh"]))
    rig.wait_phase("Available")
    (found,) = sessions(rig)
    assert found["row"]["stop_reason"] == "Local"
    assert billed(found) == int(delivered)  # the downtime's energy is billed
    assert [k for k, _ in found["readings"]].count("resume") == 1


def test_unplugged_while_down_closes_with_the_meters_counter(rig):
    session_id = start(rig)
    rig.ev("plug")
    rig.wait_phase("Charging")
    rig.kill_daemon()
    time.sleep(0.5)
    delivered = Decimal(str(rig.ev("unplug")["plugs"][-1]["delivered_wh"]))
    ready = rig.start_daemon()
    assert ready["recovery"]["resumed"] is False and ready["phase"] == "Completed"
    (found,) = sessions(rig)
    assert found["row"]["id"] == session_id
    assert found["row"]["stop_reason"] == "PowerLoss"
    assert billed(found) == int(delivered)
    assert found["receipt"] is not None
    rig.wait_phase("Available")


@pytest.mark.rig(session={"authorization_valid_s": 60})
def test_expired_authorisation_is_not_resumed(rig):
    start(rig)
    rig.ev("plug")
    rig.wait_phase("Charging")
    rig.kill_daemon()
    time.sleep(2.5)  # 75 s simulated: the 60 s authorisation has expired
    ready = rig.start_daemon()
    assert ready["recovery"]["authorization_valid"] is False
    status = rig.ev("status")
    assert status["output_commanded"] is False and status["output_on"] is False
    (found,) = sessions(rig)
    assert found["row"]["stop_reason"] == "PowerLoss"
    assert billed(found) == int(Decimal(str(status["delivered_wh"])))


def test_crash_loop_loses_nothing_and_bills_nothing_twice(tmp_path):
    """At least 50 SIGKILLs with the car charging, at random moments, with stops,
    unplugs while the terminal is up and while it is down."""
    with Rig(tmp_path / "rig", speed=30.0, poll_interval_s=2.0, curve=CRASH_CURVE) as rig:
        ready = rig.start_station()
        loop = crash_loop(rig, random.Random(20261121))
        found = sessions(rig)
    assert ready
    assert len(found) >= 5
    for session in found:
        row = session["row"]
        assert row["closed_at"] is not None, row  # every session completed
        kinds = [m.payload.get("event_type") for m in session["events"]
                 if m.kind == "TransactionEvent"]
        seq = [m.seq_no for m in session["events"] if m.kind == "TransactionEvent"]
        assert seq == list(range(len(seq))), seq  # no duplicate, no gap
        if row["meter_start_wh"] is None:
            assert kinds == []
            continue
        assert kinds.count("Started") == 1 and kinds.count("Ended") == 1 and kinds[-1] == "Ended"
        assert session["receipt"] is not None
        energies = [r.energy_import_wh for _, r in session["readings"]]
        assert energies == sorted(energies)
        assert Decimal(row["meter_stop_wh"]) == energies[-1]
        times = [r.timestamp for _, r in session["readings"]]
        assert len(set(times)) == len(times)
    total_billed = sum((billed(s) for s in found), Decimal(0))
    # the meter's integer-Wh counter: everything it counted was billed, exactly once
    assert total_billed == int(loop.counter_after_wh) - int(loop.counter_before_wh)
    assert total_billed > 0
