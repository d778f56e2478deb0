"""The payment gateway's side of the card envelope (terminal/payment/crypto.py `seal`).

Only the gateway simulator and tests use this: it needs the gateway's private key,
which no terminal holds.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from terminal.payment.crypto import ENVELOPE_ALG, associated_data, envelope_key


class EnvelopeError(ValueError):
    pass


def open_envelope(envelope: dict[str, Any], private_key: X25519PrivateKey) -> dict[str, Any]:
    """The card data in an envelope: {"pan", "expiry", "psn"}; EnvelopeError when it is
    malformed, for another key, or was altered."""
    try:
        if envelope["v"] != 1 or envelope["alg"] != ENVELOPE_ALG:
            raise EnvelopeError(f"unsupported envelope {envelope.get('v')}/{envelope.get('alg')}")
        epk = base64.b64decode(envelope["epk"], validate=True)
        nonce = base64.b64decode(envelope["nonce"], validate=True)
        ciphertext = base64.b64decode(envelope["ct"], validate=True)
        shared = private_key.exchange(X25519PublicKey.from_public_bytes(epk))
        plaintext = AESGCM(envelope_key(shared, epk)).decrypt(
            nonce, ciphertext, associated_data(envelope["terminal"], envelope["reference"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise EnvelopeError(f"malformed envelope: {exc}") from None
    except InvalidTag:
        raise EnvelopeError("envelope does not open: wrong key or altered") from None
    return dict(json.loads(plaintext))
