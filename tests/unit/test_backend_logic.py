"""The backend simulator's decisions and ledger, and the backend messages' JSON."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hw_mocks.backend_logic import (
    BackendLogic,
    LedgerError,
    PanRule,
    generate_gateway_keys,
    load_gateway_private_key,
    load_rules,
    load_tokens,
)
from terminal.backend.api import BackendUnavailable, OfflineBackend
from terminal.backend.factory import create_backend
from terminal.backend.loopback import LoopbackBackend
from terminal.backend.messages import (
    AuthStatus,
    CaptureRequest,
    CaptureResponse,
    LocalListEntry,
    LocalListUpdate,
    MessageError,
    PreauthRequest,
    PreauthResponse,
    Refund,
    TokenAuthRequest,
    TokenAuthResponse,
    VoidRequest,
)
from terminal.config import BackendConfig
from terminal.kernel.cards import CardData, mask_pan
from terminal.kernel.driver_texts import DRIVER_MESSAGE_CODES, LANGUAGES, driver_message
from terminal.kernel.logsetup import KeyValueFormatter
from terminal.payment.crypto import TokenKey, seal, tokenize
from tests.unit.clockfake import FakeClock

# public test card numbers only
VISA = "4111111111111111"
DO_NOT_HONOR = "4000000000000002"
NO_FUNDS = "4000000000009995"
AMEX_PARTIAL = "378282246310005"
MASTERCARD = "5555555555554444"
STATION = "DE*EVT*E0001*1"
KEY = TokenKey("k1", bytes(range(32)))
TARIFF = {"currency": "EUR", "elements": [{"price_components": [
    {"type": "ENERGY", "price": 0.3, "vat": 19.0, "step_size": 1}]}]}


@pytest.fixture
def gateway() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


@pytest.fixture
def logic(gateway: X25519PrivateKey) -> BackendLogic:
    tokens = [
        LocalListEntry("04AA", AuthStatus.ACCEPTED, cost_cap=Decimal("30.00"), tariff=TARIFF,
                       group_id="FLEET"),
        LocalListEntry("04BB", AuthStatus.BLOCKED),
        LocalListEntry("04CC", AuthStatus.ACCEPTED,
                       expiry=FakeClock().now() - timedelta(days=1)),
        LocalListEntry("TECH", AuthStatus.ACCEPTED, technician=True),
    ]
    return BackendLogic(gateway, tokens, clock=FakeClock(), cache_ttl_s=600, token_key=KEY)


def preauth(gateway: X25519PrivateKey, pan: str = VISA, reference: str = "S-1",
            amount: str = "50.00", expiry: str = "2812", **changes: object) -> PreauthRequest:
    card = CardData(pan, expiry)
    values = {
        "reference": reference, "station_id": STATION, "amount": Decimal(amount),
        "currency": "EUR", "envelope": seal(card, gateway.public_key(), STATION, reference),
        "token": tokenize(card, KEY), "masked_pan": mask_pan(pan), "scheme": "visa",
    }
    values.update(changes)
    return PreauthRequest(**values)


# ---- token auth ----------------------------------------------------------------------------


def test_token_answers(logic):
    now = FakeClock().now()
    ok = logic.authorize_token(TokenAuthRequest("04AA", "ISO14443", STATION))
    assert ok.status is AuthStatus.ACCEPTED
    assert (ok.cost_cap, ok.group_id, ok.tariff) == (Decimal("30.00"), "FLEET", TARIFF)
    assert ok.cache_expiry == now + timedelta(seconds=600)
    assert logic.authorize_token(TokenAuthRequest("04BB", "ISO14443", STATION)).status == (
        AuthStatus.BLOCKED)
    expired = logic.authorize_token(TokenAuthRequest("04CC", "Local", STATION))
    assert (expired.status, expired.cache_expiry) == (AuthStatus.EXPIRED, None)
    assert logic.authorize_token(TokenAuthRequest("NOPE", "Central", STATION)).status == (
        AuthStatus.UNKNOWN)
    assert logic.authorize_token(TokenAuthRequest("TECH", "ISO14443", STATION)).technician
    assert [m.op for m in logic.received] == ["authorize_token"] * 5


# ---- pre-authorisation ---------------------------------------------------------------------


def test_approves_the_amount_asked(logic, gateway):
    answer = logic.preauthorize(preauth(gateway))
    assert answer.approved and answer.amount_approved == Decimal("50.00")
    payment = logic.ledger[answer.psp_reference]
    assert (payment.status, payment.masked_pan, payment.reference) == (
        "authorised", "411111******1111", "S-1")


@pytest.mark.parametrize(("pan", "expiry", "reason"), [
    (DO_NOT_HONOR, "2812", "do_not_honor"),
    (NO_FUNDS, "2812", "insufficient_funds"),
    (MASTERCARD, "2410", "expired_card"),
])
def test_declines(logic, gateway, pan, expiry, reason):
    answer = logic.preauthorize(preauth(gateway, pan, expiry=expiry))
    assert (answer.approved, answer.reason, answer.psp_reference) == (False, reason, None)
    assert logic.ledger == {}


def test_partial_approval_and_custom_rules(gateway):
    logic = BackendLogic(gateway, rules={AMEX_PARTIAL: PanRule(partial=Decimal("20.00")),
                                         MASTERCARD: PanRule(decline="card_not_supported")},
                         clock=FakeClock())
    partial = logic.preauthorize(preauth(gateway, AMEX_PARTIAL))
    assert (partial.approved, partial.amount_approved) == (True, Decimal("20.00"))
    small = logic.preauthorize(preauth(gateway, AMEX_PARTIAL, "S-2", amount="15.00"))
    assert small.amount_approved == Decimal("15.00")
    refused = logic.preauthorize(preauth(gateway, MASTERCARD, "S-3"))
    assert (refused.approved, refused.reason) == (False, "card_not_supported")
    assert logic.preauthorize(preauth(gateway, DO_NOT_HONOR, "S-4")).approved  # no defaults


def test_envelope_for_another_key_or_not_matching_is_refused(logic, gateway):
    other = X25519PrivateKey.generate()
    assert logic.preauthorize(preauth(other)).reason == "invalid_envelope"
    mismatched = preauth(gateway, reference="S-2", masked_pan="555555******4444")
    assert logic.preauthorize(mismatched).reason == "invalid_envelope"
    wrong_token = preauth(gateway, reference="S-3", token="k1." + "0" * 40)
    assert logic.preauthorize(wrong_token).reason == "invalid_envelope"
    wrong_station = preauth(gateway, reference="S-4", station_id="OTHER")
    assert logic.preauthorize(wrong_station).reason == "invalid_envelope"
    assert logic.preauthorize(preauth(gateway, reference="S-5")).approved
    assert logic.pan_leaks == []


def test_card_number_in_the_clear_is_detected(logic, gateway):
    leaky = preauth(gateway, scheme=f"visa {VISA}")
    answer = logic.preauthorize(leaky)
    assert (answer.approved, answer.reason) == (False, "pan_in_clear")
    assert logic.pan_leaks == ["S-1"]


def test_card_number_is_never_logged_recorded_or_answered(logic, gateway, caplog):
    caplog.set_level(logging.DEBUG, logger="evterm")
    answers = [logic.preauthorize(preauth(gateway, pan, f"S-{i}"))
               for i, pan in enumerate((VISA, DO_NOT_HONOR, AMEX_PARTIAL))]
    psp = answers[0].psp_reference
    logic.capture(CaptureRequest("S-0", psp, Decimal("10.00"), "EUR"))
    logic.refund(psp, Decimal("1.00"))
    logic.preauthorize(preauth(X25519PrivateKey.generate(), VISA, "S-9"))
    everything = json.dumps([logic.received_json(), [p.to_json() for p in
                             logic.ledger.values()], [a.to_json() for a in answers]])
    log_text = "\n".join(KeyValueFormatter().format(record) for record in caplog.records)
    everything += log_text
    assert "masked_pan=411111******1111" in log_text  # the masked PAN is logged
    for pan in (VISA, DO_NOT_HONOR, AMEX_PARTIAL):
        assert pan not in everything


# ---- ledger --------------------------------------------------------------------------------


def test_capture_rules_and_idempotency(logic, gateway):
    psp = logic.preauthorize(preauth(gateway, AMEX_PARTIAL)).psp_reference  # 20.00 approved
    above = logic.capture(CaptureRequest("C-1", psp, Decimal("20.01"), "EUR"))
    assert (above.ok, above.reason) == (False, "amount_above_authorised")
    other_currency = logic.capture(CaptureRequest("C-2", psp, Decimal("5"), "USD"))
    assert other_currency.reason == "currency_mismatch"
    ok = logic.capture(CaptureRequest("C-3", psp, Decimal("19.99"), "EUR"))
    assert ok == CaptureResponse(True)
    again = logic.capture(CaptureRequest("C-3", psp, Decimal("19.99"), "EUR"))
    assert again == ok  # same reference -> same answer, captured once
    assert logic.ledger[psp].captured == Decimal("19.99")
    second = logic.capture(CaptureRequest("C-4", psp, Decimal("1.00"), "EUR"))
    assert (second.ok, second.reason) == (False, "already_captured")
    unknown = logic.capture(CaptureRequest("C-5", "PSP-NOPE", Decimal("1.00"), "EUR"))
    assert unknown.reason == "unknown_payment"
    assert logic.void(VoidRequest("V-1", psp)).reason == "already_captured"


def test_void_is_idempotent_and_blocks_capture(logic, gateway):
    psp = logic.preauthorize(preauth(gateway)).psp_reference
    assert logic.void(VoidRequest("V-1", psp)).ok
    assert logic.void(VoidRequest("V-1", psp)).ok
    assert logic.ledger[psp].status == "voided"
    assert logic.capture(CaptureRequest("C-1", psp, Decimal("1"), "EUR")).reason == (
        "already_voided")
    assert logic.void(VoidRequest("V-2", "PSP-NOPE")).reason == "unknown_payment"
    assert logic.duplicates == 1


def test_a_void_without_psp_reference_finds_the_payment_by_our_reference(logic, gateway):
    psp = logic.preauthorize(preauth(gateway, reference="S-9")).psp_reference
    assert logic.void(VoidRequest("S-9", None)).ok  # the terminal never heard the answer
    assert logic.ledger[psp].status == "voided"
    assert logic.void(VoidRequest("S-8", None)).ok  # never reserved: nothing to release


def test_refund_ledger_partial_then_full(logic, gateway):
    psp = logic.preauthorize(preauth(gateway)).psp_reference
    with pytest.raises(LedgerError, match="not captured"):
        logic.refund(psp)
    logic.capture(CaptureRequest("S-1", psp, Decimal("30.00"), "EUR"))
    partial = logic.refund(psp, Decimal("10.00"), "goodwill")
    assert (partial.amount, partial.reference, partial.currency, partial.reason) == (
        Decimal("10.00"), "S-1", "EUR", "goodwill")
    assert logic.ledger[psp].status == "partially_refunded"
    with pytest.raises(LedgerError, match=r"at most 20\.00"):
        logic.refund(psp, Decimal("20.01"))
    rest = logic.refund(psp)
    assert rest.amount == Decimal("20.00")
    assert rest.refund_id != partial.refund_id
    assert logic.ledger[psp].status == "refunded"
    assert logic.ledger[psp].refunds == [partial.refund_id, rest.refund_id]
    with pytest.raises(LedgerError):
        logic.refund(psp, Decimal("0.01"))
    with pytest.raises(LedgerError, match="no such payment"):
        logic.refund("PSP-NOPE")


def test_received_messages_are_deduplicated_by_reference(logic, gateway):
    first = logic.preauthorize(preauth(gateway))
    repeat = logic.preauthorize(preauth(gateway))  # a retry after a reconnect: new envelope
    assert repeat == first
    assert len(logic.ledger) == 1
    psp = first.psp_reference
    logic.capture(CaptureRequest("S-1", psp, Decimal("5"), "EUR"))
    logic.capture(CaptureRequest("S-1", psp, Decimal("5"), "EUR"))
    assert [(m["op"], m["key"], m["count"]) for m in logic.received_json()] == [
        ("preauthorize", "S-1", 2), ("capture", "S-1", 2)]
    assert logic.duplicates == 2


def test_handle_parses_and_answers_json(logic, gateway):
    answer = logic.handle("preauthorize", preauth(gateway).to_json())
    assert answer["approved"] is True and answer["amount_approved"] == "50.00"
    with pytest.raises(MessageError, match=r"CaptureRequest\.amount"):
        logic.handle("capture", {"reference": "S-1", "psp_reference": "P", "amount": 1.5,
                                 "currency": "EUR"})
    with pytest.raises(ValueError, match="unknown op 'refund'"):
        logic.handle("refund", {})


def test_local_list_from_the_token_list(logic):
    update = logic.local_list()
    assert (update.version, update.update_type, len(update.entries)) == (1, "Full", 4)
    assert logic.local_list("Differential", [LocalListEntry("04BB", None)]).version == 2


# ---- keys and files ------------------------------------------------------------------------


def test_generated_keys_open_what_the_terminal_seals(tmp_path):
    from terminal.payment.crypto import load_gateway_key

    private, public = generate_gateway_keys(tmp_path / "keys")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_gateway_private_key(private)
    logic = BackendLogic(key, clock=FakeClock())
    card = CardData(VISA, "2812")
    request = preauth(key, envelope=seal(card, load_gateway_key(public), STATION, "S-1"))
    assert logic.preauthorize(request).approved
    with pytest.raises(ValueError, match="not an unencrypted PEM private key"):
        load_gateway_private_key(public)


def test_token_and_rule_files(tmp_path):
    tokens = tmp_path / "tokens.json"
    tokens.write_text(json.dumps([{"id_token": "04AA", "status": "Accepted",
                                   "cost_cap": "12.00"}]))
    assert load_tokens(tokens)[0].cost_cap == Decimal("12.00")
    tokens.write_text(json.dumps({"tokens": [{"id_token": "04AA", "status": "Nope"}]}))
    with pytest.raises(ValueError, match=r"entry 0: LocalListEntry\.status"):
        load_tokens(tokens)
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({DO_NOT_HONOR: {"approve": True},
                                 MASTERCARD: {"decline": "card_not_supported"}}))
    loaded = load_rules(rules)
    assert loaded[DO_NOT_HONOR] == PanRule()
    assert loaded[MASTERCARD].decline == "card_not_supported"
    assert loaded[NO_FUNDS].decline == "insufficient_funds"
    rules.write_text(json.dumps({VISA: {"decline": "because"}}))
    with pytest.raises(ValueError, match="rule 0") as info:
        load_rules(rules)
    assert VISA not in str(info.value)


# ---- message JSON --------------------------------------------------------------------------

NOW = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)


def all_messages(gateway: X25519PrivateKey) -> list:
    return [
        TokenAuthRequest("04AABBCCDD", "ISO14443", STATION),
        TokenAuthResponse(AuthStatus.ACCEPTED, NOW, "G", Decimal("25.00"), Decimal("30000"),
                          TARIFF, True, "Welcome"),
        TokenAuthResponse(AuthStatus.UNKNOWN),
        preauth(gateway),
        PreauthResponse(True, "PSP-1", Decimal("20.00")),
        PreauthResponse(False, reason="do_not_honor"),
        CaptureRequest("S-1", "PSP-1", Decimal("0"), "EUR"),
        VoidRequest("S-1", "PSP-1"),
        CaptureResponse(True),
        CaptureResponse(False, "amount_above_authorised"),
        Refund("RF-1", "PSP-1", "S-1", Decimal("3.50"), "EUR", "goodwill"),
        LocalListUpdate(7, "Differential", (
            LocalListEntry("A", AuthStatus.ACCEPTED, NOW, "G", Decimal("5"), Decimal("1000"),
                           TARIFF, True),
            LocalListEntry("B", None))),
    ]


def test_json_round_trips(gateway):
    for message in all_messages(gateway):
        wire = json.loads(json.dumps(message.to_json()))
        assert type(message).from_json(wire) == message, type(message).__name__


def test_removed_status_and_money_as_text():
    update = LocalListUpdate.from_json({"version": 2, "update_type": "Differential",
                                        "entries": [{"id_token": "A", "status": "Removed"}]})
    assert update.entries[0].status is None
    response = TokenAuthResponse(AuthStatus.ACCEPTED, cost_cap=Decimal("0.10"))
    assert response.to_json()["cost_cap"] == "0.10"


@pytest.mark.parametrize(("cls", "data", "field"), [
    (TokenAuthRequest, {"token_type": "ISO14443", "station_id": "S"}, "TokenAuthRequest.id_token"),
    (TokenAuthRequest, {"id_token": "A", "token_type": "Card", "station_id": "S"},
     "TokenAuthRequest.token_type"),
    (TokenAuthResponse, {"status": "Maybe"}, "TokenAuthResponse.status"),
    (TokenAuthResponse, {"status": "Accepted", "cost_cap": 12.5}, "TokenAuthResponse.cost_cap"),
    (TokenAuthResponse, {"status": "Accepted", "cache_expiry": "2026-11-21T10:00:00"},
     "TokenAuthResponse.cache_expiry"),
    (TokenAuthResponse, {"status": "Accepted", "technician": "yes"},
     "TokenAuthResponse.technician"),
    (TokenAuthResponse, {"status": "Accepted", "tariff": {"currency": "EUR"}},
     "TokenAuthResponse.tariff"),
    (PreauthResponse, {"approved": True, "amount_approved": "5"},
     "PreauthResponse.psp_reference"),
    (PreauthResponse, {"approved": False}, "PreauthResponse.reason"),
    (CaptureRequest, {"reference": "R", "psp_reference": "P", "amount": "-1", "currency": "EUR"},
     "CaptureRequest.amount"),
    (CaptureRequest, {"reference": "R", "psp_reference": "P", "amount": "1", "currency": "eur"},
     "CaptureRequest.currency"),
    (VoidRequest, {"reference": "R", "psp_reference": 7}, "VoidRequest.psp_reference"),
    (CaptureResponse, {"ok": False}, "CaptureResponse.reason"),
    (Refund, {"refund_id": "F", "psp_reference": "P", "reference": "R", "amount": "x",
              "currency": "EUR"}, "Refund.amount"),
    (LocalListUpdate, {"version": 0, "update_type": "Full", "entries": []},
     "LocalListUpdate.version"),
    (LocalListUpdate, {"version": 1, "update_type": "Full", "entries": [{"id_token": "A"}]},
     "LocalListUpdate.entries[0].status"),
    (LocalListUpdate, {"version": 1, "update_type": "Full", "entries": [
        {"id_token": "A", "status": "Accepted", "expiry": "soon"}]},
     "LocalListUpdate.entries[0].expiry"),
    (LocalListUpdate, {"version": 1, "update_type": "Differential", "entries": [
        {"id_token": "A", "status": "Accepted"}, {"id_token": "A", "status": "Blocked"}]},
     "LocalListUpdate.entries[1].id_token"),
    (LocalListUpdate, {"version": 1, "update_type": "Full", "entries": "A"},
     "LocalListUpdate.entries"),
])
def test_validation_errors_name_the_field(cls, data, field):
    with pytest.raises(MessageError) as info:
        cls.from_json(data)
    assert info.value.field == field
    assert str(info.value).startswith(field + ":")


def test_preauth_request_refuses_card_numbers_without_repeating_them(gateway):
    good = preauth(gateway).to_json()
    for key, value in (("masked_pan", VISA), ("token", VISA), ("masked_pan", "4111111111**1111"),
                       ("reference", "S-2")):
        with pytest.raises(MessageError) as info:
            PreauthRequest.from_json({**good, key: value})
        assert VISA not in str(info.value)
        where = "envelope.reference" if key == "reference" else key
        assert info.value.field == f"PreauthRequest.{where}"
    assert "envelope" not in repr(preauth(gateway))


def test_driver_messages_in_every_language():
    assert driver_message("do_not_honor", "en") == "Card declined by your bank"
    assert driver_message("card_not_supported", "fr") == "Carte non acceptée ici"
    assert driver_message("Blocked", "de") == "Diese Karte ist gesperrt"
    assert driver_message("expired_card", "nl") == "Deze kaart is verlopen"
    assert driver_message("unknown", "en") == "Card unknown"
    assert driver_message("something_new", "de") == "Karte hier nicht akzeptiert"
    assert driver_message("blocked", "xx") == "This card is blocked"
    for code in DRIVER_MESSAGE_CODES:
        texts = {driver_message(code, language) for language in LANGUAGES}
        assert len(texts) == len(LANGUAGES), code


def test_backend_factory():
    none = create_backend(BackendConfig(), STATION)
    assert isinstance(none, OfflineBackend) and not none.online
    with pytest.raises(BackendUnavailable, match="kind = none"):
        asyncio.run(none.authorize_token(TokenAuthRequest("04AA", "ISO14443", STATION)))
    loopback = create_backend(BackendConfig(kind="loopback", socket_path="/tmp/x.sock",
                                            request_timeout_s=3.0), STATION)
    assert isinstance(loopback, LoopbackBackend)
    assert (loopback.socket_path, loopback.request_timeout_s) == ("/tmp/x.sock", 3.0)
    with pytest.raises(ValueError, match=r"backend\.socket_path"):
        create_backend(BackendConfig(kind="loopback"), STATION)
    # not started: offline, and a request fails at once
    with pytest.raises(BackendUnavailable, match="offline"):
        asyncio.run(loopback.void(VoidRequest("S-1", "PSP-1")))
