"""Sessions on a signing DC meter (Eichrecht), end to end: `evterm sim station` serving
the LEM DCBM 400/600 HTTP API and `evterm daemon` as real processes. The signed begin
comes before the output goes on, the billed energy is the signed end minus the signed
begin exactly, every document is journaled and verifies independently with pyocmf,
and faults make a session not billable by energy, never billed from our own values."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pyocmf
import pytest

from hw_mocks.rig import REPO, Rig
from terminal.cdr import loads
from terminal.store import Store

pytestmark = pytest.mark.rig(meter_model="lem_dcbm400600", speed=20.0)


def journal(rig: Rig, session_id: str) -> dict:
    store = Store.open(rig.database, create=False)
    try:
        row = store.session(session_id)
        assert row is not None and row["closed_at"] is not None, row
        return {
            "row": row,
            "signed": store.signed_values(session_id),
            "receipt": store.receipt(session_id),
            "cdr": loads(text) if (text := store.cdr(session_id)) else None,
            "events": [m.payload for m in store.outbox() if m.session_id == session_id
                       and m.kind == "TransactionEvent"],
            "audit": [m.payload for m in store.outbox() if m.kind == "Audit"],
            "readings": [(k, r) for k, r in store.readings(session_id)],
        }
    finally:
        store.close()


def charge_and_stop(rig: Rig, seconds: float = 40) -> str:
    reply = rig.api("start", id_token="04A1B2C3D4")
    assert reply["ok"], reply
    session_id = str(reply["session_id"])
    rig.wait_phase("Authorized")
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=15)
    rig.wait_for("energy to flow", lambda: rig.ev("status")["t_s"] > seconds, 30)
    assert rig.api("stop", session_id=session_id)["ok"]
    rig.wait_phase("Finishing", timeout_s=15)
    assert not has_signed_end(rig, session_id)  # the transaction runs until the unplug
    rig.ev("unplug")
    rig.wait_for("the signed end", lambda: has_signed_end(rig, session_id), 15)
    rig.wait_phase("Available", timeout_s=15)
    return session_id


def charge_and_kill(rig: Rig, until_t_s: float) -> str:
    """A session killed (SIGKILL) while charging, the daemon started again: its meter
    transaction ends from the recovery; then the unplug."""
    reply = rig.api("start", id_token="04A1B2C3D4")
    session_id = str(reply["session_id"])
    rig.wait_phase("Authorized")
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=15)
    rig.wait_for("energy to flow", lambda: rig.ev("status")["t_s"] > until_t_s, 30)
    rig.kill_daemon()
    rig.start_daemon()
    rig.wait_for("the signed end", lambda: has_signed_end(rig, session_id), 20)
    rig.ev("unplug")
    rig.wait_phase("Available", timeout_s=15)
    return session_id


def has_signed_end(rig: Rig, session_id: str) -> bool:
    store = Store.open(rig.database, create=False)
    try:
        return any(r["kind"] == "end" for r in store.signed_values(session_id))
    finally:
        store.close()


def verify_with_pyocmf(rows: list[dict]) -> None:
    """Every document verifies with the meter's key; the end holds the whole
    transaction and passes pyocmf's Eichrecht checks."""
    for row in rows:
        doc = pyocmf.OCMF.from_string(row["ocmf"])
        assert doc.verify_signature(row["public_key"]), row["kind"]
    end = next(r for r in rows if r["kind"] == "end")
    issues = pyocmf.OCMF.from_string(end["ocmf"]).check_eichrecht(errors_only=True)
    assert not issues, issues


