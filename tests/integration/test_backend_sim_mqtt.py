"""`evterm sim backend` against a real mosquitto: requests answered on the response topic
with the correlation data, events de-duplicated and checked for order, retained status,
signed commands, refunds, silent/slow modes, hostile input; and over TLS + ACL."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hw_mocks.backend_admin import admin
from hw_mocks.backend_process import BackendMqttProcess
from hw_mocks.mosquitto import Broker, Probe
from terminal.backend import protocol
from terminal.backend.messages import PreauthRequest
from terminal.kernel.cards import CardData, mask_pan
from terminal.payment.crypto import load_gateway_key, seal

TOKENS = ({"id_token": "04AA", "status": "Accepted"}, {"id_token": "04BB", "status": "Blocked"})
VISA = "4111111111111111"  # public test card number
Sim = Callable[..., BackendMqttProcess]


def station(on: Broker, name: str = "ST1") -> Probe:
    """A bare paho client playing a station: subscribed to its downlink."""
    probe = Probe(on, name, cert=on.tls.client(name) if on.tls else None).connect()
    assert probe.subscribe(f"evterm/v1/{name}/down/#")[0] < 0x80
    return probe


def request(probe: Probe, op: str, body: dict[str, Any], correlation: bytes,
            timeout_s: float = 5.0) -> dict[str, Any]:
    st = probe.client_id
    probe.publish(protocol.up(st, "request"), protocol.encode({"op": op, "body": body}),
                  response_topic=protocol.down(st, "response"), correlation=correlation)
    got = probe.wait_message(timeout_s, topic=protocol.down(st, "response"))
    assert got.correlation == correlation
    inbound = protocol.decode_response(got.payload, got.correlation)  # as the terminal reads it
    assert inbound.kind == "response" and isinstance(inbound.message, protocol.Response)
    return protocol.decode(got.payload)


def answer(probe: Probe, command: Any, response: protocol.Response) -> None:
    """The station's answer to a command, on its response topic."""
    probe.publish(command.response_topic, protocol.encode(response.to_json()),
                  correlation=command.correlation)


def event(key: str, session: str | None, seq_no: int | None, kind: str = "session_updated"
          ) -> bytes:
    return protocol.encode(protocol.Event(kind, key, "2026-11-21T10:00:00Z",
                                          {"energy_wh": seq_no}, session, seq_no,
                                          offline=key.startswith("off")).to_json())


