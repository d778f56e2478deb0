"""The daemon end to end: `evterm sim station` and `evterm daemon` as real processes on a
30x clock, driven through the station's control socket and the daemon's local API.
Every stop reason of docs/session.md occurs here or in the recovery tests."""

from __future__ import annotations

import json
import sqlite3
from decimal import Decimal

import pytest

from hw_mocks.rig import Rig
from terminal.billing import bill_from_row
from terminal.store import Store

IDLE_TARIFF = {
    "country_code": "DE", "party_id": "EVT", "id": "TEST-IDLE", "currency": "EUR",
    "type": "AD_HOC_PAYMENT",
    "elements": [
        {"price_components": [{"type": "FLAT", "price": 1.00, "vat": 19.0, "step_size": 1}]},
        {"price_components": [{"type": "ENERGY", "price": 0.50, "vat": 19.0, "step_size": 1}]},
        {"price_components": [{"type": "PARKING_TIME", "price": 6.00, "vat": 19.0,
                               "step_size": 60}]},
    ],
    "last_updated": "2026-01-01T00:00:00Z",
}


def closed_session(rig: Rig, session_id: str) -> dict:
    store = Store.open(rig.database, create=False)
    try:
        row = store.session(session_id)
        assert row is not None and row["closed_at"] is not None, row
        readings = [r for _, r in store.readings(session_id)]
        receipt = store.receipt(session_id)
        events = [m.payload for m in store.outbox() if m.session_id == session_id
                  and m.kind == "TransactionEvent"]
        return {"row": row, "readings": readings, "receipt": receipt, "events": events}
    finally:
        store.close()


def billed_wh(found: dict) -> Decimal:
    row = found["row"]
    return Decimal(row["meter_stop_wh"]) - Decimal(row["meter_start_wh"])


def start(rig: Rig, **extra: object) -> str:
    reply = rig.api("start", id_token="TOKEN-A", **extra)
    assert reply["ok"], reply
    return str(reply["session_id"])


def test_full_session_ev_full_idle_fee_unplug_and_receipt(tmp_path):
    with Rig(tmp_path / "rig", curve={"max_power_w": 100_000, "ramp_s": 10, "constant_s": 60,
                                      "taper_s": 60, "taper_end_power_w": 20_000}) as rig:
        tariff = tmp_path / "tariff.json"
        tariff.write_text(json.dumps(IDLE_TARIFF))
        rig.tariff_file = tariff
        rig.start_station()
        rig.start_daemon()
        session_id = start(rig)
        rig.wait_phase("Authorized")
        rig.ev("plug")
        rig.wait_phase("Charging", timeout_s=10)
        finishing = rig.wait_phase("Finishing", timeout_s=30)  # battery full, 30 s pause
        assert finishing["stop_reason"] == "StoppedByEV"
        assert rig.ev("status")["output_commanded"] is False
        idle_cost = rig.wait_for(
            "the idle fee to accrue",
            lambda: (c := rig.state()["cost"]) and Decimal(c["incl_vat"]) > Decimal("0") and c,
        )
        assert idle_cost
        rig.wait_for("3 min of idle time", lambda: rig.ev("status")["t_s"] > 400, 30)
        delivered = Decimal(str(rig.ev("unplug")["plugs"][-1]["delivered_wh"]))
        rig.wait_phase("Available")
        found = closed_session(rig, session_id)
    row = found["row"]
    assert (row["phase"], row["stop_reason"]) == ("Completed", "StoppedByEV")
    assert billed_wh(found) == int(delivered)  # the meter's integer Wh counter
    receipt_json, text = found["receipt"]
    lines = receipt_json["charges"] + receipt_json["fees"]
    dims = {line["dimension"] for line in lines}
    assert {"FLAT", "ENERGY", "PARKING_TIME"} <= dims, lines
    assert "The vehicle" in text or "vehicle" in text.lower()
    # the receipt is reproduced from the database, byte for byte
    assert bill_from_row(row, found["readings"]).receipt == (receipt_json, text)
    kinds = [e["event_type"] for e in found["events"]]
    assert kinds[0] == "Started" and kinds[-1] == "Ended" and "Updated" in kinds
    assert [e["seq_no"] for e in found["events"]] == list(range(len(kinds)))


