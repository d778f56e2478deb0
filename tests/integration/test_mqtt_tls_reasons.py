"""A TLS failure on the way to the broker is logged with its reason (certificate verify
failed and why, the hostname not in the certificate, the broker's alert), not only as
"cannot reach the broker"."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

import pytest

from hw_mocks.mosquitto import Broker
from terminal.backend.connect_errors import connect_failure_reason
from terminal.backend.mqtt import MqttBackend
from terminal.config import BackendConfig


def _reasons(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [str(getattr(r, "fields", {}).get("reason")) for r in caplog.records
            if r.getMessage().startswith("MQTT broker connection")]


async def _first_failure(config: BackendConfig, caplog: pytest.LogCaptureFixture) -> str:
    backend = MqttBackend(config, "ST1")
    try:
        await backend.start()
        for _ in range(200):
            if _reasons(caplog):
                break
            await asyncio.sleep(0.02)
        assert not backend.online
    finally:
        await backend.close()
    reasons = _reasons(caplog)
    assert reasons, "no connection failure logged"
    return reasons[0]


def _config(broker: Broker, **extra: Any) -> BackendConfig:
    return BackendConfig(kind="mqtt", mqtt_port=broker.port, mqtt_tls=True,
                         request_timeout_s=2.0, keepalive_s=5, **extra)


def test_an_unknown_ca_is_logged_as_certificate_verify_failed(tls_broker, caplog):
    caplog.set_level(logging.WARNING)
    client = tls_broker.tls.client("ST1")
    reason = asyncio.run(_first_failure(
        _config(tls_broker, cert_file=str(client.cert), key_file=str(client.key)), caplog))
    assert "TLS certificate verify failed" in reason, reason
    assert "certificate" in reason.split("verify failed:", 1)[1], reason


def test_a_host_name_not_in_the_certificate_is_named(tls_broker, caplog):
    caplog.set_level(logging.WARNING)
    pki = tls_broker.tls
    client = pki.client("ST1")
    # the broker's certificate is for localhost and 127.0.0.1; this name is not in it
    host = "evterm-broker.localtest"
    original = socket.getaddrinfo

    def resolve(name: Any, *args: Any, **kwargs: Any) -> Any:
        return original("127.0.0.1" if name == host else name, *args, **kwargs)

    socket.getaddrinfo = resolve  # type: ignore[assignment]
    try:
        reason = asyncio.run(_first_failure(
            _config(tls_broker, mqtt_host=host, ca_file=str(pki.ca_cert),
                    cert_file=str(client.cert), key_file=str(client.key)), caplog))
    finally:
        socket.getaddrinfo = original  # type: ignore[assignment]
    assert "TLS certificate verify failed" in reason and "Hostname mismatch" in reason, reason


def test_reasons_in_words():
    refused = connect_failure_reason(ConnectionRefusedError(111, "Connection refused"))
    assert refused == "cannot reach the broker: connection refused"
    unknown = connect_failure_reason(socket.gaierror(-2, "Name or service not known"))
    assert unknown == "cannot reach the broker: host not found (Name or service not known)"
    alert = ssl.SSLError(1, "[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert unknown ca")
    alert.reason = "TLSV1_ALERT_UNKNOWN_CA"
    assert connect_failure_reason(alert) == \
        "cannot reach the broker: TLS handshake failed: TLSV1_ALERT_UNKNOWN_CA"
    assert connect_failure_reason(None) == "cannot reach the broker"
