"""The end-of-day closing on the ZVT path, end to end: the daemon (`[payment] terminal =
zvt`) against `evterm sim zvt`, the MQTT backend simulator (`evterm sim backend` on a
mosquitto: the Z-report is an outbox event, which only the MQTT link delivers) and a
private pcscd (the technician's card), each its own process. Two card sessions are paid
at the terminal (Visa, Mastercard); a technician logs in (card + PIN) and runs `evterm
service closing --json`: the terminal's End-of-day totals per card group equal the
journal's bookings, nothing is found, and the Z-report reaches the backend. Then a
booking nobody asked for is planted at the simulator (its control socket): the next
closing finds that card group's totals mismatched, lists it for the operator, and that
Z-report reaches the backend too; a reservation planted beside it stays unseen (the
End-of-day has totals of bookings only)."""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.backend_process import BackendMqttProcess
from hw_mocks.mosquitto import Broker
from hw_mocks.pcscd import PcscdHandle
from hw_mocks.station_sim import control
from terminal import cli
from terminal.payment.reconcile import zvt_group
from terminal.service.pins import hash_pin
from tests.integration.zvt_rig import ZvtRig, zvt_rig

TECH = "04AABBCCDDEEFF"
PIN = "802514"


@pytest.fixture
def mqtt_sim(broker: Broker, backend_sim: Callable[..., BackendMqttProcess]
             ) -> BackendMqttProcess:
    return backend_sim(broker)


@pytest.fixture
def zvt(pcscd: PcscdHandle, broker: Broker, mqtt_sim: BackendMqttProcess
        ) -> Iterator[ZvtRig]:
    folder = Path(tempfile.mkdtemp(prefix="evzcl-"))  # short: socket paths < 108 bytes
    pins = folder / "pins.json"
    pins.write_text(json.dumps({"technicians": {TECH: hash_pin(PIN)}}))
    with zvt_rig(folder, readers={"pcsc": True, "pcsc_socket": pcscd.socket_path},
                 auth={"technician_ids": TECH},
                 service={"pins_file": str(pins), "pin_window_s": 600,
                          "idle_logout_s": 3600},
                 backend={"kind": "mqtt", "mqtt_host": broker.host,
                          "mqtt_port": broker.port,
                          "operator_key_file": str(mqtt_sim.operator_public),
                          "reconnect_max_s": 1}) as rig:
        yield rig
    shutil.rmtree(folder, ignore_errors=True)


def pay_one_session(zvt: ZvtRig, card: str) -> None:
    rig = zvt.rig
    rig.ev("plug")
    accepted = zvt.present(card)
    assert accepted["result"] == "accepted", accepted
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("some energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1000)
    assert zvt.present(card)["result"] == "stopping"
    rig.wait_phase("Finishing")
    rig.ev("unplug")
    rig.wait_phase("Available")
    zvt.wait_settled(accepted["session_id"], "captured")


def service(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
            zvt: ZvtRig, token_file: Path, *args: str, pin: str = "") -> str:
    """`evterm service ...` in this process; its output (exit code 0 asserted)."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(pin + "\n"))
    capsys.readouterr()
    code = cli.main(["service", "--socket", zvt.rig.socket_path, "--token-file",
                     str(token_file), *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def z_reports_received(sim: BackendMqttProcess) -> dict[str, dict[str, Any]]:
    """The Z-reports the backend simulator received and accepted, by closing id."""
    view = sim.admin("events", kind="z_report")
    assert view["rejected"] == [], view["rejected"]
    return {e["idempotency_key"].removeprefix("z-report:"): e["payload"]
            for e in view["events"]}


def test_the_zvt_closing_matches_the_bookings_and_finds_a_planted_one(
        zvt: ZvtRig, mqtt_sim: BackendMqttProcess, tap: Any, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    rig = zvt.rig
    pay_one_session(zvt, "visa")
    pay_one_session(zvt, "mastercard")

    events = zvt.subscribe()
    mark = events.mark()
    rig.wait_reader()
    tap(f"rfid:{TECH}", hold_s=0.6).wait_left()
    assert events.tap(mark)["reason"] == "technician"
    token_file = rig.database.parent / "token"
    out = service(capsys, monkeypatch, zvt, token_file, "login", "--pin-stdin", pin=PIN)
    assert "logged in" in out

    report = json.loads(service(capsys, monkeypatch, zvt, token_file, "closing", "--json"))
    assert (report["source"], report["status"], report["trigger"]) == ("zvt", "done",
                                                                       "service")
    booked: dict[str, list[Decimal]] = {}
    for p in zvt.payments():
        assert p.status.value == "captured" and p.amount_captured is not None
        booked.setdefault(zvt_group(p.scheme), []).append(p.amount_captured)
    assert sorted(booked) == ["Eurocard", "Visa"]
    ledger = {t["scheme"]: (t["count"], Decimal(t["amount"]))
              for t in report["ledger"]["totals"]}
    assert ledger == {g: (len(a), sum(a, Decimal(0))) for g, a in booked.items()}
    journal = {s["scheme"]: (s["captured"]["count"], Decimal(s["captured"]["amount"]))
               for s in report["schemes"]}
    assert journal == ledger
    assert report["findings"] == [] and report["remaining"] == []
    assert zvt.sim_state()["batch"] == {}  # the End-of-day closed the terminal's batch

    zvt.control("plant", what="booking", card="mastercard", amount="4.20")
    # a reservation left open: End-of-day totals cannot show it (docs/reconciliation.md)
    zvt.control("plant", what="reservation", card="visa", amount="30.00")
    refused = control(zvt.control_path, {"cmd": "plant", "what": "refund", "amount": "1"})
    assert refused == {"ok": False, "error": "what: 'refund' is not booking or reservation"}
    time.sleep(0.01)  # the next closing's id is the next millisecond's
    second = json.loads(service(capsys, monkeypatch, zvt, token_file, "closing", "--json"))
    assert second["period_start"] == report["period_end"]
    [finding] = second["findings"]
    assert (finding["kind"], finding["scheme"], finding["ledger_count"],
            finding["ledger_amount"], finding["journal_count"]) == (
        "scheme_totals", "Eurocard", 1, "4.20", 0)
    assert [r["kind"] for r in second["remaining"]] == ["scheme_totals"]
    assert [r["amount_minor"] for r in zvt.sim_state()["reservations"].values()] == [3000]
    assert "scheme_totals" in service(capsys, monkeypatch, zvt, token_file, "z-report")

    received = rig.wait_for("both Z-reports at the backend", lambda: (
        r := z_reports_received(mqtt_sim)) and len(r) == 2 and r, timeout_s=20)
    assert received[report["closing_id"]]["findings"] == []
    assert received[second["closing_id"]]["findings"] == second["findings"]
