"""EMV contactless read against the virtual cards: every catalogue card, the selection
rule, 61XX/6CXX, every error reason, the PDOL data, card removal, and fuzzing of the
card's answers (only EmvError/NotEmvCard/CardGone, bounded, no card number in reasons)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.readers import emv
from drivers.readers.emv import (
    CardGone,
    EmvError,
    EmvRead,
    NotEmvCard,
    TerminalParams,
    pdol_data,
    read_emv,
    scheme_of,
    terminal_values,
)
from drivers.readers.tlv import encode
from hw_mocks.cards import (
    EMV_PROFILES,
    RFID_UIDS,
    TEST_PANS,
    EmvApp,
    EmvCard,
    EmvProfile,
    make_card,
    track2,
)

TERMINAL = TerminalParams(country_code="276", currency_code="978", amount_minor=5000)
TODAY = date(2026, 5, 1)
UN = bytes.fromhex("01020304")
LONG_DIGITS = re.compile(r"\d{12,}")
READABLE = [name for name in EMV_PROFILES
            if name not in ("broken-tlv", "unsupported-aid", "phone-6986")]
VISA = "4111111111111111"  # public test numbers only


class Transport:
    """card.apdu with a log, answers replaced by `rules` (first matching predicate) and
    CardGone raised from the `gone_at`-th command on."""

    def __init__(self, card, rules=(), gone_at: int | None = None) -> None:
        self.card = card
        self.rules: list[tuple[Callable[[bytes], bool], bytes]] = list(rules)
        self.gone_at = gone_at
        self.log: list[tuple[bytes, bytes]] = []

    def __call__(self, command: bytes) -> bytes:
        if self.gone_at is not None and len(self.log) >= self.gone_at:
            raise CardGone()
        answer = self.card.apdu(command)
        for match, replacement in self.rules:
            if match(command):
                answer = replacement
                break
        self.log.append((command, answer))
        return answer

    @property
    def commands(self) -> list[str]:
        return [command.hex().upper() for command, _ in self.log]


def ins(code: int, p1: int | None = None) -> Callable[[bytes], bool]:
    return lambda c: c[1] == code and (p1 is None or c[2] == p1)


def is_ppse(command: bytes) -> bool:
    return command[1] == 0xA4 and b"2PAY" in command


def is_select_aid(command: bytes) -> bool:
    return command[1] == 0xA4 and b"2PAY" not in command


def read(card_or_transport, terminal: TerminalParams = TERMINAL, today: date = TODAY) -> EmvRead:
    transport = card_or_transport if isinstance(card_or_transport, Transport) \
        else Transport(card_or_transport)
    return read_emv(transport, terminal, today, unpredictable=lambda n: UN)


def error_of(transport: Transport) -> EmvError:
    with pytest.raises(EmvError) as info:
        read(transport)
    reason = info.value.reason
    assert str(info.value) == reason
    assert not LONG_DIGITS.search(reason), reason
    return info.value


# --- every catalogue card ------------------------------------------------------------------

EXPECTED = {  # name: (scheme, aid, label, expiry)
    "visa": ("visa", "A0000000031010", "VISA CREDIT", "3012"),
    "mastercard": ("mastercard", "A0000000041010", "MASTERCARD", "3012"),
    "amex": ("amex", "A000000025010801", "AMERICAN EXPRESS", "3012"),
    "discover": ("discover", "A0000001523010", "DISCOVER", "3012"),
    "jcb": ("jcb", "A0000000651010", "JCB CREDIT", "3012"),
    "unionpay": ("unionpay", "A000000333010102", "UNIONPAY CREDIT", "3012"),
    "maestro": ("maestro", "A0000000043060", "MAESTRO", "3012"),
    "interac": ("interac", "A0000002771010", "Interac", "3012"),
    "visa-declined": ("visa", "A0000000031010", "VISA CREDIT", "3012"),
    "visa-insufficient": ("visa", "A0000000031010", "VISA CREDIT", "3012"),
    "visa-expired": ("visa", "A0000000031010", "VISA CREDIT", "2212"),
    "mc-maestro": ("mastercard", "A0000000041010", "MASTERCARD", "3012"),
    "visa-61xx": ("visa", "A0000000031010", "VISA CREDIT", "3012"),
    "mastercard-6cxx": ("mastercard", "A0000000041010", "MASTERCARD", "3012"),
    "girocard": ("girocard", "A0000003591010028001", "girocard", "3012"),
    "girocard-ec": ("girocard", "A00000005945430100", "girocard", "3012"),
    "girocard-zka": ("girocard", "D27600002547410100", "girocard", "3012"),
    "girocard-maestro": ("girocard", "A0000003591010028001", "girocard", "3012"),
    "cb": ("cb", "A0000000421010", "CB", "3012"),
    "vpay": ("vpay", "A0000000032020", "V PAY", "3012"),
    "diners": ("discover", "A0000001523010", "DINERS CLUB", "3012"),
}


def test_expected_table_covers_every_readable_card():
    assert sorted(EXPECTED) == sorted(READABLE)


@pytest.mark.parametrize("name", READABLE)
def test_read_every_catalogue_card(name):
    card = make_card(name)
    result = read(card)
    scheme, aid, label, expiry = EXPECTED[name]
    assert result.card.pan == card.pan == TEST_PANS[name]
    assert (result.scheme, result.aid, result.label) == (scheme, aid, label)
    assert result.card.expiry_yymm == expiry
    assert result.card.pan_sequence == "01"
    assert TEST_PANS[name] not in repr(result)
    assert repr(result).startswith("EmvRead(card=CardData(pan='") and scheme in repr(result)


def test_visa_apdu_sequence_and_pdol_data_the_card_saw():
    card = make_card("visa")
    transport = Transport(card)
    read(transport)
    assert transport.commands == [
        "00A404000E325041592E5359532E444446303100",  # SELECT PPSE
        "00A4040007A000000003101000",  # SELECT AID
        "80A8000023832120804000000000005000000000000000027600000000000978260501000102030400",
        "00B2010C00",  # READ RECORD SFI 1 record 1
        "00B2011400",  # SFI 2 record 1
        "00B2021400",  # SFI 2 record 2
    ]
    assert card.gpo_data == bytes.fromhex(
        "20804000"  # 9F66 TTQ
        "000000005000"  # 9F02 amount authorised: 50.00
        "000000000000"  # 9F03 amount other
        "0276"  # 9F1A terminal country: Germany
        "0000000000"  # 95 TVR
        "0978"  # 5F2A currency: EUR
        "260501"  # 9A date
        "00"  # 9C transaction type: purchase
        "01020304"  # 9F37 unpredictable number
    )


def test_pdol_with_terminal_type_and_capabilities_and_unknown_tags():
    mastercard = make_card("mastercard")  # 9F35 01, 9F33 03, 9F40 05
    read(mastercard)
    assert mastercard.gpo_data == bytes.fromhex("24" "000800" "6000000000")
    amex = make_card("amex")  # 9F35 01, 9F6E 04 (unknown: zeros), 9F37 04
    read(amex)
    assert amex.gpo_data == bytes.fromhex("24" "00000000" "01020304")
    maestro = make_card("maestro")  # no PDOL: 83 00
    transport = Transport(maestro)
    read(transport)
    assert transport.commands[2] == "80A80000028300" "00"
    assert maestro.gpo_data == b""


def test_pdol_values_follow_the_terminal_params():
    terminal = TerminalParams("840", "840", 123456789012, ttq=bytes.fromhex("36004000"),
                              terminal_type=0x22)
    values = terminal_values(terminal, datetime(2031, 12, 24, 18, 5, 9), UN)
    data = pdol_data(bytes.fromhex("9F66049F02069F1A025F2A029A039F21039F3501"), values)
    assert data.hex().upper() == "36004000" "123456789012" "0840" "0840" "311224" "180509" "22"
    assert 0x9F21 not in terminal_values(TERMINAL, TODAY, UN)  # a date has no time


def test_numeric_pdol_values_are_right_aligned_to_the_asked_length():
    values = terminal_values(TERMINAL, TODAY, UN)
    # amount asked in 4 bytes: cut on the left; country in 3: padded on the left;
    # TTQ (binary) in 6: padded on the right; unpredictable number in 2: cut on the right
    data = pdol_data(bytes.fromhex("9F02049F1A039F66069F3702"), values)
    assert data.hex().upper() == "00005000" "000276" "208040000000" "0102"


def test_unpredictable_number_defaults_to_random():
    first, second = make_card("visa"), make_card("visa")
    read_emv(first.apdu, TERMINAL, TODAY)
    read_emv(second.apdu, TERMINAL, TODAY)
    assert first.gpo_data[-4:] != second.gpo_data[-4:]  # 1 in 2**32 to fail


# --- selection -------------------------------------------------------------------------------

def custom(apps: tuple[EmvApp, ...], **changes) -> EmvCard:
    return EmvCard("custom", EmvProfile(VISA, "301231", apps, "test", **changes))


def test_mc_maestro_picks_mastercard_by_priority():
    transport = Transport(make_card("mc-maestro"))
    result = read(transport)
    assert result.aid == "A0000000041010" and result.scheme == "mastercard"
    assert transport.commands[1] == "00A4040007A000000004101000"


@pytest.mark.parametrize(
    ("apps", "aid"),
    [
        # no priority (0) goes after any priority
        ((EmvApp("A0000000043060", "M", 0), EmvApp("A0000000031010", "V", 9)), "A0000000031010"),
        # ties keep the card's order
        ((EmvApp("A0000000043060", "M", 3), EmvApp("A0000000031010", "V", 3)), "A0000000043060"),
        ((EmvApp("A0000000031010", "V", 0), EmvApp("A0000000043060", "M", 0)), "A0000000031010"),
        # only the low nibble counts (bit 8: confirmation required)
        ((EmvApp("A0000000043060", "M", 0x82), EmvApp("A0000000031010", "V", 0x03)),
         "A0000000043060"),
        # an unknown application listed first is skipped
        ((EmvApp("F0000000010001", "S", 1), EmvApp("A0000000031010", "V", 5)),
         "A0000000031010"),
    ],
)
def test_application_selection_rule(apps, aid):
    assert read(custom(apps)).aid == aid


def test_application_the_card_refuses_is_dropped_for_the_next():
    card = make_card("mc-maestro")
    transport = Transport(card, [(lambda c: c[1] == 0xA4 and b"\x04\x10\x10" in c, b"\x62\x83")])
    result = read(transport)
    assert result.scheme == "maestro" and result.aid == "A0000000043060"
    only = Transport(make_card("mastercard"), [(is_select_aid, b"\x6a\x82")])
    assert error_of(only).reason == "SELECT AID: status 6A82"


@pytest.mark.parametrize(
    ("aid", "scheme"),
    [
        ("A0000000031010", "visa"), ("A0000000032010", "visa"), ("A0000000032020", "vpay"),
        ("A0000000041010", "mastercard"), ("A0000000043060", "maestro"),
        ("A00000002501", "amex"), ("A000000025010402", "amex"),
        ("A0000001523010", "discover"), ("A0000001524010", "discover"),
        ("A0000000651010", "jcb"), ("A000000333010101", "unionpay"),
        ("A000000333010102", "unionpay"), ("A000000333010103", "unionpay"),
        ("A0000002771010", "interac"), ("A0000000031010FF01", "visa"),
        ("A0000000041020", None), ("A000000333010104", None), ("F0000000010001", None),
        ("A00000000310", None),
        # girocard, CB, Maestro UK, Discover Zip
        ("A0000003591010028001", "girocard"), ("A00000005945430100", "girocard"),
        ("D27600002547410100", "girocard"), ("A0000000421010", "cb"),
        ("A0000000422010", "cb"), ("A0000000050001", "maestro"),
        ("A0000003241010", "discover"),
    ],
)
def test_scheme_of_aid(aid, scheme):
    assert scheme_of(bytes.fromhex(aid)) == scheme


def test_label_falls_back_to_preferred_name_then_ppse_and_drops_digit_runs():
    card = make_card("visa")
    fci = encode(0x6F, encode(0x84, bytes.fromhex(card.aid)) + encode(
        0xA5, encode(0x9F12, b" Visa Preferred\x01 ") + encode(0x9F38, bytes.fromhex(
            EMV_PROFILES["visa"].pdol))))
    assert read(Transport(card, [(is_select_aid, fci + b"\x90\x00")])).label == "Visa Preferred"
    no_label = encode(0x6F, encode(0x84, bytes.fromhex(card.aid)) + encode(
        0xA5, encode(0x9F38, bytes.fromhex(EMV_PROFILES["visa"].pdol))))
    card = make_card("visa")
    assert read(Transport(card, [(is_select_aid, no_label + b"\x90\x00")])).label == \
        "VISA CREDIT"  # from the PPSE entry
    smuggled = encode(0x6F, encode(0x84, bytes.fromhex(card.aid)) + encode(
        0xA5, encode(0x50, f"PAY {VISA}".encode()) + encode(
            0x9F38, bytes.fromhex(EMV_PROFILES["visa"].pdol))))
    card = make_card("visa")
    ppse = card.apdu(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
    ppse = ppse.replace(b"VISA CREDIT", b"VISA 123456")
    result = read(Transport(card, [(is_select_aid, smuggled + b"\x90\x00"), (is_ppse, ppse)]))
    assert result.label == ""


# --- status words ------------------------------------------------------------------------------

def test_61xx_data_only_through_get_response():
    card = make_card("visa-61xx")
    transport = Transport(card)
    result = read(transport)
    assert result.card.pan == TEST_PANS["visa-61xx"]
    get_responses = [c for c in transport.commands if c.startswith("00C00000")]
    assert len(get_responses) >= 6  # SELECT AID, GPO and 3 records; the GPO answer is chunked
    assert all(answer[-2] == 0x61 for command, answer in transport.log
               if command[1] in (0xA8, 0xB2))


def test_6cxx_resends_with_the_exact_le():
    card = make_card("mastercard-6cxx")
    transport = Transport(card)
    read(transport)
    record = card.records[(1, 1)]
    assert transport.log[3] == (bytes.fromhex("00B2010C00"), bytes((0x6C, len(record))))
    assert transport.log[4][0] == bytes.fromhex("00B2010C") + bytes((len(record),))
    assert transport.log[4][1] == record + b"\x90\x00"


def test_6cxx_twice_is_an_error():
    transport = Transport(make_card("visa"), [(ins(0xA8), b"\x6c\x10")])
    assert error_of(transport).reason == "GET PROCESSING OPTIONS: status 6C10"
    assert transport.commands[-1].endswith("10")  # the resend with Le 10


def test_endless_61xx_is_bounded():
    transport = Transport(make_card("visa"), [(ins(0xA8), b"\x61\x10"),
                                              (ins(0xC0), b"\x61\x10")])
    assert error_of(transport).reason == \
        "GET PROCESSING OPTIONS: still more data after 8 GET RESPONSE"
    assert len(transport.log) == 3 + 8


@pytest.mark.parametrize("sw", sorted(emv.NOT_EMV_STATUS))
def test_not_emv_card_on_not_found_status(sw):
    transport = Transport(make_card("visa"), [(is_ppse, sw.to_bytes(2, "big"))])
    with pytest.raises(NotEmvCard) as info:
        read(transport)
    assert info.value.reason == f"no payment application (SELECT PPSE: status {sw:04X})"


@pytest.mark.parametrize("name", sorted(RFID_UIDS))
def test_rfid_cards_are_not_emv_cards(name):
    with pytest.raises(NotEmvCard):
        read(make_card(name))
    with pytest.raises(NotEmvCard):
        read(make_card("rfid:0102030405060708090A"))


def test_other_ppse_status_is_an_error_not_an_rfid_card():
    transport = Transport(make_card("visa"), [(is_ppse, b"\x62\x83")])
    error = error_of(transport)
    assert not isinstance(error, NotEmvCard) and error.reason == "SELECT PPSE: status 6283"


# --- every error reason ------------------------------------------------------------------------

def with_records(name: str, records: dict[tuple[int, int], bytes]) -> EmvCard:
    card = make_card(name)
    assert isinstance(card, EmvCard)
    card.records = records
    return card


def rec(*objects: bytes) -> bytes:
    return encode(0x70, b"".join(objects))


T2_VISA = track2(VISA, "3012")
OK = b"\x90\x00"

def answering(name: str, match: Callable[[bytes], bool], answer: bytes | None
              ) -> Callable[[], Transport]:
    return lambda: Transport(make_card(name), [(match, answer)])


def holding(name: str, *objects: bytes) -> Callable[[], Transport]:
    """The card with one record (SFI 1, record 1) holding `objects`."""
    return lambda: Transport(with_records(name, {(1, 1): rec(*objects)}))


def fci_with(*objects: bytes) -> bytes:
    return encode(0x6F, encode(0xA5, b"".join(objects))) + OK


def format1(aip_afl: str) -> bytes:
    return encode(0x80, bytes.fromhex(aip_afl)) + OK


def t2(pan_and_rest: str) -> bytes:
    return encode(0x57, bytes.fromhex(pan_and_rest))


AMEX_PAN = encode(0x5A, bytes.fromhex("378282246310005F"))
GPO = ins(0xA8)

ERRORS: dict[str, tuple[Callable[[], Transport], str]] = {
    "short answer": (answering("visa", is_ppse, b"\x90"),
                     "SELECT PPSE: answer of 1 bytes, status word missing"),
    "PPSE not an FCI": (answering("visa", is_ppse, encode(0x70, b"") + OK),
                        "SELECT PPSE: answer is not an FCI template (6F)"),
    "PPSE empty": (answering("visa", is_ppse, OK),
                   "SELECT PPSE: answer is not an FCI template (6F)"),
    "PPSE malformed": (answering("visa", is_ppse, bytes.fromhex("6F05A503") + OK),
                       "malformed TLV in SELECT PPSE answer: tag 6F: value of 5 bytes runs past "
                       "the end (2 left) (byte 0)"),
    "PPSE without entries": (
        answering("visa", is_ppse, encode(0x6F, encode(0x84, b"2PAY.SYS.DDF01")) + OK),
        "no supported payment application"),
    "unsupported AID": (lambda: Transport(make_card("unsupported-aid")),
                        "no supported payment application"),
    "SELECT AID not an FCI": (answering("visa", is_select_aid, b"\x80\x00" + OK),
                              "SELECT AID: answer is not an FCI template (6F)"),
    "PDOL malformed": (answering("visa", is_select_aid, fci_with(encode(0x9F38, b"\x9f\x66"))),
                       "malformed TLV in PDOL: length expected, data ended (byte 2)"),
    "PDOL too long": (
        answering("visa", is_select_aid, fci_with(encode(0x9F38, bytes.fromhex("9F4E81FF")))),
        "PDOL asks for 255 bytes, at most 253"),
    "GPO status": (answering("visa", GPO, b"\x69\x85"), "GET PROCESSING OPTIONS: status 6985"),
    "GPO neither format": (answering("visa", GPO, encode(0x70, b"") + OK),
                           "GET PROCESSING OPTIONS: answer is neither format 1 (80) nor "
                           "format 2 (77)"),
    "GPO format 1 length": (answering("visa", GPO, format1("0000000000")),
                            "GET PROCESSING OPTIONS: format 1 answer of 5 bytes is not AIP + AFL"),
    "GPO format 2 no AIP": (
        answering("visa", GPO, encode(0x77, encode(0x94, bytes.fromhex("08010100"))) + OK),
        "GET PROCESSING OPTIONS: application interchange profile (82) missing"),
    "GPO malformed": (answering("visa", GPO, b"\x77\x81" + OK),
                      "malformed TLV in GET PROCESSING OPTIONS answer: length bytes run past the "
                      "end (byte 1)"),
    "AFL SFI 0": (answering("mastercard", GPO, format1("1980" "00010100")),
                  "bad AFL entry 1: SFI 0 (allowed 1 to 30)"),
    "AFL SFI 31": (answering("mastercard", GPO, format1("1980" "08010100" "F8010100")),
                   "bad AFL entry 2: SFI 31 (allowed 1 to 30)"),
    "AFL first 0": (answering("mastercard", GPO, format1("1980" "08000100")),
                    "bad AFL entry 1: records 0 to 1"),
    "AFL last before first": (answering("mastercard", GPO, format1("1980" "08030200")),
                              "bad AFL entry 1: records 3 to 2"),
    "AFL offline count": (answering("mastercard", GPO, format1("1980" "08010203")),
                          "bad AFL entry 1: 3 records for offline authentication, 2 named"),
    "AFL too many records": (answering("mastercard", GPO, format1("1980" "08011000" "10011100")),
                             "bad AFL: more than 32 records"),
    "AFL length": (
        answering("visa", GPO, encode(0x77, encode(0x82, b"\x20\x00")
                                      + encode(0x94, bytes.fromhex("080101001001"))) + OK),
        "bad AFL: 6 bytes is not a multiple of 4"),
    "record status": (answering("visa", ins(0xB2, 1), b"\x6a\x83"),
                      "READ RECORD (SFI 1, record 1): status 6A83"),
    "record not a template": (
        lambda: Transport(with_records("visa", {(1, 1): encode(0x57, T2_VISA)})),
        "READ RECORD (SFI 1, record 1): not a record template (70)"),
    "record two templates": (lambda: Transport(with_records("visa", {(1, 1): rec() + rec()})),
                             "READ RECORD (SFI 1, record 1): not a record template (70)"),
    "broken TLV": (lambda: Transport(make_card("broken-tlv")),
                   "malformed TLV in READ RECORD (SFI 1, record 1): tag 57: value of 17 bytes "
                   "runs past the end (7 left) (byte 2)"),
    "no card number": (holding("visa", encode(0x5F34, b"\x01")),
                       "card data missing: no track 2 (57, 9F6B) and no PAN (5A)"),
    "track 2 no separator": (holding("visa", t2(VISA + "3012")),
                             "track 2 equivalent (57): field separator D missing"),
    "track 2 not decimal": (holding("visa", t2("4111111111111A11D3012201")),
                            "track 2 equivalent (57): card number is not decimal"),
    "track 2 no expiry": (holding("visa", t2(VISA + "D30F")),
                          "track 2 equivalent (57): expiry date missing or not decimal"),
    "9F6B no separator": (holding("mastercard", encode(0x9F6B, bytes.fromhex("5555555555554444"))),
                          "track 2 data (9F6B): field separator D missing"),
    "5A not decimal": (holding("amex", encode(0x5A, bytes.fromhex("3782822463100A5F")),
                               encode(0x5F24, b"\x30\x12\x31")),
                       "PAN (5A): not decimal"),
    "5A without expiry": (holding("amex", AMEX_PAN), "card data missing: expiry date (5F24)"),
    "5F24 bad": (holding("amex", AMEX_PAN, encode(0x5F24, b"\x30\x12")),
                 "expiry date (5F24): expected YYMMDD"),
    "5F34 bad": (holding("visa", encode(0x57, T2_VISA), encode(0x5F34, b"\x0a")),
                 "PAN sequence number (5F34): expected 1 byte, 2 digits"),
    "Luhn": (holding("visa", encode(0x57, track2("4111111111111112", "3012"))),
             "card data unusable: card number: check digit (Luhn) wrong"),
    "PAN too short": (holding("visa", encode(0x57, track2("41111111111", "3012"))),
                      "card data unusable: card number: expected 12 to 19 digits, got 11 "
                      "characters"),
    "expiry month": (holding("visa", encode(0x57, track2(VISA, "3013"))),
                     "card data unusable: expiry: expected YYMM"),
    "transport answers None": (answering("visa", GPO, None),
                               "GET PROCESSING OPTIONS: transport answered NoneType, not bytes"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_reason(case):
    make_transport, reason = ERRORS[case]
    error = error_of(make_transport())
    assert error.reason == reason
    assert not isinstance(error, NotEmvCard)


def test_every_gpo_record_and_track2_variant_reads():
    # track 2 wins over 5A; 5A + 5F24 work alone; records of SFI 11-30 are not parsed
    card = with_records("visa", {
        (1, 1): rec(encode(0x5A, bytes.fromhex("5555555555554444")), encode(0x57, T2_VISA)),
        (11, 1): b"\x01\x02 proprietary",
    })
    result = read(card)
    assert result.card.pan == VISA and result.card.pan_sequence is None
    card = with_records("amex", {(1, 1): rec(encode(0x5A, bytes.fromhex("378282246310005F")),
                                             encode(0x5F24, b"\x30\x12\x31"))})
    assert read(card).card.expiry_yymm == "3012"


def test_card_data_in_the_gpo_answer_and_no_afl():
    gpo = encode(0x77, encode(0x82, b"\x20\x00") + encode(0x57, T2_VISA)
                 + encode(0x5F34, b"\x02")) + OK
    transport = Transport(make_card("visa"), [(ins(0xA8), gpo)])
    result = read(transport)
    assert result.card.pan == VISA and result.card.pan_sequence == "02"
    assert len(transport.log) == 3  # no READ RECORD


def test_transport_raising_or_answering_a_list():
    def failing(command: bytes) -> bytes:
        raise OSError(f"reader said {VISA}")

    with pytest.raises(EmvError) as info:
        read_emv(failing, TERMINAL, TODAY)
    assert info.value.reason == "SELECT PPSE: transport failed (OSError)"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    def timing_out(command: bytes) -> bytes:
        raise EmvError("card read took too long")

    with pytest.raises(EmvError) as info:  # the transport's own reason passes unchanged
        read_emv(timing_out, TERMINAL, TODAY)
    assert info.value.reason == "card read took too long"
    card = make_card("visa")
    assert read_emv(lambda c: list(card.apdu(c)), TERMINAL, TODAY).card.pan == VISA
    with pytest.raises(EmvError, match="transport answered a list that is not bytes"):
        read_emv(lambda c: [1000, 0x90, 0x00], TERMINAL, TODAY)


def test_bounds_on_commands_and_bytes(monkeypatch):
    monkeypatch.setattr(emv, "MAX_APDUS", 5)
    error = error_of(Transport(make_card("visa")))
    assert error.reason == "READ RECORD (SFI 2, record 2): more than 5 commands in one read"
    monkeypatch.undo()
    big = b"\x00" * 4000 + b"\x61\x00"
    transport = Transport(make_card("visa"), [(ins(0xA8), big), (ins(0xC0), big)])
    assert error_of(transport).reason == \
        "GET PROCESSING OPTIONS: card sent more than 16384 bytes"


def test_internal_error_becomes_emv_error_without_data(monkeypatch, caplog):
    def broken(objects):
        raise ValueError(f"invalid literal {VISA}")

    monkeypatch.setattr(emv, "_card_data", broken)
    with caplog.at_level(logging.ERROR, logger="evterm.emv"):
        error = error_of(Transport(make_card("visa")))
    assert error.reason == "internal error while reading the card"
    assert error.__cause__ is None and error.__suppress_context__
    assert [r.fields for r in caplog.records] == [{"kind": "ValueError"}]
    assert VISA not in caplog.text


# --- card removed --------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["visa", "visa-61xx", "mastercard-6cxx", "amex"])
def test_card_removed_mid_read_propagates_card_gone(name):
    probe = Transport(make_card(name))
    read(probe)
    total = len(probe.log)
    for gone_at in range(total):
        transport = Transport(make_card(name), gone_at=gone_at)
        with pytest.raises(CardGone):
            read(transport)
        assert len(transport.log) == gone_at
    assert read(Transport(make_card(name), gone_at=total)).card.pan == TEST_PANS[name]


# --- terminal params -----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"country_code": "DE"}, "country_code 'DE': expected 3 digits"),
        ({"country_code": "2760"}, "country_code '2760'"),
        ({"currency_code": "EUR"}, "currency_code 'EUR': expected 3 digits"),
        ({"amount_minor": -1}, "amount_minor -1: expected an integer from 0"),
        ({"amount_minor": 10**12}, "amount_minor 1000000000000"),
        ({"amount_minor": True}, "amount_minor True"),
        ({"ttq": b"\x20"}, "ttq: expected 4 bytes, got 1"),
        ({"terminal_type": 0x1A}, "terminal_type 0x1a: expected two BCD digits"),
    ],
)
def test_terminal_params_are_validated(changes, message):
    values = {"country_code": "276", "currency_code": "978", "amount_minor": 5000, **changes}
    with pytest.raises(ValueError, match=re.escape(message)):
        TerminalParams(**values)


# --- fuzzing: mutated answers ----------------------------------------------------------------

INTERESTING_SW = [0x6100, 0x6101, 0x6110, 0x61FF, 0x6C00, 0x6C01, 0x6C20, 0x6A82, 0x6283,
                  0x6985, 0x6700, 0x9000, 0x6D00]
mutations = st.one_of(
    st.just(("keep",)),
    st.just(("keep",)),
    st.tuples(st.just("random"), st.binary(max_size=48)),
    st.tuples(st.just("truncate"), st.integers(0, 64)),
    st.tuples(st.just("flip"), st.integers(0, 4096), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 4096), st.integers(0, 255)),
    st.tuples(st.just("sw"), st.sampled_from(INTERESTING_SW) | st.integers(0, 0xFFFF)),
)


def mutate(answer: bytes, mutation: tuple) -> bytes:
    kind = mutation[0]
    if kind == "random":
        return mutation[1]
    if kind == "truncate":
        return answer[:mutation[1]]
    if kind in ("flip", "set") and answer:
        data = bytearray(answer)
        index = mutation[1] % len(data)
        data[index] = data[index] ^ (1 << mutation[2]) if kind == "flip" else mutation[2]
        return bytes(data)
    if kind == "sw":
        return answer[:-2] + mutation[1].to_bytes(2, "big")
    return answer


def check_outcome(read_call: Callable[[], EmvRead], gone_possible: bool) -> None:
    try:
        result = read_call()
    except CardGone:
        assert gone_possible
    except EmvError as exc:  # NotEmvCard included
        assert exc.reason != "internal error while reading the card"
        assert not LONG_DIGITS.search(exc.reason) and not LONG_DIGITS.search(str(exc))
    else:
        assert isinstance(result, EmvRead) and result.scheme in emv.SCHEMES
        assert not LONG_DIGITS.search(result.label)


@settings(max_examples=600, deadline=None, derandomize=True)
@given(
    name=st.sampled_from(sorted(EMV_PROFILES)),
    start=st.integers(0, 8),
    plan=st.lists(mutations, max_size=24),
    gone_at=st.none() | st.integers(0, 30),
)
def test_fuzz_mutated_card_answers(name, start, plan, gone_at):
    card = make_card(name)
    count = 0

    def transport(command: bytes) -> bytes:
        nonlocal count
        if gone_at is not None and count >= gone_at:
            raise CardGone()
        answer = card.apdu(command)
        if 0 <= count - start < len(plan):  # mutate from the `start`-th answer on
            answer = mutate(answer, plan[count - start])
        count += 1
        return answer

    check_outcome(lambda: read_emv(transport, TERMINAL, TODAY), gone_at is not None)
    assert count <= emv.MAX_APDUS


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.binary(max_size=64).map(lambda b: b + b"\x90\x00") | st.binary(max_size=6),
                max_size=40))
def test_fuzz_arbitrary_answers(answers):
    remaining = list(answers)

    def transport(command: bytes) -> bytes:
        if not remaining:
            raise CardGone()
        return remaining.pop(0)

    check_outcome(lambda: read_emv(transport, TERMINAL, TODAY), True)


# --- issue 15: phones that want confirmation, more schemes, accepted schemes -------------

def test_phone_answering_gpo_6986_is_see_phone_not_unreadable():
    transport = Transport(make_card("phone-6986"))
    with pytest.raises(emv.SeePhone) as info:
        read(transport)
    assert info.value.reason == \
        "GET PROCESSING OPTIONS: status 6986 (see phone for instructions)"
    assert [c[:4] for c in transport.commands] == ["00A4", "00A4", "80A8"]  # no record read
    # 6986 on any other command, or another status on GPO, stays a plain EmvError
    other = error_of(answering("visa", GPO, b"\x69\x85")())
    assert not isinstance(other, emv.SeePhone)
    record = error_of(answering("visa", ins(0xB2), b"\x69\x86")())
    assert not isinstance(record, emv.SeePhone)


def test_every_scheme_of_the_aid_table_has_a_name():
    from terminal.kernel.cards import SCHEME_NAMES, SCHEMES

    assert set(emv.SCHEMES) == set(SCHEMES) == set(SCHEME_NAMES)
    for scheme in ("girocard", "maestro", "vpay", "discover", "jcb", "interac", "cb"):
        assert scheme in emv.SCHEMES


DEFAULT_SCHEMES = ("visa", "vpay", "mastercard", "maestro", "amex", "discover", "jcb",
                   "unionpay", "interac")


def accepting(*schemes: str) -> TerminalParams:
    return TerminalParams("276", "978", 5000, accepted_schemes=schemes)


@pytest.mark.parametrize("name", ["girocard", "girocard-ec", "girocard-zka", "cb"])
def test_a_known_scheme_not_accepted_is_refused_before_the_card_data_is_read(name):
    transport = Transport(make_card(name))
    with pytest.raises(emv.SchemeNotAccepted) as info:
        read(transport, accepting(*DEFAULT_SCHEMES))
    assert isinstance(info.value, emv.UnsupportedCard)
    scheme = EXPECTED[name][0]
    assert info.value.schemes == (scheme,)
    assert info.value.reason == f"no accepted payment application (card: {scheme})"
    assert transport.commands == ["00A404000E325041592E5359532E444446303100"]  # PPSE only
    assert read(make_card(name), accepting(scheme, "visa")).scheme == scheme


def test_co_badged_card_picks_an_accepted_application():
    assert read(make_card("girocard-maestro")).scheme == "girocard"  # priority 1
    transport = Transport(make_card("girocard-maestro"))
    result = read(transport, accepting(*DEFAULT_SCHEMES))
    assert (result.scheme, result.aid) == ("maestro", "A0000000043060")
    assert transport.commands[1] == "00A4040007A000000004306000"
    only_giro = accepting("girocard")
    assert read(make_card("girocard-maestro"), only_giro).aid == "A0000003591010028001"


def test_unknown_applications_stay_unsupported_whatever_is_accepted():
    with pytest.raises(emv.UnsupportedCard) as info:
        read(make_card("unsupported-aid"), accepting(*DEFAULT_SCHEMES))
    assert not isinstance(info.value, emv.SchemeNotAccepted)
    assert info.value.reason == "no supported payment application"