@pytest.mark.rig(speed=20.0)
def test_cost_cap_stops_before_the_authorised_amount(rig):
    session_id = start(rig, cost_cap="3.00")
    rig.ev("plug")
    finishing = rig.wait_phase("Finishing", timeout_s=30)
    assert finishing["stop_reason"] == "CostLimitReached"
    rig.ev("unplug")
    rig.wait_phase("Available")
    found = closed_session(rig, session_id)
    total = Decimal(found["receipt"][0]["total"]["incl_vat"])
    assert Decimal("2.70") <= total <= Decimal("3.00"), total
    assert found["receipt"][0]["amount_charged"] == found["receipt"][0]["total"]["incl_vat"]


@pytest.mark.rig(speed=20.0)
def test_energy_cap(rig):
    session_id = start(rig, energy_cap_wh="2000")
    rig.ev("plug")
    assert rig.wait_phase("Finishing", timeout_s=30)["stop_reason"] == "EnergyLimitReached"
    rig.ev("unplug")
    rig.wait_phase("Available")
    billed = billed_wh(closed_session(rig, session_id))
    assert Decimal(1800) <= billed <= Decimal(2000), billed


def test_meter_fault_mid_session_ends_safely_with_the_last_good_reading(rig):
    session_id = start(rig)
    rig.ev("plug")
    rig.wait_phase("Charging")
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 500)
    rig.ev("fault", kind="no_reply")
    faulted = rig.wait_phase("Faulted", timeout_s=15)
    assert faulted["meter_fault"].startswith("communication")
    assert rig.ev("status")["output_commanded"] is False  # power off
    found = closed_session(rig, session_id)
    assert found["row"]["stop_reason"] == "MeterFault"
    assert Decimal(found["row"]["meter_stop_wh"]) == found["readings"][-1].energy_import_wh
    assert found["readings"][-1].timestamp.isoformat() == found["row"]["stopped_at"]
    assert found["receipt"] is not None
    rig.ev("clear")
    rig.ev("unplug")
    rig.wait_phase("Available", timeout_s=15)


@pytest.mark.parametrize(
    ("fault", "detail"),
    [("charger_error", "power stage fault"), ("contactor_welded", "still on")],
    ids=["charger-error", "welded-contactor"],
)
def test_charger_faults_end_the_session(rig, fault, detail):
    session_id = start(rig)
    rig.ev("plug")
    rig.wait_phase("Charging")
    rig.ev("fault", kind=fault)
    if fault == "contactor_welded":
        rig.api("stop", id_token="TOKEN-A")
    rig.wait_phase("Faulted", timeout_s=15)
    row = closed_session(rig, session_id)["row"]
    assert row["phase"] == "Faulted"
    assert row["stop_reason"] == ("ChargerFault" if fault == "charger_error" else "Local")
    assert detail in row["detail"].lower()


@pytest.mark.rig(session={"connection_timeout_s": 30})
def test_never_plugged_in_times_out(rig):
    session_id = start(rig)
    rig.wait_phase("Available", timeout_s=10)
    row = closed_session(rig, session_id)["row"]
    assert (row["stop_reason"], row["meter_start_wh"]) == ("Timeout", None)


@pytest.mark.rig(session={"ev_power_timeout_s": 30})
def test_ev_that_never_draws_power_times_out(rig):
    session_id = start(rig)
    rig.ev("plug")
    rig.ev("suspend")
    assert rig.wait_phase("Finishing", timeout_s=10)["stop_reason"] == "Timeout"
    rig.ev("unplug")
    rig.wait_phase("Available")
    assert billed_wh(closed_session(rig, session_id)) == 0


