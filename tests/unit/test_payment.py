"""Tokens, masking and the card envelope: the PAN never leaves memory in the clear."""

from __future__ import annotations

import json
import logging
from datetime import date

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hw_mocks.gateway_crypto import EnvelopeError, open_envelope
from terminal.kernel.cards import CardData, CardDataError, card_expired, last4, mask_pan
from terminal.payment.crypto import (
    KeyFileError,
    TokenKey,
    load_gateway_key,
    load_token_key,
    seal,
    tokenize,
)

VISA = "4111111111111111"  # public test card numbers only
MASTERCARD = "5555555555554444"
AMEX = "378282246310005"
KEY = TokenKey("k1", bytes(range(32)))


def test_same_card_same_token_other_key_other_token():
    card = CardData(VISA, "2812", "01")
    token = tokenize(card, KEY)
    assert token == tokenize(CardData(VISA), KEY)
    assert token.startswith("k1.") and len(token) == 43
    assert VISA not in token and tokenize(CardData(MASTERCARD), KEY) != token
    rotated = tokenize(card, TokenKey("k2", bytes(range(1, 33))))
    assert rotated.startswith("k2.") and rotated[3:] != token[3:]


@pytest.mark.parametrize(
    ("pan", "masked"),
    [(VISA, "411111******1111"), (AMEX, "378282*****0005"), ("374245455400126", "374245*****0126"),
     ("36227206271667", "362272****1667"), ("4222222222222", "422222***2222"),
     ("6759649826438453012", "675964*********3012"), ("675964982643", "67596***2643")],
    ids=["16-digits", "15-digits-amex", "15-digits-amex-2", "14-digits", "13-digits",
         "19-digits", "12-digits"],
)
def test_mask_shows_first_six_and_last_four(pan, masked):
    """PCI DSS 3.4.1: at most BIN (first 6) + last 4, whatever the length (13 to 19
    digits); a 12-digit number keeps 3 digits masked."""
    assert mask_pan(pan) == masked
    assert last4(pan) == pan[-4:]
    assert len(mask_pan(pan)) == len(pan)
    shown = [c for c in mask_pan(pan) if c.isdigit()]
    assert len(shown) <= 10 and len(shown) <= len(pan) - 3
    if len(pan) >= 13:
        assert mask_pan(pan).startswith(pan[:6]) and mask_pan(pan).endswith(pan[-4:])


def test_card_data_never_shows_its_pan(caplog):
    card = CardData(VISA, "2812", "01")
    assert VISA not in repr(card) and VISA not in str(card) and VISA not in f"{card}"
    logging.getLogger("evterm.test").warning("card %s %r", card, card)
    assert VISA not in caplog.text


@pytest.mark.parametrize(
    "pan", ["4111111111111112", "41111111111", "4111 1111 1111 1111", "411111111111111x"],
    ids=["bad-luhn", "too-short", "spaces", "letter"],
)
def test_bad_card_numbers_are_refused_without_repeating_them(pan):
    with pytest.raises(CardDataError) as err:
        CardData(pan)
    assert pan not in str(err.value) and "41111111111" not in str(err.value)


def test_envelope_opens_only_at_the_gateway():
    gateway = X25519PrivateKey.generate()
    card = CardData(VISA, "2812", "01")
    envelope = seal(card, gateway.public_key(), "DE*EVT*E0001*1", "S-1")
    text = json.dumps(envelope)
    assert VISA not in text and "2812" not in text
    assert open_envelope(envelope, gateway) == {"pan": VISA, "expiry": "2812", "psn": "01"}
    with pytest.raises(EnvelopeError, match="wrong key or altered"):
        open_envelope(envelope, X25519PrivateKey.generate())
    with pytest.raises(EnvelopeError, match="wrong key or altered"):
        open_envelope({**envelope, "reference": "S-2"}, gateway)
    with pytest.raises(EnvelopeError, match="malformed"):
        open_envelope({**envelope, "nonce": "***"}, gateway)
    assert seal(card, gateway.public_key(), "T", "R")["ct"] != seal(
        card, gateway.public_key(), "T", "R")["ct"]


def test_key_files(tmp_path):
    token_file = tmp_path / "token.key"
    token_file.write_text(bytes(range(32)).hex() + "\n")
    assert load_token_key(token_file, "k1") == KEY
    token_file.write_text("abcd")
    with pytest.raises(KeyFileError, match="at least 32 bytes"):
        load_token_key(token_file, "k1")
    token_file.write_text("not hex at all")
    with pytest.raises(KeyFileError, match="expected hex"):
        load_token_key(token_file, "k1")
    with pytest.raises(KeyFileError, match="cannot read"):
        load_token_key(tmp_path / "absent.key", "k1")
    pem = tmp_path / "gateway.pem"
    gateway = X25519PrivateKey.generate()
    pem.write_bytes(gateway.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert load_gateway_key(pem).public_bytes_raw() == gateway.public_key().public_bytes_raw()
    pem.write_bytes(Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    with pytest.raises(KeyFileError, match="expected an X25519 public key"):
        load_gateway_key(pem)


@pytest.mark.parametrize(("expiry", "today", "expired"), [
    ("2812", date(2028, 12, 31), False),
    ("2812", date(2029, 1, 1), True),
    ("2212", date(2026, 11, 21), True),
    ("2611", date(2026, 11, 21), False),
    ("2610", date(2026, 11, 1), True),
])
def test_card_is_valid_through_the_end_of_its_expiry_month(
        expiry: str, today: date, expired: bool) -> None:
    assert card_expired(CardData("4111111111111111", expiry), today) is expired


def test_card_without_expiry_is_not_expired() -> None:
    assert card_expired(CardData("4111111111111111"), date(2099, 1, 1)) is False