def test_a_signed_session_is_billed_from_the_signed_begin_and_end_exactly(rig: Rig):
    metering = rig.state()["metering"]
    assert metering["signed"] and metering["public_key"] and metering["meter_serial"]
    session_id = charge_and_stop(rig)
    found = journal(rig, session_id)
    signed = found["signed"]
    assert [r["kind"] for r in signed] == ["begin", "end"]
    assert all(r["problems"] == [] for r in signed), signed
    assert [r["pagination"] for r in signed] == [
        signed[0]["pagination"], f"T{int(signed[0]['pagination'][1:]) + 1}"]
    verify_with_pyocmf(signed)
    row = found["row"]
    begin_wh, end_wh = (Decimal(r["energy_wh"]) for r in signed)
    assert Decimal(row["meter_start_wh"]) == begin_wh
    assert Decimal(row["meter_stop_wh"]) == end_wh
    assert end_wh > begin_wh
    # the begin was journaled before the output went on: the start reading is the
    # signed value, and nothing before it was billed
    kinds = [k for k, _ in found["readings"]]
    assert kinds[0] == "start" and kinds[-1] == "stop"
    receipt_json, text = found["receipt"]
    assert Decimal(receipt_json["energy_wh"]) == end_wh - begin_wh
    block = receipt_json["signed_meter"]
    assert block["billable_by_energy"] and block["public_key"] == signed[0]["public_key"]
    assert Decimal(block["start_wh"]) == begin_wh and Decimal(block["end_wh"]) == end_wh
    assert any(c["dimension"] == "ENERGY" for c in receipt_json["charges"])
    # its OCPI CDR carries the signed begin and end as the meter signed them
    cdr = found["cdr"]
    assert cdr is not None and cdr["signed_data"]["encoding_method"] == "OCMF"
    assert base64.b64decode(cdr["signed_data"]["public_key"]).hex() == signed[0][
        "public_key"].lower()
    assert [(v["nature"], base64.b64decode(v["signed_data"]).decode())
            for v in cdr["signed_data"]["signed_values"]] \
        == [("Start", signed[0]["ocmf"]), ("End", signed[1]["ocmf"])]
    assert all(len(v["plain_data"]) <= 512 for v in cdr["signed_data"]["signed_values"])
    assert cdr["total_energy"] == (end_wh - begin_wh) / 1000
    assert cdr["total_cost"]["incl_vat"] == Decimal(receipt_json["amount_charged"])
    assert "".join(text.split()).find(signed[0]["public_key"][:40]) >= 0
    events = found["events"]
    started = next(e for e in events if e["event_type"] == "Started")
    ended = next(e for e in events if e["event_type"] == "Ended")
    for event, row_ in ((started, signed[0]), (ended, signed[1])):
        value = event["signed_meter_value"]
        assert value["signedMeterData"] == row_["ocmf"]
        assert value["encodingMethod"] == "OCMF" and value["publicKey"] == row_["public_key"]
        assert value["signingMethod"].startswith("ECDSA-")
    # the driver's QR verifies with `evterm ocmf verify`, the technicians' tool
    check = subprocess.run([sys.executable, "-m", "terminal.cli", "ocmf", "verify",
                            block["qr"]], capture_output=True, text=True, cwd=REPO,
                           timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.parametrize("when", ["begin", "end"])
def test_a_bad_signature_is_never_billed_by_energy(rig: Rig, when: str):
    if when == "begin":
        rig.ev("fault", kind="bad_signature")
        reply = rig.api("start", id_token="04A1B2C3D4")
        session_id = str(reply["session_id"])
        rig.ev("plug")
        rig.wait_for("the session to end", lambda: rig.state()["phase"] in
                     ("Completed", "Available"), 20)
        assert rig.ev("status")["output_commanded"] is False
        found = journal(rig, session_id)
        assert found["row"]["meter_start_wh"] is None and found["receipt"] is None
        assert "did not sign the start" in found["row"]["detail"]
        assert any(a["kind"] == "signed_meter_begin_failed" for a in found["audit"])
        # the aborted transaction's end is journaled too: storage without gaps
        assert [r["kind"] for r in found["signed"]] == ["begin", "late_end"]
        return
    reply = rig.api("start", id_token="04A1B2C3D4")
    session_id = str(reply["session_id"])
    rig.wait_phase("Authorized")
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=15)
    rig.wait_for("energy to flow", lambda: rig.ev("status")["t_s"] > 30, 30)
    rig.ev("fault", kind="bad_signature")
    assert rig.api("stop", session_id=session_id)["ok"]
    rig.wait_phase("Finishing", timeout_s=15)
    rig.ev("unplug")
    rig.wait_for("the signed end", lambda: has_signed_end(rig, session_id), 15)
    rig.wait_phase("Available", timeout_s=15)
    found = journal(rig, session_id)
    end = next(r for r in found["signed"] if r["kind"] == "end")
    assert any("signature" in p for p in end["problems"]), end
    receipt_json, text = found["receipt"]
    assert receipt_json["signed_meter"]["billable_by_energy"] is False
    assert not any(c["dimension"] == "ENERGY" for c in receipt_json["charges"])
    assert "Energy not billed" in " ".join(text.split())
    assert any(a["kind"] == "signed_meter_value_invalid" for a in found["audit"])


