"""Card data: the PAN becomes a token and an envelope, and nothing else leaves memory.

Provides:
- The card data itself (`CardData`, masking) is terminal.kernel.cards'.
- `TokenKey` / `tokenize()`: HMAC-SHA256 of the PAN with the fleet tokenisation key;
  the key id travels with the token (`KEYID.HEX40`) so keys can rotate. The same card
  always gives the same token (tap to stop). `tokenize_terminal_card()`: the same for a
  card read by an external payment terminal, from what it gives (masked number,
  expiry, sequence number, card type): the same card, the same token.
- `seal()`: the card data encrypted to the payment gateway's X25519 public key
  (ephemeral X25519, HKDF-SHA256, AES-256-GCM; the terminal id and transaction
  reference are bound as associated data). The terminal holds no key that opens it.

Keys load from files named in config (`load_token_key`, `load_gateway_key`); a bad or
missing key file raises `KeyFileError` naming the file and what is wrong.
Errors about card data never repeat the card number.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from drivers.readers.events import TerminalCard
from terminal.kernel.cards import CardData

ENVELOPE_ALG = "X25519-HKDF-SHA256-A256GCM"
ENVELOPE_INFO = b"evterm card envelope v1"
MIN_TOKEN_KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


class KeyFileError(ValueError):
    """A key file that is missing or not what it must be."""


@dataclass(frozen=True)
class TokenKey:
    key_id: str
    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not _KEY_ID.match(self.key_id):
            raise KeyFileError(f"token key id {self.key_id!r}: expected 1-16 of A-Z a-z 0-9 _ -")
        if len(self.secret) < MIN_TOKEN_KEY_BYTES:
            raise KeyFileError(f"token key {self.key_id}: at least {MIN_TOKEN_KEY_BYTES} bytes "
                               f"needed, got {len(self.secret)}")


def tokenize(card: CardData, key: TokenKey) -> str:
    """`KEYID.` + 40 hex digits of HMAC-SHA256(key, PAN): stable per card and key."""
    digest = hmac.new(key.secret, card.pan.encode("ascii"), hashlib.sha256).hexdigest()
    return f"{key.key_id}.{digest[:40]}"


def tokenize_terminal_card(card: TerminalCard, key: TokenKey) -> str:
    """`KEYID.` + 40 hex digits of HMAC-SHA256(key, "zvt|" + masked number + expiry +
    sequence number + card type): stable per card and key, never equal to a PAN token."""
    text = "|".join(("zvt", card.masked_pan, card.expiry or "", str(card.card_sequence or ""),
                     str(card.card_type if card.card_type is not None else "")))
    digest = hmac.new(key.secret, text.encode("ascii", "replace"), hashlib.sha256).hexdigest()
    return f"{key.key_id}.{digest[:40]}"


def load_token_key(path: str | Path, key_id: str) -> TokenKey:
    """The key file holds the secret as hex (64+ hex digits, whitespace ignored)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"token key file {path}: cannot read: {exc}") from None
    try:
        secret = bytes.fromhex("".join(text.split()))
    except ValueError:
        raise KeyFileError(f"token key file {path}: expected hex digits") from None
    return TokenKey(key_id, secret)


def load_gateway_key(path: str | Path) -> X25519PublicKey:
    """The payment gateway's X25519 public key, PEM (SubjectPublicKeyInfo)."""
    path = Path(path)
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise KeyFileError(f"gateway key file {path}: cannot read: {exc.strerror}") from None
    except ValueError:
        raise KeyFileError(f"gateway key file {path}: not a PEM public key") from None
    if not isinstance(key, X25519PublicKey):
        raise KeyFileError(f"gateway key file {path}: expected an X25519 public key, got "
                           f"{type(key).__name__}")
    return key


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def envelope_key(shared: bytes, epk: bytes) -> bytes:
    """AES-256 key from the X25519 shared secret (the ephemeral key is the salt)."""
    return HKDF(algorithm=SHA256(), length=32, salt=epk, info=ENVELOPE_INFO).derive(shared)


def associated_data(terminal_id: str, reference: str) -> bytes:
    return json.dumps({"terminal": terminal_id, "reference": reference},
                      sort_keys=True).encode()


def seal(card: CardData, gateway_key: X25519PublicKey, terminal_id: str,
         reference: str) -> dict[str, Any]:
    """The card data encrypted to the gateway; only its private key opens it."""
    ephemeral = X25519PrivateKey.generate()
    epk = ephemeral.public_key().public_bytes(serialization.Encoding.Raw,
                                              serialization.PublicFormat.Raw)
    key = envelope_key(ephemeral.exchange(gateway_key), epk)
    nonce = os.urandom(12)
    plaintext = json.dumps({"pan": card.pan, "expiry": card.expiry_yymm,
                            "psn": card.pan_sequence}).encode()
    ciphertext = AESGCM(key).encrypt(nonce, plaintext,
                                     associated_data(terminal_id, reference))
    return {"v": 1, "alg": ENVELOPE_ALG, "epk": _b64(epk), "nonce": _b64(nonce),
            "ct": _b64(ciphertext), "terminal": terminal_id, "reference": reference}
