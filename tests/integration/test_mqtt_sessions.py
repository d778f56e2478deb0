"""The terminal and its backend over a real mosquitto: `evterm daemon` with the MQTT link,
`evterm sim station`, and `evterm sim backend` (CSMS + payment gateway) as processes.
Sessions, receipts and audit events arrive exactly once in effect through broker
outages and a daemon killed before the broker's acknowledgement; remote commands,
signed tariffs, card payments and refunds work through the broker with TLS; a flood of
hostile downlink messages changes nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.backend_process import BackendMqttProcess
from hw_mocks.mosquitto import Broker
from hw_mocks.pki import make_pki
from hw_mocks.rig import Rig, RigError, Subscriber
from terminal.backend import protocol
from terminal.store import Store

STATION = "DE*EVT*E0001*1"  # the rig's station id: the client certificate's CN


def mqtt_section(broker: Broker, sim: BackendMqttProcess, **extra: object) -> dict[str, object]:
    return {"kind": "mqtt", "mqtt_host": broker.host, "mqtt_port": broker.port,
            "operator_key_file": str(sim.operator_public), "request_timeout_s": 2.0,
            "reconnect_max_s": 1, **extra}


def outbox(rig: Rig) -> list[Any]:
    store = Store.open(rig.database, create=False)
    try:
        return store.outbox()
    finally:
        store.close()


def all_delivered(rig: Rig, sim: BackendMqttProcess, timeout_s: float = 30.0) -> dict[str, Any]:
    """Wait until every outbox message is marked delivered and known to the simulator;
    the simulator's view of the events."""
    def done() -> dict[str, Any] | None:
        messages = outbox(rig)
        if any(m.delivered_at is None for m in messages):
            return None
        view = sim.admin("events", station_id=STATION)
        keys = {e["idempotency_key"] for e in view["events"]}
        return view if {m.idempotency_key for m in messages} <= keys else None

    try:
        return dict(rig.wait_for("every outbox message delivered", done, timeout_s))
    except RigError:
        messages = outbox(rig)
        known = {e["idempotency_key"] for e in sim.admin("events")["events"]}
        pending = [m.idempotency_key for m in messages if m.delivered_at is None]
        missing = [m.idempotency_key for m in messages if m.idempotency_key not in known]
        raise AssertionError(f"pending at the terminal: {pending}; missing at the backend: "
                             f"{missing}; backend log: {sim.log_text()[-4000:]}") from None