def test_a_kill_mid_session_ends_the_meters_transaction_and_bills_signed_values(rig: Rig):
    session_id = charge_and_kill(rig, 30)
    found = journal(rig, session_id)
    assert found["row"]["stop_reason"] == "PowerLoss"
    signed = found["signed"]
    assert [r["kind"] for r in signed] == ["begin", "end"] and not signed[1]["problems"]
    verify_with_pyocmf(signed)
    assert Decimal(found["row"]["meter_stop_wh"]) - Decimal(found["row"]["meter_start_wh"]) \
        == Decimal(signed[1]["energy_wh"]) - Decimal(signed[0]["energy_wh"])
    assert found["receipt"] is not None


@pytest.mark.parametrize("clock", ["meter", "terminal"])
def test_a_clock_not_synchronised_bills_no_time_based_charges(tmp_path: Path, clock: str):
    """The meter's clock only informative (time status I; LEM refuses to start at all
    with an unsynchronised one), or the terminal's clock not NTP-synchronised."""
    tariff = tmp_path / "tariff.json"
    tariff.write_text(json.dumps({
        "country_code": "DE", "party_id": "EVT", "id": "TIME", "currency": "EUR",
        "elements": [{"price_components": [
            {"type": "ENERGY", "price": 0.50, "vat": 19.0, "step_size": 1},
            {"type": "TIME", "price": 6.00, "vat": 19.0, "step_size": 60}]}],
        "last_updated": "2026-01-01T00:00:00Z"}))
    with Rig(tmp_path / "rig", meter_model="lem_dcbm400600", speed=20.0,
             tariff_file=tariff, clock_synced=clock != "terminal") as rig:
        rig.start_station()
        rig.start_daemon()
        if clock == "meter":
            rig.ev("fault", kind="clock_informative")
        session_id = charge_and_stop(rig)
        found = journal(rig, session_id)
    receipt_json, text = found["receipt"]
    assert receipt_json["signed_meter"]["time_billed"] is False
    dims = {c["dimension"] for c in receipt_json["charges"]}
    assert dims == {"ENERGY"}
    assert "time-based charges not billed" in " ".join(text.split())


def test_the_isabellenhuette_meter_end_to_end_with_a_kill(tmp_path: Path):
    """The second signing DC meter: a whole session, then one killed mid-charge (the
    IEM-DCR keeps no transaction id of ours: its held transaction is ended all the same)."""
    with Rig(tmp_path / "rig", meter_model="isabellenhuette_iem_dcr", speed=20.0) as rig:
        rig.start_station()
        rig.start_daemon()
        assert rig.state()["metering"]["public_key"]
        first = charge_and_stop(rig)
        second = charge_and_kill(rig, 120)
        found = [journal(rig, first), journal(rig, second)]
    for session in found:
        signed = session["signed"]
        assert [r["kind"] for r in signed] == ["begin", "end"], signed
        assert not any(r["problems"] for r in signed), signed
        verify_with_pyocmf(signed)
        row = session["row"]
        assert Decimal(row["meter_stop_wh"]) - Decimal(row["meter_start_wh"]) == \
            Decimal(signed[1]["energy_wh"]) - Decimal(signed[0]["energy_wh"]) > 0
        assert session["receipt"] is not None
    assert found[1]["row"]["stop_reason"] == "PowerLoss"