@pytest.mark.parametrize("reason", ["Remote", "Technician"])
def test_remote_and_technician_stops(rig, reason):
    session_id = start(rig)
    rig.ev("plug")
    rig.wait_phase("Charging")
    assert rig.api("stop", reason=reason)["ok"]
    rig.ev("unplug")
    rig.wait_phase("Available")
    assert closed_session(rig, session_id)["row"]["stop_reason"] == reason


def test_unplugged_while_charging(rig):
    session_id = start(rig)
    rig.ev("plug")
    rig.wait_phase("Charging")
    delivered = Decimal(str(rig.ev("unplug")["plugs"][-1]["delivered_wh"]))
    rig.wait_phase("Available")
    found = closed_session(rig, session_id)
    assert found["row"]["stop_reason"] == "EVDisconnected"
    assert billed_wh(found) == int(delivered)


def test_another_card_cannot_stop_and_bad_requests_change_nothing(rig):
    start(rig)
    rig.ev("plug")
    rig.wait_phase("Charging")
    other = rig.api("stop", id_token="SOMEONE-ELSE")
    assert (other["ok"], other["error"]) == (False, "this is not the card that started the session")
    for bad in ({"op": "start", "id_token": ""}, {"op": "start", "id_token": "X", "cost_cap": "-1"},
                {"op": "stop", "reason": "Because"}, {"op": "nonsense"}):
        reply = rig.api(**bad)
        assert reply["ok"] is False and reply["error"], reply
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(rig.socket_path)
        sock.sendall(b"{not json\n")
        assert b"not a JSON object" in sock.recv(4096)
    assert rig.state()["phase"] == "Charging"


def test_corrupt_database_refuses_to_start_and_is_kept(tmp_path):
    with Rig(tmp_path / "rig") as rig:
        rig.start_station()
        rig.start_daemon()
        rig.stop_daemon()
        conn = sqlite3.connect(rig.database)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        raw = rig.database.read_bytes()
        damaged = raw[: len(raw) // 2]
        rig.database.write_bytes(damaged)
        with pytest.raises(Exception, match="exited with 3"):
            rig.start_daemon(timeout_s=10)
        assert rig.database.read_bytes() == damaged
        assert "refusing to start" in rig.daemon_log.read_text()


def test_session_cli_drives_the_daemon_end_to_end(rig):
    import subprocess
    import sys

    def evterm(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "terminal.cli", "session", "--socket",
                               rig.socket_path, *args], capture_output=True, text=True,
                              timeout=30)

    started = evterm("start", "--id-token", "CLI-CARD", "--cost-cap", "20.00")
    assert started.returncode == 0, started.stderr
    session_id = json.loads(started.stdout)["session_id"]
    busy = evterm("start", "--id-token", "OTHER")
    assert busy.returncode == 1 and "already" in busy.stderr
    rig.ev("plug")
    rig.wait_phase("Charging")
    status = json.loads(evterm("status", "--json").stdout)["state"]
    assert status["session_id"] == session_id and status["cost_cap"] == "20.00"
    assert evterm("stop", "--id-token", "CLI-CARD").returncode == 0
    rig.ev("unplug")
    rig.wait_phase("Available")
    text = evterm("receipt").stdout
    assert session_id in text.replace("\n", "").replace(" ", "")
    german = evterm("receipt", session_id, "--language", "de").stdout
    assert "kWh" in german and "," in german
    listed = json.loads(evterm("list", "--json").stdout)["sessions"]
    assert listed[0]["id"] == session_id and listed[0]["stop_reason"] == "Local"
    gone = subprocess.run([sys.executable, "-m", "terminal.cli", "session", "--socket",
                           "/nonexistent/evterm.sock", "status"], capture_output=True,
                          text=True, timeout=30)
    assert gone.returncode == 2 and "cannot reach the daemon" in gone.stderr