def session(rig: Rig, token: str, energy_wh: int = 1500) -> str:
    reply = rig.api("start", id_token=token)
    assert reply["ok"], reply
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=10)
    rig.wait_for("energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > energy_wh)
    rig.api("stop", reason="Local")
    rig.wait_phase("Finishing")
    rig.ev("unplug")
    rig.wait_phase("Available")
    return str(reply["session_id"])


def assert_exactly_once_in_order(rig: Rig, view: dict[str, Any]) -> None:
    assert view["order_violations"] == []
    by_key = {e["idempotency_key"]: e for e in view["events"]}
    for message in outbox(rig):
        event = by_key[message.idempotency_key]
        assert event["kind"] == message.kind and event["payload"] == message.payload
    for session_id, seqs in view["sessions"].items():
        assert seqs == sorted(set(seqs)), (session_id, seqs)  # each once, in order
        assert seqs == list(range(len(seqs))), (session_id, seqs)  # none missing


@pytest.fixture
def durable_broker(tmp_path: Path) -> Iterator[Broker]:
    """Like a production broker: sessions and queued messages survive its restart, so
    the backend's subscription gets what stations sent while it reconnects."""
    broker = Broker(tmp_path / "broker", persistent=True).start()
    yield broker
    broker.stop()


@pytest.fixture
def mqtt_rig(tmp_path: Path, durable_broker: Broker, backend_sim) -> Iterator[tuple[Rig, Any]]:
    broker = durable_broker
    sim = backend_sim(broker)
    folder = Path(tempfile.mkdtemp(prefix="evmq-"))
    rig = Rig(folder / "rig", speed=30.0, extra={"backend": mqtt_section(broker, sim)})
    try:
        rig.start_station()
        rig.start_daemon()
        rig.wait_for("the backend link", lambda: rig.state()["backend_online"], 10)
        yield rig, sim
    finally:
        rig.close()
        shutil.rmtree(folder, ignore_errors=True)


def test_sessions_reach_the_backend_exactly_once_through_broker_outages(mqtt_rig,
                                                                      durable_broker):
    broker = durable_broker
    rig, sim = mqtt_rig
    first = session(rig, "TOKEN-A")
    broker.stop()  # between sessions and during one
    rig.wait_for("the link down", lambda: rig.state()["backend_online"] is False, 15)
    second = session(rig, "TOKEN-B")
    reply = rig.api("start", id_token="TOKEN-C")
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=10)
    assert any(m.delivered_at is None for m in outbox(rig))  # queued on disk meanwhile
    broker.start()
    rig.wait_for("energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1500)
    rig.api("stop", reason="Local")
    rig.ev("unplug")
    rig.wait_phase("Available")
    view = all_delivered(rig, sim)
    assert_exactly_once_in_order(rig, view)
    sessions = {e["session_id"] for e in view["events"] if e["session_id"]}
    assert {first, second, reply["session_id"]} <= sessions
    kinds = {(e["session_id"], e["kind"]) for e in view["events"]}
    for session_id in (first, second, reply["session_id"]):
        assert (session_id, "Receipt") in kinds
    # what happened while the broker was away says so
    def tx_events(session_id: str) -> list[dict[str, Any]]:
        return [e for e in view["events"] if e["session_id"] == session_id
                and e["kind"] == "TransactionEvent"]

    assert tx_events(second) and all(e["offline"] for e in tx_events(second))
    assert tx_events(first) and not any(e["offline"] for e in tx_events(first))


def test_a_daemon_killed_before_the_broker_acknowledged_sends_again_and_is_deduplicated(
        mqtt_rig, durable_broker):
    broker = durable_broker
    rig, sim = mqtt_rig
    assert broker.proc is not None
    os.kill(broker.proc.pid, signal.SIGSTOP)  # the broker takes the bytes, answers nothing
    try:
        reply = rig.api("start", id_token="TOKEN-K")
        rig.ev("plug")
        rig.wait_phase("Charging", timeout_s=10)
        rig.wait_for("a meter value queued", lambda: len(outbox(rig)) >= 2, 20)
        time.sleep(0.5)  # published to the frozen broker, no PUBACK
        rig.kill_daemon()
        assert all(m.delivered_at is None for m in outbox(rig))
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
    rig.start_daemon()
    rig.api("stop", reason="Local")
    rig.ev("unplug")
    rig.wait_phase("Available")
    view = all_delivered(rig, sim)
    assert view["duplicates"] >= 1  # sent before the kill and again after: dropped once
    assert_exactly_once_in_order(rig, view)
    assert reply["session_id"] in view["sessions"]


def test_hostile_downlink_changes_nothing_and_the_daemon_keeps_running(mqtt_rig):
    rig, sim = mqtt_rig
    topic = protocol.down(STATION, "command")
    reply_to = protocol.up(STATION, "response")
    junk = [
        "", "null", "[]", '{"schema_version": 1}', '{"schema_version": 2, "name": "remote_stop"}',
        '{"schema_version": 1, "name": "format_disk", "body": {}}',
        '{"schema_version": 1, "name": "remote_start", "body": {"id_token": 7}}',
        '{"schema_version": 1, "name": "remote_start", "body": {"id_token": "A", '
        '"cost_cap": "-5"}}',
        '{"schema_version": 1, "name": "tariff_update", "body": {"tariff": {}, '
        '"signature": "AAAA"}}',
        '{"schema_version": 1, "name": "tariff_update", "body": {"tariff": {"id": "X"}}}',
        '{"schema_version": 1, "name": "refund", "body": {"amount": "1e9"}}',
        "{" * 5000, "x" * 300_000,
    ]
    sent = 0
    for round_ in range(80):
        for index, payload in enumerate(junk):
            with_reply = (round_ + index) % 2 == 0
            sim.admin("send_raw", topic=topic, payload=payload,
                      **({"response_topic": reply_to, "correlation": f"j{sent}"}
                         if with_reply else {}))
            sent += 1
    assert sent >= 1000
    sim.admin("send_raw", topic=protocol.down(STATION, "response"), payload="{]", repeat=50)
    # the daemon is alive, answers, and nothing changed
    rig.wait_for("answers to the junk that asked for one", lambda: len(
        sim.admin("responses")["responses"]) >= 400, 30)
    answers = sim.admin("responses")["responses"]
    assert all(a["answer"].get("ok") is False for a in answers)
    assert all(a["answer"].get("field") or a["answer"].get("error") for a in answers)
    state = rig.state()
    assert state["phase"] == "Available" and state["session_id"] is None
    assert rig.daemon is not None and rig.daemon.poll() is None
    store = Store.open(rig.database, create=False)
    try:
        assert store.audit() == [] and store.sessions(5) == []
    finally:
        store.close()
    assert json.dumps(rig.state())  # still answering the local API
    log = rig.daemon_log.read_text(encoding="utf-8")
    assert "downlink malformed" in log or "command refused" in log


# ---- TLS: remote commands, signed tariffs, card payment and refund -------------------------


def test_remote_commands_tariffs_payment_and_refund_over_tls(tmp_path, pcscd, tap, backend_sim):
    pki = make_pki(tmp_path / "pki", (STATION,))
    broker = Broker(tmp_path / "broker", tls=pki, stations=(STATION,)).start()
    folder = Path(tempfile.mkdtemp(prefix="evtls-"))
    try:
        sim = backend_sim(broker, [{"id_token": "04A1B2C3D4E5F6", "status": "Accepted"}])
        token_key = folder / "token.key"
        token_key.write_text(os.urandom(32).hex())
        client = pki.client(STATION)
        rig = Rig(folder / "rig", speed=30.0, extra={
            "backend": mqtt_section(broker, sim, mqtt_tls=True, ca_file=str(pki.ca_cert),
                                    cert_file=str(client.cert), key_file=str(client.key)),
            "readers": {"pcsc": True, "pcsc_socket": pcscd.socket_path},
            "payment": {"token_key_file": str(token_key),
                        "gateway_key_file": str(sim.gateway_public)},
        })
        with rig:
            rig.start_station()
            rig.start_daemon()
            rig.wait_for("the TLS link", lambda: rig.state()["backend_online"], 15)
            events = Subscriber(rig.socket_path)

            def command(name: str, **values: Any) -> dict[str, Any]:
                reply = sim.admin("command", station_id=STATION, name=name, **values)
                assert reply["answer"] is not None, reply
                return dict(reply["answer"])

            # remote start and stop for the app
            started = command("remote_start", body={"id_token": "APP-77", "cost_cap": "9.00"})
            assert started["ok"], started
            rig.ev("plug")
            rig.wait_phase("Charging", timeout_s=10)
            stopped = command("remote_stop", body={"session_id": started["body"]["session_id"]})
            assert stopped["ok"], stopped
            assert rig.wait_phase("Finishing")["stop_reason"] == "Remote"
            rig.ev("unplug")
            rig.wait_phase("Available")

            # tariffs: signed is applied, unsigned or forged is refused naming the signature
            tariff = json.loads(Path(rig.tariff_file).read_text())
            tariff["id"] = "PUSHED-TLS"
            assert command("tariff_update", body={"tariff": tariff})["ok"]
            forged = command("tariff_update", body={"tariff": {**tariff, "id": "EVIL"}},
                             signature="AAAA")
            assert (forged["ok"], forged["field"]) == (False, "signature"), forged
            unsigned = command("tariff_update", body={"tariff": tariff}, sign=False)
            assert (unsigned["ok"], unsigned["field"]) == (False, "signature"), unsigned
            assert command("local_list")["ok"]

            # a card payment through the broker: pre-authorise, capture, refund
            rig.ev("plug")
            mark = events.mark()
            tap("visa", hold_s=0.6).wait_left()
            accepted = events.tap(mark)
            assert accepted["result"] == "accepted" and accepted["cost_cap"] == "50.00"
            rig.wait_phase("Charging", timeout_s=10)
            rig.wait_for("energy", lambda: Decimal(rig.state()["energy_wh"] or 0) > 1500)
            time.sleep(0.5)
            mark = events.mark()
            tap("visa", hold_s=0.6).wait_left()
            assert events.tap(mark)["result"] == "stopping"
            rig.wait_phase("Finishing")
            rig.ev("unplug")
            rig.wait_phase("Available")
            session_id = accepted["session_id"]
            receipt = rig.api("receipt", session_id=session_id)["receipt"]
            assert receipt["tariff_id"] == "PUSHED-TLS"

            def captured() -> dict[str, Any] | None:
                found = [p for p in sim.admin("ledger")["payments"]
                         if p["reference"] == f"{session_id}:pay"]
                return found[0] if found and found[0]["captured"] else None

            payment = rig.wait_for("the capture", captured, 20)
            assert Decimal(payment["captured"]) == Decimal(receipt["amount_charged"])
            refund = sim.admin("refund", psp_reference=payment["psp_reference"], amount="0.50",
                               station_id=STATION)
            assert refund["answer"]["ok"], refund
            shown = rig.api("receipt", session_id=session_id)["receipt"]
            assert shown["amount_refunded"] == "0.50"
            events.close()
            # the audit trail of the commands reached the backend too, once each
            view = all_delivered(rig, sim)
            audits = [e["payload"]["kind"] for e in view["events"] if e["kind"] == "Audit"]
            assert audits == ["remote_start", "remote_stop", "tariff_update", "local_list"]
            assert_exactly_once_in_order(rig, view)
            # the refund corrected the card session's CDR: a Credit CDR and a new one
            cdrs = [e["payload"]["cdr"] for e in view["events"]
                    if e["kind"] == "cdr" and e["session_id"] == session_id]
            assert [c.get("credit", False) for c in cdrs] == [False, True, False]
            assert cdrs[1]["credit_reference_id"] == cdrs[0]["id"] == session_id
            assert Decimal(str(cdrs[2]["total_cost"]["incl_vat"])) == Decimal(
                receipt["amount_charged"]) - Decimal("0.50")
            assert view["cdr_violations"] == []
    except RigError:
        raise
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_a_station_with_a_wrong_certificate_gets_no_link(tmp_path, backend_sim):
    pki = make_pki(tmp_path / "pki", (STATION,))
    broker = Broker(tmp_path / "broker", tls=pki, stations=(STATION,)).start()
    folder = Path(tempfile.mkdtemp(prefix="evrog-"))
    try:
        sim = backend_sim(broker)
        rogue = pki.client("rogue")
        with Rig(folder / "rig", speed=30.0, extra={"backend": mqtt_section(
                broker, sim, mqtt_tls=True, ca_file=str(pki.ca_cert), cert_file=str(rogue.cert),
                key_file=str(rogue.key))}) as rig:
            rig.start_station()
            rig.start_daemon()
            time.sleep(2)
            assert rig.state()["backend_online"] is False
            assert sim.admin("status")["stations"] == {}
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)


