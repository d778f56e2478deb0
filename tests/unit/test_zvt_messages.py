"""The ZVT messages (drivers/zvt/messages.py, results.py, codes.py) against real
terminals' bytes published in Portalum/Portalum.Zvt's unit tests
(src/Portalum.Zvt.UnitTest/StatusInformationParserTest.cs, PrintLineTest.cs,
PrintTextBlockTest.cs) and the command layouts of the ZVT specification (PA00P015)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from drivers.zvt import codes
from drivers.zvt import messages as m
from drivers.zvt.apdu import ApduError, decode_apdu
from drivers.zvt.results import TerminalStatus, result_from

H = bytes.fromhex


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace("-", "").replace(" ", ""))


# Portalum StatusInformationParserTest.Parse_PaymentGood1_Successful
PAYMENT_GOOD = _hex(
    "04-0F-77-27-00-04-00-00-00-00-20-40-0B-00-04-70-0C-22-39-53-0D-10-06-0E-25-12-17-00-01"
    "-19-70-22-F0-F8-EE-EE-EE-EE-EE-EE-47-71-29-28-00-48-69-2A-31-30-30-34-36-31-37-36-33"
    "-20-20-20-20-20-20-3B-36-31-31-38-30-34-00-00-3C-F0-F1-F4-47-45-4E-2E-4E-52-2E-3A-36"
    "-31-31-38-30-34-49-09-78-87-04-70-88-00-04-70-8A-2E-8B-F1-F7-44-65-62-69-74-20-4D-61"
    "-73-74-65-72-63-61-72-64-00")
# Parse_AbortByKey_Successful
ABORT_BY_KEY = _hex(
    "04-0F-1E-27-6C-29-28-00-48-69-3C-F0-F1-F9-41-62-62-72-75-63-68-20-64-75-72-63-68-20"
    "-4B-75-6E-64-65")
# Parse_TlvInfos1_Successful
TLV_INFOS = _hex(
    "04-0F-65-27-00-0C-23-13-55-0D-10-29-0E-99-99-22-F0-F8-EE-EE-EE-EE-EE-EE-47-71-A0-01-29"
    "-00-00-00-06-87-00-08-0B-00-00-00-8A-06-8B-F1-F1-4D-41-53-54-45-52-43-41-52-44-00-06"
    "-2E-2F-08-1F-12-01-02-1F-10-01-00-60-1B-43-07-A0-00-00-00-04-10-10-44-10-44-65-62-69"
    "-74-20-4D-61-73-74-65-72-63-61-72-64-1F-2B-04-10-01-50-08")


def test_status_information_of_an_approved_payment() -> None:
    apdu = decode_apdu(PAYMENT_GOOD)
    assert apdu.command == m.STATUS_INFO
    info = m.parse_status_info(apdu.data)
    assert info.result_code == 0
    assert info.amount_minor == 2040
    assert info.trace_number == 470 and info.receipt_number == 470
    assert info.turnover_number == 470
    assert (info.time, info.date, info.expiry) == ("223953", "1006", "2512")
    assert info.card_sequence == 1 and info.payment_type == 0x70
    assert info.masked_pan == "************4771"
    assert info.terminal_id == 28004869
    assert info.vu_number == "100461763"
    assert info.aid == "611804"
    assert info.additional_text == "GEN.NR.:611804"
    assert info.currency_numeric == 978
    assert info.card_type == 0x2E and codes.card_type_name(info.card_type) == "Maestro"
    assert info.card_name == "Debit Mastercard"


def test_status_information_of_an_abort_by_the_customer() -> None:
    info = m.parse_status_info(decode_apdu(ABORT_BY_KEY).data)
    assert info.result_code == codes.ABORTED
    assert codes.result_text(info.result_code) == "abort via timeout or abort-key"
    assert info.additional_text == "Abbruch durch Kunde"
    assert info.terminal_id == 28004869 and info.amount_minor is None


def test_status_information_with_a_tlv_container() -> None:
    info = m.parse_status_info(decode_apdu(TLV_INFOS).data)
    assert info.card_name == "MASTERCARD" and info.card_type == 0x06
    assert info.terminal_id == 6 and info.receipt_number == 8
    assert info.result_code_as == 0x01 and info.expiry == "9999"
    assert [o.tag for o in info.tlv] == ["2F", "60", "1F2B"]


def test_status_information_round_trip_of_every_field() -> None:
    totals = m.Totals(3, 9, {**dict.fromkeys(m.TOTAL_GROUPS, 0), "Visa": 2},
                      {**dict.fromkeys(m.TOTAL_GROUPS, 0), "Visa": 4321})
    info = m.StatusInfo(result_code=0, amount_minor=1234, currency_numeric=978,
                        trace_number=12, original_trace=11, receipt_number=7,
                        turnover_number=99, time="101112", date="1203", expiry="2812",
                        card_sequence=1, payment_type=0x60, masked_pan="************0010",
                        terminal_id=29001006, vu_number="SIMVU", aid="AB12",
                        additional_text="GENEHMIGT", card_type=0x0A, card_name="Visa",
                        card_type_id=3, result_code_as=0, aid_parameter="A000000003",
                        totals=totals)
    assert m.parse_status_info(info.encode()) == info


def test_status_information_with_bad_bcd_is_named() -> None:
    with pytest.raises(ApduError, match="BMP 04"):
        m.parse_status_info(H("27 00 04 0000000020AB".replace(" ", "")))
    with pytest.raises(ApduError, match="BMP 60: 5 bytes"):
        m.parse_status_info(H("60F0F0F5") + bytes(5))


def test_print_lines_of_a_real_terminal() -> None:
    # Portalum PrintLineTest: plain, with the receipt-type TLV after the text, last line
    line = decode_apdu(_hex("06-D1-19-00-54-65-72-6D-69-6E-61-6C-2D-49-44-3A-20-20-20-20"
                            "-32-38-30-30-34-38-36-39"))
    assert m.parse_print_line(line.data) == (0x00, "Terminal-ID:    28004869")
    tagged = decode_apdu(_hex("06-D1-0E-40-56-45-52-4B-41-55-46-06-04-1F-07-01-01"))
    assert m.parse_print_line(tagged.data) == (0x40, "VERKAUF")
    last = decode_apdu(_hex("06-D1-01-81"))
    assert m.parse_print_line(last.data) == (m.LAST_LINE, "")


def test_print_text_block_of_a_real_terminal() -> None:
    # Portalum PrintTextBlockTest.Parse_AdministrationReceipt_Successful (CP437 text)
    block = decode_apdu(_hex(
        "06-D3-AC-06-81-A9-1F-07-01-03-25-81-A2-07-1B-30-32-2E-31-31-2E-32-30-32-31-20-20-20"
        "-20-20-20-20-20-20-31-37-3A-30-35-3A-30-32-07-0C-54-49-44-3A-41-48-30-30-30-30-30-36"
        "-07-14-41-62-73-63-68-6C-75-73-73-20-2D-20-6B-65-69-6E-65-20-54-58-07-19-20-41-56-3A"
        "-20-2B-30-34-2E-30-37-20-28-4A-75-6E-20-31-31-20-32-30-32-31-29-07-1B-54-49-3A-20-45"
        "-20-44-54-3A-20-30-2F-30-2F-20-4F-46-3A-20-30-2F-30-2F-20-43-47-3A-07-0F-20-20-20-20"
        "-20-20-20-20-20-20-20-31-2F-30-2F-07-01-20-07-01-20-07-01-20-07-01-20-07-01-20-07-01"
        "-20-07-01-20-09-01-81"))
    receipt_type, lines = m.parse_print_block(block.data)
    assert receipt_type == "administration"
    assert lines[1] == "TID:AH000006" and lines[2] == "Abschluss - keine TX"
    assert len(lines) == 13


def test_print_text_block_round_trip_with_umlauts() -> None:
    apdu = m.print_block(["HÄNDLERBELEG", "BETRAG EUR 1,00"], 1)
    assert m.parse_print_block(decode_apdu(apdu.encode()).data) == (
        "merchant", ["HÄNDLERBELEG", "BETRAG EUR 1,00"])
    assert "8E" in apdu.data.hex().upper()  # Ä in CP437, the ZVT character set


def test_the_ecr_commands_bytes() -> None:
    assert m.registration(0, 0xBA, 978).encode() == H("060006000000BA0978")
    assert m.registration(123456, 0x3E, 978, 0x01).encode() == H("060008123456" "3E0978" "0301")
    assert m.preauth(5000, 978).encode() == H("06220A" "04000000005000" "490978")
    assert m.book_total(12, 1234).encode() == H("06240A" "870012" "04000000001234")
    assert m.book_total(12, 1234, 7).encode() == H("06240E870012040000000012340B000007")
    assert m.partial_reversal(12, 100).encode() == H("06230A" "870012" "04000000000100")
    assert m.reversal(0, 12).encode() == H("063006" "000000" "870012")
    assert m.password_only(m.STATUS_ENQUIRY, 0).encode() == H("050103000000")
    assert m.password_only(m.END_OF_DAY, 0).encode() == H("065003000000")
    assert m.abort_request().encode() == H("06B000")
    assert m.abort(0x6C).encode() == H("061E016C")
    assert m.completion(0, 29001006).encode() == H("060F07" "1900" "2929001006")


def test_a_password_that_is_not_6_digits_is_named() -> None:
    with pytest.raises(ApduError, match="password: expected 6 digits"):
        m.registration(1234567, 0)


@pytest.mark.parametrize(("data", "expected"), [
    ("0A", (0x0A, None)), ("1705", (0x17, 5)), ("0E00", (0x0E, None)),
    ("0A06041F070101", (0x0A, None)),   # a TLV container, no timeout
])
def test_intermediate_status(data: str, expected: tuple) -> None:
    assert m.parse_intermediate(H(data)) == expected


def test_intermediate_texts() -> None:
    assert codes.intermediate_text(0x0A) == "insert card"
    assert codes.intermediate_text(0x0B) == "please remove card"
    assert codes.intermediate_text(0x99) == "intermediate status 99"


@pytest.mark.parametrize(("code", "text"), [
    (0x00, "approved (no error)"),
    (0x05, "declined by the card issuer (do not honour)"),
    (0x33, "declined by the authorisation system (host code 33)"),
    (0x64, "card not readable (LRC-/parity-error)"),
    (0x6C, "abort via timeout or abort-key"),
    (0x9C, "please wait (repeat the request later)"),
    (0xB4, "already reversed"),
    (0xFF, "system error (other/unknown error)"),
    (0x8F, "unknown result code 8F"),
])
def test_result_code_texts(code: int, text: str) -> None:
    assert codes.result_text(code) == text


def test_end_of_day_totals_layout() -> None:
    counts = dict.fromkeys(m.TOTAL_GROUPS, 0) | {"girocard": 2, "Visa": 1}
    amounts = dict.fromkeys(m.TOTAL_GROUPS, 0) | {"girocard": 3050, "Visa": 1234}
    data = m.Totals(1, 3, counts, amounts).encode()
    assert len(data) == 53
    assert data[:4] == H("00010003")
    assert data[4:11] == H("02" "000000003050")            # girocard first
    assert data[4 + 7 * 4: 4 + 7 * 5] == H("01" "000000001234")  # Visa fifth
    totals = m.Totals.decode(data)
    assert totals.total_count == 3 and totals.total_minor == 4284
    assert m.total_group(0x0A) == "Visa" and m.total_group(0x2E) == "other"


def test_result_from_a_status_information() -> None:
    info = m.parse_status_info(decode_apdu(PAYMENT_GOOD).data)
    result = result_from("pre-authorisation", "EUR", info, None, ["A", "B"], ["insert card"])
    assert result.approved and result.amount == Decimal("20.40")
    assert result.receipt_number == 470 and result.trace_number == 470
    assert result.masked_pan == "************4771" and result.card_type_name == "Maestro"
    assert result.receipt_lines == ("A", "B") and result.intermediate == ("insert card",)
    aborted = result_from("pre-authorisation", "EUR", info, 0x6C, [], [])
    assert not aborted.approved and aborted.result_text == "abort via timeout or abort-key"
    nothing = result_from("pre-authorisation", "EUR", None, 0x64, [], [])
    assert nothing.amount is None and nothing.result_code == 0x64


def test_terminal_status() -> None:
    assert TerminalStatus(0).ready and TerminalStatus(0).text == "PT ready"
    assert not TerminalStatus(0xDF).ready and TerminalStatus(0xDF).text == "out-of-order"
