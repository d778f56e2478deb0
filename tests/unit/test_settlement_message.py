"""NotifySettlement (terminal.backend.settlement): OCPP 2.1 field names, the schema's
limits, the amount as an exact JSON number, the VAT number's form, and what each final
payment status reports (terminal.store.settlements)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from terminal.backend.messages import MessageError
from terminal.backend.settlement import (
    FIELDS,
    KIND,
    NotifySettlement,
    SettlementStatus,
    amount_json,
)
from terminal.kernel.vat import VatNumberError, check_vat_number
from terminal.store import PaymentStatus
from terminal.store.settlements import SETTLEMENT_OF, settlement_key, settlement_message

D = Decimal
AT = datetime(2026, 12, 3, 9, 30, 5, 123000, tzinfo=UTC)
SESSION = "0b7e1c7e-2f0c-4c52-9a0e-5d2b1f3c4a10"  # a uuid4: 36 characters


def settled(**changes: Any) -> NotifySettlement:
    values: dict[str, Any] = dict(
        psp_ref="PSP-1A2B", status=SettlementStatus.SETTLED, settlement_amount=D("12.34"),
        settlement_time=AT, reference=f"{SESSION}:pay", currency="EUR",
        transaction_id=SESSION, receipt_id=SESSION,
        receipt_url="https://receipts.example/r/abc")
    values.update(changes)
    return NotifySettlement(**values)


def wire(message: NotifySettlement) -> dict[str, Any]:
    """What the backend gets: the payload through JSON text and back."""
    return json.loads(json.dumps(message.to_json(), sort_keys=True))


def test_the_message_has_ocpp_21_names_and_leaves_out_what_is_absent():
    data = wire(settled())
    assert KIND == "NotifySettlement"
    assert data == {
        "pspRef": "PSP-1A2B", "status": "Settled", "settlementAmount": 12.34,
        "settlementTime": "2026-12-03T09:30:05.123Z", "transactionId": SESSION,
        "receiptId": SESSION, "receiptUrl": "https://receipts.example/r/abc",
        "customData": {"vendorId": "org.evterm", "reference": f"{SESSION}:pay",
                       "currency": "EUR"},
    }
    assert set(data) <= set(FIELDS)
    assert None not in data.values()  # optional fields are absent, never null
    assert NotifySettlement.from_json(data) == settled()


@pytest.mark.parametrize("amount", ["0", "0.01", "12.34", "12.30", "50", "999999999.99",
                                    "123456789.123456"])
def test_the_amount_is_a_json_number_that_reads_back_as_the_same_decimal(amount):
    message = settled(settlement_amount=D(amount))
    number = wire(message)["settlementAmount"]
    assert isinstance(number, int | float) and not isinstance(number, bool)
    assert NotifySettlement.from_json(wire(message)).settlement_amount == D(amount)
    assert amount_json(D("50.00")) == 50 and isinstance(amount_json(D("50.00")), int)


@pytest.mark.parametrize(("changes", "field"), [
    ({"psp_ref": ""}, "pspRef"),
    ({"psp_ref": "P" * 256}, "pspRef"),
    ({"transaction_id": "T" * 37}, "transactionId"),
    ({"status_info": "x" * 501}, "statusInfo"),
    ({"receipt_id": "R" * 51}, "receiptId"),
    ({"receipt_url": "https://x/" + "a" * 1991}, "receiptUrl"),
    ({"status": "Paid"}, "status"),
    ({"settlement_amount": D("-0.01")}, "settlementAmount"),
    ({"settlement_amount": D("NaN")}, "settlementAmount"),
    ({"settlement_amount": 12.34}, "settlementAmount"),
    ({"settlement_amount": D("1234567.1234567891")}, "settlementAmount"),
    ({"settlement_time": datetime(2026, 12, 3, 9, 30)}, "settlementTime"),
    ({"vat_number": "123456789"}, "vatNumber"),
    ({"vat_number": "DE" + "1" * 19}, "vatNumber"),
    ({"currency": "euro"}, "customData.currency"),
    ({"reference": ""}, "customData.reference"),
    ({"status": SettlementStatus.CANCELED}, "settlementAmount"),  # 12.34 canceled
])
def test_a_value_outside_the_schema_is_refused_naming_the_field(changes, field):
    with pytest.raises(MessageError) as caught:
        settled(**changes)
    assert caught.value.field == f"NotifySettlement.{field}"


def test_the_limits_themselves_are_allowed():
    message = settled(psp_ref="P" * 255, transaction_id="T" * 36, status_info="x" * 500,
                      receipt_id="R" * 50, receipt_url="https://x/" + "a" * 1990,
                      vat_number="DE" + "1" * 18)
    assert NotifySettlement.from_json(wire(message)) == message


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.pop("pspRef"), "pspRef"),
    (lambda d: d.pop("settlementTime"), "settlementTime"),
    (lambda d: d.update(settlementTime="yesterday"), "settlementTime"),
    (lambda d: d.update(settlementTime="2026-12-03T09:30:05"), "settlementTime"),
    (lambda d: d.update(settlementAmount="12.34"), "settlementAmount"),
    (lambda d: d.update(settlementAmount=True), "settlementAmount"),
    (lambda d: d.update(status="settled"), "status"),
    (lambda d: d.update(pspReference="PSP-1"), "pspReference"),
    (lambda d: d.update(vatCompany={"name": "X"}), "vatCompany"),
    (lambda d: d.update(customData={"reference": "r", "currency": "EUR"}),
     "customData.vendorId"),
    (lambda d: d.pop("customData"), "customData"),
])
def test_a_received_message_is_checked_like_the_schema(mutate, field):
    data = wire(settled())
    mutate(data)
    with pytest.raises(MessageError) as caught:
        NotifySettlement.from_json(data)
    assert caught.value.field == f"NotifySettlement.{field}"


@pytest.mark.parametrize(("given", "kept"), [
    ("DE123456789", "DE123456789"), ("de 123 456 789", "DE123456789"),
    ("ATU12345678", "ATU12345678"), ("FR-XX.123456789", "FRXX123456789"),
    ("EL123456789", "EL123456789"), ("NL123456789B01", "NL123456789B01"),
])
def test_a_vat_number_is_a_country_prefix_and_letters_or_digits(given, kept):
    assert check_vat_number(given) == kept
    assert settled(vat_number=given).to_json()["vatNumber"] == kept


@pytest.mark.parametrize("bad", ["", "DE", "D1234", "1234567890", "DE12345678901234567890",
                                 "DE 123/456", None, 12345, "DE1234ß"])
def test_a_vat_number_of_another_form_is_refused_naming_the_field(bad):
    with pytest.raises(VatNumberError) as caught:
        check_vat_number(bad, "body.vat_number")
    assert caught.value.field == "body.vat_number"
    assert "two-letter country prefix" in str(caught.value)


# ---- what each final payment status reports ---------------------------------------------


def row(status: str, **changes: Any) -> dict[str, Any]:
    values = {"reference": f"{SESSION}:pay", "session_id": SESSION, "currency": "EUR",
              "status": status, "psp_reference": "PSP-9", "amount_approved": "50.00",
              "amount_captured": None, "reason": None}
    values.update(changes)
    return values


def test_every_final_status_maps_to_an_ocpp_payment_status():
    assert set(SETTLEMENT_OF) == {PaymentStatus.CAPTURED.value, PaymentStatus.VOIDED.value,
                                  PaymentStatus.DECLINED.value, PaymentStatus.FAILED.value}
    assert set(SETTLEMENT_OF) <= {s.value for s in PaymentStatus}
    assert set(SETTLEMENT_OF.values()) == set(SettlementStatus)


def test_a_capture_settles_the_amount_captured():
    message = settlement_message(row("captured", amount_captured="23.45"), AT,
                                 has_receipt=True, receipt_url="https://r.example/1")
    assert (message.status, message.settlement_amount) == ("Settled", D("23.45"))
    assert (message.psp_ref, message.transaction_id, message.receipt_id) == (
        "PSP-9", SESSION, SESSION)
    assert message.receipt_url == "https://r.example/1" and message.status_info is None
    assert message.vat_number is None and "vatNumber" not in message.to_json()
    assert settlement_key(message.reference, message.status) == f"{SESSION}:pay:settlement:Settled"


def test_a_void_is_canceled_for_nothing_and_says_the_hold_was_released():
    message = settlement_message(row("voided"), AT, has_receipt=False, receipt_url=None)
    assert (message.status, message.settlement_amount) == ("Canceled", D(0))
    assert message.status_info == "hold of 50.00 EUR released"
    assert message.receipt_id is None and message.receipt_url is None
    interrupted = settlement_message(row("voided", psp_reference=None, amount_approved=None,
                                         reason="interrupted"), AT, has_receipt=False,
                                     receipt_url=None)
    assert interrupted.status_info == "hold released (interrupted)"
    assert interrupted.psp_ref == f"{SESSION}:pay"  # the gateway never gave one


def test_a_decline_is_rejected_with_its_reason_and_our_reference():
    message = settlement_message(row("declined", psp_reference=None, amount_approved=None,
                                     reason="do_not_honor"), AT, has_receipt=False,
                                 receipt_url=None)
    assert (message.status, message.settlement_amount) == ("Rejected", D(0))
    assert (message.status_info, message.psp_ref) == ("do_not_honor", f"{SESSION}:pay")


def test_a_failure_reports_the_amount_tried_and_the_reason_without_card_numbers():
    message = settlement_message(
        row("failed", amount_captured="7.10",
            reason="capture refused: amount_above_authorised 4111 1111 1111 1111 " + "x" * 600),
        AT, has_receipt=True, receipt_url="https://r.example/" + "a" * 2000)
    assert (message.status, message.settlement_amount) == ("Failed", D("7.10"))
    assert message.status_info is not None and len(message.status_info) == 500
    assert message.status_info.startswith("capture refused: amount_above_authorised "
                                          "[number removed]")
    assert message.receipt_url is None  # over OCPP's 2000 characters: left out
    void_refused = settlement_message(row("failed", reason="void refused: unknown"), AT,
                                      has_receipt=False, receipt_url=None)
    assert void_refused.settlement_amount == 0


def test_ids_too_long_for_ocpp_are_left_out_rather_than_failing_the_payment():
    long_session = "S" * 40
    message = settlement_message(row("captured", session_id=long_session,
                                     reference="R-1", amount_captured="1.00"),
                                 AT, has_receipt=True, receipt_url=None)
    assert message.transaction_id is None and message.receipt_id is not None
    assert message.receipt_id == long_session  # 40 <= 50