def wait_for(check: Callable[[], Any], timeout_s: float = 3.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def test_requests_are_answered_on_the_response_topic(broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(broker, TOKENS)
    assert sim.ready["port"] == broker.port and not sim.ready["tls"]
    with station(broker) as st:
        accepted = request(st, "authorize_token", {"id_token": "04AA", "token_type": "ISO14443",
                                                   "station_id": "ST1"}, b"corr-1")
        blocked = request(st, "authorize_token", {"id_token": "04BB", "token_type": "ISO14443",
                                                  "station_id": "ST1"}, b"\x00\xffbin")
        bad = request(st, "authorize_token", {"id_token": "04AA"}, b"corr-3")
        unknown = request(st, "teleport", {}, b"corr-4")
    assert accepted["ok"] and accepted["name"] == "authorize_token"
    assert accepted["body"]["status"] == "Accepted" and "error" not in accepted
    assert accepted["schema_version"] == protocol.SCHEMA_VERSION
    assert blocked["body"]["status"] == "Blocked"
    assert not bad["ok"] and bad["field"] == "TokenAuthRequest.token_type"
    assert bad["name"] == "authorize_token" and bad["error"] == "required field missing"
    assert "body" not in bad
    assert not unknown["ok"] and unknown["field"] == "op" and unknown["name"] is None
    assert "teleport" in unknown["error"]
    received = sim.admin("received", filter_op="authorize_token")["messages"]
    assert [m["body"]["id_token"] for m in received] == ["04AA", "04BB"]


def test_payment_flow_and_refund_command(broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(broker)
    card = CardData(VISA, "2812")
    pre = PreauthRequest(reference="S-1", station_id="ST1", amount=Decimal("50.00"),
                         currency="EUR", token="k1." + "ab" * 20, masked_pan=mask_pan(VISA),
                         scheme="visa", envelope=seal(card, load_gateway_key(
                             sim.gateway_public), "ST1", "S-1"))
    with station(broker) as st:
        approved = request(st, "preauthorize", pre.to_json(), b"p-1")
        again = request(st, "preauthorize", pre.to_json(), b"p-2")
        assert approved["body"]["approved"] and again["body"] == approved["body"]
        psp = approved["body"]["psp_reference"]
        captured = request(st, "capture", {"reference": "S-1-c", "psp_reference": psp,
                                           "amount": "30.00", "currency": "EUR"}, b"p-3")
        assert captured["ok"] and captured["body"]["ok"], captured
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(sim.admin, "refund", psp_reference=psp, amount="10.00")
            command = st.wait_message(5, topic=protocol.down("ST1", "command"))
            sent = protocol.decode(command.payload)
            assert command.response_topic == protocol.up("ST1", "response")
            answer(st, command, protocol.Response(True, "refund"))
            reply = pending.result(10)
    assert sent["name"] == "refund" and "signature" not in sent["body"]
    refund = protocol.decode_command(command.payload, command.correlation,
                                     command.response_topic)
    assert refund.name == "refund" and refund.message.psp_reference == psp
    assert sent["body"]["amount"] == "10.00" and sent["body"]["psp_reference"] == psp
    assert reply["answer"] == {"schema_version": 1, "ok": True, "name": "refund", "body": {}}
    assert not reply["timed_out"]
    assert reply["refund"] == sent["body"]
    payment, = sim.admin("ledger")["payments"]
    assert (payment["captured"], payment["refunded"], payment["status"]) == (
        "30.00", "10.00", "partially_refunded")
    assert VISA not in sim.log_text()
    assert sim.admin("received")["duplicates"] == 1


def test_events_deduplicated_and_order_checked(broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(broker)
    with station(broker) as st:
        topic = protocol.up("ST1", "event")
        for payload in (event("k1", "S1", 1), event("k2", "S1", 2), event("k2", "S1", 2),
                        event("k3", "S1", 3), event("k4", "S2", 5), event("k5", "S2", 4),
                        event("off1", None, None, kind="audit")):
            st.publish(topic, payload)
    view = wait_for(lambda: (v := sim.admin("events")) and len(v["events"]) == 6 and v)
    assert view, sim.admin("events")
    assert [e["idempotency_key"] for e in view["events"]] == [
        "k1", "k2", "k3", "k4", "k5", "off1"]
    assert [e["offline"] for e in view["events"]] == [False] * 5 + [True]
    assert view["events"][0]["created_at"] == "2026-11-21T10:00:00.000Z"  # Event.from_json
    assert view["duplicates"] == 1
    assert {e["idempotency_key"]: e["count"] for e in view["events"]}["k2"] == 2
    assert view["sessions"] == {"S1": [1, 2, 3], "S2": [5, 4]}
    assert [(v["session_id"], v["seq_no"], v["after"]) for v in view["order_violations"]] \
        == [("S2", 4, 5)]
    assert view["events"][0]["payload"] == {"energy_wh": 1}
    assert sim.admin("events", kind="audit")["events"][0]["session_id"] is None
    status = sim.admin("status")
    assert (status["events"], status["duplicates"], status["order_violations"]) == (6, 1, 1)


def test_retained_status_is_tracked(broker: Broker, backend_sim: Sim) -> None:
    with station(broker) as st:
        st.publish(protocol.up("ST1", "status"), protocol.encode({"state": "online"}),
                   retain=True)
        sim = backend_sim(broker)  # starts after the status: gets the retained copy
        stations = wait_for(lambda: sim.admin("status")["stations"])
        assert stations["ST1"]["status"]["state"] == "online"
        assert stations["ST1"]["retained"] is True
        st.publish(protocol.up("ST1", "status"), protocol.encode({"state": "offline"}),
                   retain=True)
        assert wait_for(lambda: sim.admin("status")["stations"]["ST1"]["status"]["state"]
                        == "offline")


def test_commands_are_signed_with_the_operator_key(broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(broker, TOKENS)
    public = serialization.load_pem_public_key(sim.operator_public.read_bytes())
    assert isinstance(public, Ed25519PublicKey)
    assert sim.ready["operator_public_key"] == sim.operator_public.read_text()
    tariff = {"currency": "EUR", "elements": [{"price_components": [
        {"type": "ENERGY", "price": 0.39, "vat": 19.0, "step_size": 1}]}]}
    with station(broker) as st, ThreadPoolExecutor(1) as pool:
        got: dict[str, Any] = {}
        for name, body in (("tariff_update", {"tariff": tariff}), ("local_list", None),
                           ("remote_stop", {"session_id": "S1"})):
            values = {"station_id": "ST1", "name": name}
            if body is not None:
                values["body"] = body
            pending = pool.submit(sim.admin, "command", **values)
            got[name] = st.wait_message(5, topic=protocol.down("ST1", "command"))
            answer(st, got[name], protocol.Response(True, name))
            reply = pending.result(10)
            assert reply["answer"]["name"] == name and reply["sent"] == {
                k: v for k, v in protocol.decode(got[name].payload).items()
                if k != "schema_version"}
        unanswered = sim.admin("command", station_id="ST1", name="remote_start",
                               body={"id_token": "04AA"}, timeout_s=0.3)
        bad_sig = sim.admin("command", station_id="ST1", name="tariff_update",
                            body={"tariff": tariff}, signature="AAAA", wait=False)
        unsigned = sim.admin("command", station_id="ST1", name="tariff_update",
                             body={"tariff": tariff}, sign=False, wait=False)
        refused = [st.wait_message(5, topic=protocol.down("ST1", "command"))
                   for _ in range(3)][1:]  # after the unanswered remote_start
    sent = {name: protocol.decode(message.payload) for name, message in got.items()}
    tariff_body, list_body = sent["tariff_update"]["body"], sent["local_list"]["body"]
    assert sent["tariff_update"]["name"] == "tariff_update"
    assert set(tariff_body) == {"tariff", "signature"} and tariff_body["tariff"] == tariff
    protocol.verify(tariff, tariff_body["signature"], public)
    assert set(list_body) == {"update", "signature"}
    protocol.verify(list_body["update"], list_body["signature"], public)
    assert list_body["update"]["version"] == 1
    assert [e["id_token"] for e in list_body["update"]["entries"]] == ["04AA", "04BB"]
    assert sent["remote_stop"] == {"schema_version": 1, "name": "remote_stop",
                                   "body": {"session_id": "S1"}}
    with pytest.raises(protocol.ProtocolError, match="signature"):
        protocol.verify({}, tariff_body["signature"], public)
    # the terminal's own decoder accepts every command and checks the signatures
    for name, message in got.items():
        inbound = protocol.decode_command(message.payload, message.correlation,
                                          message.response_topic, public)
        assert inbound.name == name
    assert isinstance(protocol.decode_command(got["local_list"].payload,
                                              operator_key=public).message,
                      protocol.LocalListCommand)
    assert unanswered["timed_out"] and unanswered["answer"] is None
    assert bad_sig["sent"]["body"] == {"tariff": tariff, "signature": "AAAA"}
    assert unsigned["sent"]["body"] == {"tariff": tariff}
    for message in refused:
        with pytest.raises(protocol.ProtocolError) as refusal:
            protocol.decode_command(message.payload, operator_key=public)
        assert refusal.value.field == "signature"
    responses = sim.admin("responses")["responses"]
    assert [(r["matched"], r["answer"]["ok"]) for r in responses] == [(True, True)] * 3


def test_command_answers_are_parsed_as_responses(broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(broker)
    with station(broker) as st, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(sim.admin, "command", station_id="ST1", name="remote_stop",
                              body={}, timeout_s=3)
        command = st.wait_message(5, topic=protocol.down("ST1", "command"))
        # a malformed answer is dropped (the command stays pending), then the real one
        st.publish(command.response_topic, protocol.encode({"ok": "yes"}),
                   correlation=command.correlation)
        answer(st, command, protocol.Response.failure("remote_stop", "no session running",
                                                      "body.session_id"))
        reply = pending.result(10)
    assert reply["answer"] == {"schema_version": 1, "ok": False, "name": "remote_stop",
                               "error": "no session running", "field": "body.session_id"}
    assert [r["field"] for r in sim.admin("events")["rejected"]] == ["ok"]
    assert [r["answer"]["field"] for r in sim.admin("responses")["responses"]] == [
        "body.session_id"]
    assert "sign" in admin(sim.socket, "command", station_id="ST1", name="remote_stop",
                           sign=True)["error"]
    assert "tariff" in admin(sim.socket, "command", station_id="ST1",
                             name="tariff_update")["error"]


def test_silent_and_slow_modes(broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(broker, TOKENS)
    body = {"id_token": "04AA", "token_type": "ISO14443", "station_id": "ST1"}
    with station(broker) as st:
        assert sim.admin("silent", on=True)["silent"]
        with pytest.raises(queue.Empty):
            request(st, "authorize_token", body, b"s-1", timeout_s=0.4)
        sim.admin("silent", on=False)
        sim.admin("delay", delay_s=0.5)
        started = time.monotonic()
        assert request(st, "authorize_token", body, b"s-2")["ok"]
        assert time.monotonic() - started >= 0.45
        sim.admin("delay", delay_s=0)
        assert request(st, "authorize_token", body, b"s-3")["ok"]
    status = sim.admin("status")
    assert (status["ignored"], status["answered"]) == (1, 2)


def test_hostile_input_is_dropped_and_changes_nothing(broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(broker, TOKENS)
    good = {"id_token": "04AA", "token_type": "ISO14443", "station_id": "ST1"}
    with station(broker) as st, station(broker, "ST2") as st2:
        st.publish(protocol.up("ST1", "event"), b"\xff\xfe not json")
        st.publish(protocol.up("ST1", "event"), b'{"schema_version": 99}')
        st.publish(protocol.up("ST1", "event"), b"x" * (protocol.MAX_PAYLOAD_BYTES + 1))
        st.publish(protocol.up("ST1", "event"), protocol.encode(
            {"kind": "x", "created_at": "2026-11-21T10:00:00Z", "seq_no": "1"}))
        st.publish("evterm/v1/ST1/up/bogus", protocol.encode({}))
        # a request whose answer would go to another station's tree
        st.publish(protocol.up("ST1", "request"), protocol.encode({"op": "authorize_token",
                                                                    "body": good}),
                   response_topic=protocol.down("ST2", "response"), correlation=b"h-1")
        st.publish(protocol.up("ST1", "request"), protocol.encode({"op": "authorize_token",
                                                                    "body": good}))
        rejected = wait_for(lambda: len(sim.admin("events")["rejected"]) >= 7
                            and sim.admin("events")["rejected"])
        assert rejected, sim.admin("events")
        assert [r["field"] for r in rejected] == [
            "payload", "schema_version", "payload", "idempotency_key", "topic",
            "response_topic", "response_topic"]
        with pytest.raises(queue.Empty):
            st2.wait_message(0.3)
        # raw bytes reach the station exactly as given
        sent = sim.admin("send_raw", topic=protocol.down("ST1", "command"),
                         payload_b64="AAEC/w==", repeat=3)
        assert sent["published"] == 3
        assert [st.wait_message(3).payload for _ in range(3)] == [b"\x00\x01\x02\xff"] * 3
        assert request(st, "authorize_token", good, b"h-2")["ok"]  # still serving
    status = sim.admin("status")
    assert (status["events"], status["answered"], len(sim.admin("received")["messages"])) \
        == (0, 1, 1)
    assert sim.proc is not None and sim.proc.poll() is None


def test_admin_errors_name_the_field(broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(broker)
    assert "known: status" in admin(sim.socket, "nope")["error"]
    assert "delay_s" in admin(sim.socket, "delay", delay_s=-1)["error"]
    assert "no such payment" in admin(sim.socket, "refund", psp_reference="PSP-X")["error"]
    assert "station_id" in admin(sim.socket, "command", station_id="A/B", name="x")["error"]
    assert sim.stop() == 0


def test_over_tls_with_the_acl(tls_broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(tls_broker, TOKENS)
    assert sim.ready["tls"]
    body = {"id_token": "04AA", "token_type": "ISO14443", "station_id": "ST2"}
    with station(tls_broker, "ST2") as st2, station(tls_broker, "ST1") as st1:
        accepted = request(st2, "authorize_token", body, b"t-1")
        assert accepted["ok"] and accepted["body"]["status"] == "Accepted"
        st1.publish(protocol.up("ST2", "event"), event("forged", "S9", 1))  # ACL drops it
        st2.publish(protocol.up("ST2", "event"), event("real", "S1", 1))
        events = wait_for(lambda: sim.admin("events")["events"])
        assert [e["idempotency_key"] for e in events] == ["real"]
        done = threading.Event()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(sim.admin, "command", station_id="ST2", name="remote_stop",
                                  body={"session_id": "S1"})
            command = st2.wait_message(5, topic=protocol.down("ST2", "command"))
            answer(st2, command, protocol.Response(True, "remote_stop"))
            assert pending.result(10)["answer"]["ok"]
            done.set()
        with pytest.raises(queue.Empty):
            st1.wait_message(0.2)
    assert done.is_set()
    assert json.loads(json.dumps(sim.admin("events")["events"]))[0]["station_id"] == "ST2"


def test_simulator_reconnects_after_a_broker_outage(broker: Broker, backend_sim: Sim) -> None:
    sim = backend_sim(broker)
    assert broker.stop() == 0
    assert wait_for(lambda: not sim.admin("status")["connected"])
    broker.start()  # same port, no persistence: the simulator must subscribe again
    assert wait_for(lambda: sim.admin("status")["connected"], timeout_s=5)
    with station(broker) as st:
        for attempt in range(50):  # until its new subscription is in place
            st.publish(protocol.up("ST1", "event"), event(f"k{attempt}", "S1", attempt))
            if sim.admin("events")["events"]:
                break
            time.sleep(0.05)
    view = wait_for(lambda: sim.admin("events")["events"])
    assert view and view[0]["session_id"] == "S1"
    assert sim.admin("events")["order_violations"] == []