def test_low_storage_stops_new_sessions_and_says_so(tmp_path, broker, backend_sim):
    sim = backend_sim(broker)
    folder = Path(tempfile.mkdtemp(prefix="evlow-"))
    free_mb = shutil.disk_usage(tempfile.gettempdir()).free / 1_048_576
    assert free_mb < 1_000_000, "this test needs a disk with less than 1 TB free"
    try:
        with Rig(folder / "rig", speed=30.0, extra={"backend": mqtt_section(
                broker, sim, min_free_storage_mb=1_000_000)}) as rig:
            rig.start_station()
            rig.start_daemon()
            rig.wait_for("the backend link", lambda: rig.state()["backend_online"], 10)
            refused = rig.api("start", id_token="TOKEN-S")
            assert not refused["ok"] and "storage" in refused["error"], refused
            assert rig.state()["phase"] == "Available"
            status = rig.wait_for("the station's status", lambda: sim.admin("status")[
                "stations"].get(STATION), 10)
            assert status["status"]["accepting_sessions"] is False
            answer = sim.admin("command", station_id=STATION, name="remote_start",
                               body={"id_token": "APP-1"})["answer"]
            assert answer["ok"] is False and "storage" in answer["error"], answer
    finally:
        shutil.rmtree(folder, ignore_errors=True)
