"""The private mosquitto of the tests: plain pub/sub, restart on the same port, TLS with
client certificates and the per-station ACL (station A cannot touch station B)."""

from __future__ import annotations

import queue

import pytest

from hw_mocks import mosquitto
from hw_mocks.mosquitto import Broker, BrokerError, Probe, ProbeError
from terminal.backend import protocol


def test_plain_broker_carries_messages_and_mqtt5_properties(broker: Broker) -> None:
    with Probe(broker, "listener") as listener, Probe(broker, "talker") as talker:
        assert listener.subscribe("evterm/v1/ST1/#") == [1]
        talker.publish(protocol.up("ST1", "request"), b'{"x":1}',
                       response_topic=protocol.down("ST1", "response"), correlation=b"c-1")
        got = listener.wait_message(3)
    assert (got.topic, got.payload, got.qos) == ("evterm/v1/ST1/up/request", b'{"x":1}', 1)
    assert (got.response_topic, got.correlation) == ("evterm/v1/ST1/down/response", b"c-1")
    assert "allow_anonymous true" in broker.conf_path.read_text()
    assert "persistence false" in broker.conf_path.read_text()


def test_broker_restarts_on_the_same_port(broker: Broker) -> None:
    port = broker.port
    assert broker.stop() == 0
    assert not broker.running
    with pytest.raises(ProbeError):
        Probe(broker, "early", timeout_s=1).connect()
    broker.start()
    assert broker.port == port and broker.running
    with Probe(broker, "listener") as listener, Probe(broker, "talker") as talker:
        listener.subscribe("t/#")
        talker.publish("t/1", b"after restart")
        assert listener.wait_message(3).payload == b"after restart"
    assert "mosquitto version" in broker.log_text()


def test_missing_mosquitto_names_the_debian_package(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(mosquitto, "SEARCH_PATH", ())
    with pytest.raises(BrokerError, match="Debian package 'mosquitto'"):
        Broker(tmp_path / "b")


def test_tls_station_certificate_connects_and_others_are_refused(tls_broker: Broker) -> None:
    pki = tls_broker.tls
    assert pki is not None
    with Probe(tls_broker, "ST1", cert=pki.client("ST1")) as station:
        assert station.connected.is_set()
    with pytest.raises(ProbeError, match="rogue"):
        Probe(tls_broker, "rogue", cert=pki.rogue).connect()
    with pytest.raises(ProbeError, match="anonymous"):
        Probe(tls_broker, "anonymous").connect()
    log = tls_broker.log_text()
    assert "certificate verify failed" in log
    assert "peer did not return a certificate" in log


def test_station_cannot_publish_into_another_stations_tree(tls_broker: Broker) -> None:
    pki = tls_broker.tls
    assert pki is not None
    with Probe(tls_broker, "backend", cert=pki.backend) as backend, \
            Probe(tls_broker, "ST1", cert=pki.client("ST1")) as st1:
        backend.subscribe("evterm/v1/#")
        st1.publish(protocol.up("ST2", "event"), b"forged by ST1")
        st1.publish(protocol.down("ST1", "command"), b"ST1 writing its own downlink")
        st1.publish(protocol.up("ST1", "event"), b"own event")
        got = backend.wait_message(3)
        assert (got.topic, got.payload) == ("evterm/v1/ST1/up/event", b"own event")
        with pytest.raises(queue.Empty):
            backend.wait_message(0.3)


def test_station_cannot_read_another_stations_tree(tls_broker: Broker) -> None:
    pki = tls_broker.tls
    assert pki is not None
    with Probe(tls_broker, "backend", cert=pki.backend) as backend, \
            Probe(tls_broker, "ST1", cert=pki.client("ST1")) as st1, \
            Probe(tls_broker, "ST2", cert=pki.client("ST2")) as st2:
        st1.subscribe("evterm/v1/ST2/#")
        st1.subscribe("evterm/v1/+/up/#")
        st2.subscribe("evterm/v1/ST2/down/#")
        backend.publish(protocol.down("ST2", "command"), b"for ST2 only")
        st2.publish(protocol.up("ST2", "status"), b"ST2 status")
        assert st2.wait_message(3).payload == b"for ST2 only"  # the ACL lets the owner read
        st1.subscribe("evterm/v1/ST1/down/#")
        backend.publish(protocol.down("ST1", "command"), b"for ST1 again")
        got = st1.wait_message(3)
        assert got.payload == b"for ST1 again"
        with pytest.raises(queue.Empty):
            st1.wait_message(0.3)
