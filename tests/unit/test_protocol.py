"""terminal.backend.protocol: topics, typed models, signatures and hostile payloads."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from terminal.backend import protocol
from terminal.backend.messages import LocalListUpdate, Refund
from terminal.backend.protocol import (
    Event,
    ProtocolError,
    Request,
    Response,
    Status,
    decode_command,
    decode_response,
    encode,
    signed_command,
)

TARIFF = json.loads((Path(__file__).parents[2] / "examples/tariffs/de_dc_hpc_adhoc.json")
                    .read_text())
OPERATOR = Ed25519PrivateKey.generate()
OPERATOR_PUB = OPERATOR.public_key()
ENTRY = {"id_token": "04A1B2C3", "status": "Accepted"}


def command(name: str, body: Any) -> bytes:
    return encode({"name": name, "body": body})


def refused(payload: bytes, **kwargs: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode_command(payload, operator_key=OPERATOR_PUB, **kwargs)
    return info.value


# ---- topics ------------------------------------------------------------------------------


def test_topics_round_trip_and_refuse_wildcards() -> None:
    assert protocol.up("ST1", "event") == "evterm/v1/ST1/up/event"
    assert protocol.parse_topic(protocol.down("ST1", "command")) == ("ST1", "down", "command")
    for bad in ("a/b", "+", "#", ""):
        with pytest.raises(ProtocolError):
            protocol.up(bad, "status")
    with pytest.raises(ProtocolError):
        protocol.parse_topic("evterm/v1/ST1/up/command")


# ---- up ------------------------------------------------------------------------------------


def test_up_models_round_trip() -> None:
    status = Status("online", 3, "2026-01-01T10:00:00.000Z", False, "storage low")
    assert protocol.decode_status(encode(status.to_json())) == status
    event = Event("TransactionEvent", "S1:tx:1", "2026-01-01T10:00:00.000Z",
                  {"event_type": "Started"}, "S1", 1, True)
    assert protocol.decode_event(encode(event.to_json())) == event
    request = Request("capture", {"reference": "R1"})
    assert protocol.decode_request(encode(request.to_json())) == request
    with pytest.raises(ProtocolError) as info:
        protocol.decode_request(encode({"op": "format_disk", "body": {}}))
    assert info.value.field == "op"
    with pytest.raises(ProtocolError) as info:
        protocol.decode_status(encode({"state": "maybe"}))
    assert info.value.field == "state"


def test_response_pairs_ok_and_error() -> None:
    ok = decode_response(encode(Response(True, "capture", {"status": "Settled"}).to_json()),
                         b"c1")
    assert (ok.kind, ok.name, ok.body, ok.correlation) == ("response", "capture",
                                                           {"status": "Settled"}, b"c1")
    bad = decode_response(encode(Response.failure("x", "nope", "body.a").to_json()))
    assert bad.message.ok is False and bad.message.field == "body.a"
    with pytest.raises(ProtocolError) as info:
        decode_response(encode({"ok": "yes"}))
    assert info.value.field == "ok"
    with pytest.raises(ProtocolError) as info:
        decode_response(encode({"ok": True}), b"x" * 200)
    assert info.value.field == "correlation_data"


# ---- commands --------------------------------------------------------------------------


def test_plain_commands_validate_into_models() -> None:
    start = decode_command(command("remote_start", {"id_token": "APP42", "cost_cap": "30.00",
                                                    "tariff": TARIFF}),
                           b"k", "evterm/v1/ST1/up/response")
    assert start.name == "remote_start" and start.message.cost_cap == Decimal("30.00")
    assert start.response_topic == "evterm/v1/ST1/up/response" and start.correlation == b"k"
    assert decode_command(command("remote_stop", {})).message.session_id is None
    refund = Refund("RF1", "PSP1", "REF1", Decimal("5.00"), "EUR", "goodwill")
    assert decode_command(command("refund", refund.to_json())).message == refund
    change = decode_command(command("config_change", {"key": "session.idle_fee", "value": 2}))
    assert (change.message.key, change.message.value) == ("session.idle_fee", 2)
    since = decode_command(command("reconcile", {"since": "2026-01-01T00:00:00Z"}))
    assert since.message.since.year == 2026
    assert decode_command(command("diagnostics", {})).body == {}


@pytest.mark.parametrize(("name", "body", "field"), [
    ("remote_start", {}, "body.id_token"),
    ("remote_start", {"id_token": "has space"}, "body.id_token"),
    ("remote_start", {"id_token": "A", "cost_cap": "-1"}, "body.cost_cap"),
    ("remote_start", {"id_token": "A", "cost_cap": 1e400}, "body.cost_cap"),
    ("remote_start", {"id_token": "A", "tariff": {"currency": "EUR"}}, "body.tariff"),
    ("remote_stop", {"session_id": 7}, "body.session_id"),
    ("refund", {"refund_id": "R"}, "body.psp_reference"),
    ("config_change", {"key": "no_section", "value": 1}, "body.key"),
    ("config_change", {"key": "a.b", "value": [1]}, "body.value"),
    ("reconcile", {"since": "yesterday"}, "body.since"),
    ("diagnostics", [], "body"),
    ("reboot", {}, "name"),
])
def test_invalid_commands_name_the_field(name: str, body: Any, field: str) -> None:
    assert refused(command(name, body)).field == field


def test_card_numbers_are_not_repeated_in_errors() -> None:
    error = refused(command("remote_start", {"id_token": "4111 1111 1111 1111"}))
    assert "4111" not in str(error)
    error = refused(command("remote_stop", {"session_id": "4111111111111111" * 5}))
    assert "4111" not in str(error)


# ---- signatures -----------------------------------------------------------------------------


def test_signed_tariff_and_list_are_accepted() -> None:
    tariff = decode_command(command("tariff_update",
                                    signed_command("tariff_update", TARIFF, OPERATOR)),
                            operator_key=OPERATOR_PUB)
    assert tariff.message.tariff == TARIFF
    update = {"version": 3, "update_type": "Full", "entries": [ENTRY]}
    listed = decode_command(command("local_list",
                                    signed_command("local_list", update, OPERATOR)),
                            operator_key=OPERATOR_PUB)
    assert isinstance(listed.message.update, LocalListUpdate)
    assert listed.message.update.version == 3


def test_unsigned_or_wrongly_signed_commands_are_refused() -> None:
    other = Ed25519PrivateKey.generate()
    tampered = signed_command("tariff_update", TARIFF, OPERATOR)
    tampered["tariff"] = {**TARIFF, "currency": "USD"}
    cases = [
        {"tariff": TARIFF},
        {"tariff": TARIFF, "signature": "!!not base64!!"},
        {"tariff": TARIFF, "signature": 5},
        signed_command("tariff_update", TARIFF, other),
        tampered,
    ]
    for body in cases:
        error = refused(command("tariff_update", body))
        assert error.field == "signature", body
    update = {"version": 1, "update_type": "Full", "entries": [ENTRY]}
    assert refused(command("local_list", signed_command("local_list", update, other))) \
        .field == "signature"
    with pytest.raises(ProtocolError) as info:  # no operator key configured
        decode_command(command("tariff_update",
                               signed_command("tariff_update", TARIFF, OPERATOR)))
    assert info.value.field == "signature"


def test_signed_but_invalid_content_names_the_field() -> None:
    update = {"version": 1, "update_type": "Full", "entries": [{"id_token": "A B"}]}
    error = refused(command("local_list", signed_command("local_list", update, OPERATOR)))
    assert error.field == "body.update.entries[0].id_token"
    bad_tariff = {"currency": "EUR", "elements": []}
    error = refused(command("tariff_update",
                            signed_command("tariff_update", bad_tariff, OPERATOR)))
    assert error.field == "body.tariff"


def test_properties_are_checked() -> None:
    assert refused(command("diagnostics", {}), correlation=b"").field == "correlation_data"
    assert refused(command("diagnostics", {}), response_topic="a/#").field == "response_topic"


# ---- hostile payloads --------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True)
    | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=30,
)
NAMES = st.sampled_from([*protocol.COMMANDS, "reboot", "", "REMOTE_START"])
KEYS = st.sampled_from(["id_token", "cost_cap", "energy_cap_wh", "tariff", "session_id",
                        "signature", "update", "key", "value", "since", "refund_id",
                        "amount", "currency", "psp_reference", "reference", "entries"])


def _hostile_documents() -> st.SearchStrategy[bytes]:
    shaped = st.fixed_dictionaries(
        {"schema_version": st.sampled_from([1, 1, 1, 2, "1", None]), "name": NAMES,
         "body": st.dictionaries(KEYS, JSON, max_size=6) | JSON})
    signed = st.builds(
        lambda name, content, flip: encode({"name": name, "body": {
            ("tariff" if name == "tariff_update" else "update"): content,
            "signature": signed_command("tariff_update", {"x": flip}, OPERATOR)["signature"],
        }}),
        st.sampled_from(protocol.SIGNED_COMMANDS), JSON, st.integers())
    return st.one_of(
        shaped.map(lambda d: json.dumps(d).encode()),
        signed,
        JSON.map(lambda d: json.dumps(d).encode()),
        st.binary(max_size=200),
        st.integers(1, 20_000).map(lambda n: b'{"schema_version":1,"name":' + b"[" * n),
        st.integers(4400, 6000).map(lambda n: b'{"schema_version":' + b"9" * n + b"}"),
        st.just(b'{"schema_version":1,"name":"diagnostics","body":{}}' + b" " * 300_000),
    )


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=_hostile_documents(), correlation=st.none() | st.binary(max_size=200),
       topic=st.none() | st.text(max_size=20) | st.integers())
def test_hostile_downlink_raises_only_protocol_error(payload: bytes, correlation: Any,
                                                     topic: Any) -> None:
    try:
        inbound = decode_command(payload, correlation, topic, OPERATOR_PUB)
    except ProtocolError as exc:
        assert exc.field and exc.reason
    else:
        assert inbound.name in protocol.COMMANDS
    try:
        decode_response(payload, correlation)
    except ProtocolError as exc:
        assert exc.field
