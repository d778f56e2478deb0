"""Technicians' PINs: the hash, its check and the pins file (docs/service.md).

Provides:
- `check_pin(pin)`: a PIN is 4 to 12 digits; `normalize_card(card)`: a technician card id
  as the pins file keys it (upper-case); `mask_id(id)`: a card id as shown and audited
  ("…" and its last 4 characters).
- `hash_pin(pin)` -> "scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>" (cryptography's Scrypt,
  n=2**14, r=8, p=1, 32 bytes, 16-byte random salt), `parse_pin_hash(encoded)` and
  `verify_pin(pin, encoded)` (constant-time; slow on purpose: ~50 ms and 16 MiB, so call
  it off the event loop).
- `load_pins(path)` / `set_pin(path, card, pin)` for the `[service] pins_file`
  (`{"technicians": {"<card id upper-case>": "<hash>"}}`, written atomically, mode 0600).

On failure: a malformed PIN, card id or hash raises ValueError naming the field (`pin:`,
`card:`), never its value; `load_pins` raises OSError when the file cannot be read and
ValueError naming the file and the (masked) entry when it is malformed; `set_pin`
changes nothing unless the whole new file could be written.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
HASH_BYTES = 32
SALT_BYTES = 16
PIN_PATTERN = re.compile(r"[0-9]{4,12}")
CARD_PATTERN = re.compile(r"[0-9A-Z_.*-]{1,64}")


def check_pin(pin: object) -> str:
    """The PIN if it is 4 to 12 digits; ValueError naming `pin` (never its value)."""
    if not isinstance(pin, str) or not PIN_PATTERN.fullmatch(pin):
        raise ValueError("pin: expected 4 to 12 digits")
    return pin


def normalize_card(card: object) -> str:
    """A technician card id as the pins file keys it (upper-case); ValueError naming
    `card`."""
    text = card.strip().upper() if isinstance(card, str) else ""
    if not CARD_PATTERN.fullmatch(text):
        raise ValueError("card: expected the card's id (its UID in hex, 1 to 64 characters)")
    return text


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_pin(pin: str, *, salt: bytes | None = None, n: int = SCRYPT_N, r: int = SCRYPT_R,
             p: int = SCRYPT_P) -> str:
    """The PIN as a salted scrypt hash, "scrypt$n$r$p$salt$hash" (base64)."""
    check_pin(pin)
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = Scrypt(salt=salt, length=HASH_BYTES, n=n, r=r, p=p).derive(pin.encode("ascii"))
    return "$".join(("scrypt", str(n), str(r), str(p), _b64(salt), _b64(digest)))


def parse_pin_hash(encoded: object) -> tuple[int, int, int, bytes, bytes]:
    """(n, r, p, salt, digest) of a stored hash; ValueError saying what is wrong."""
    parts = encoded.split("$") if isinstance(encoded, str) else []
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("expected scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>")
    try:
        n, r, p = (int(part) for part in parts[1:4])
        salt = base64.b64decode(parts[4], validate=True)
        digest = base64.b64decode(parts[5], validate=True)
    except ValueError:
        raise ValueError("expected scrypt$<n>$<r>$<p>$<salt base64>$<hash base64>") from None
    if not (2**10 <= n <= 2**20 and n & (n - 1) == 0 and 1 <= r <= 32 and 1 <= p <= 16):
        raise ValueError(f"scrypt parameters n={n} r={r} p={p} out of range")
    if len(salt) < SALT_BYTES or len(digest) != HASH_BYTES:
        raise ValueError(f"expected a salt of at least {SALT_BYTES} bytes and a "
                         f"{HASH_BYTES}-byte hash")
    return n, r, p, salt, digest


def verify_pin(pin: str, encoded: str) -> bool:
    """Whether `pin` matches the stored hash (constant-time compare); ValueError when the
    hash is malformed. Slow on purpose: call it off the event loop."""
    n, r, p, salt, digest = parse_pin_hash(encoded)
    try:
        Scrypt(salt=salt, length=len(digest), n=n, r=r, p=p).verify(pin.encode("ascii"),
                                                                     digest)
    except (InvalidKey, UnicodeEncodeError):
        return False
    return True


def load_pins(path: str | Path) -> dict[str, str]:
    """The pins file: card id (upper-case) -> PIN hash. OSError when unreadable,
    ValueError naming the file and the entry when malformed."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON ({exc})") from None
    technicians = data.get("technicians") if isinstance(data, dict) else None
    if not isinstance(technicians, dict):
        raise ValueError(f"{path}: expected {{\"technicians\": {{\"<card id>\": \"<hash>\"}}}}")
    pins: dict[str, str] = {}
    for card, encoded in technicians.items():
        try:
            key = normalize_card(card)
            parse_pin_hash(encoded)
        except ValueError as exc:
            raise ValueError(f"{path}: technicians.{mask_id(str(card))}: {exc}") from None
        pins[key] = encoded
    return pins


def set_pin(path: str | Path, card: str, pin: str) -> None:
    """Set (or replace) a technician's PIN in the pins file, creating it (mode 0600).

    Run as root, the file keeps the owner of the file it replaces, or gets the owner of
    its folder when new (/var/lib/evterm: the daemon's user), so the daemon can read it."""
    key = normalize_card(card)
    check_pin(pin)
    path = Path(path)
    pins = load_pins(path) if path.exists() else {}
    pins[key] = hash_pin(pin)
    text = json.dumps({"technicians": dict(sorted(pins.items()))}, indent=2) + "\n"
    owner = _owner_for(path)
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        if owner is not None:
            os.fchown(fd, *owner)
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


def _owner_for(path: Path) -> tuple[int, int] | None:
    """(uid, gid) the pins file must have when root writes it; None for other users."""
    if os.geteuid() != 0:
        return None
    found = (path if path.exists() else path.parent).stat()
    return found.st_uid, found.st_gid


def mask_id(id_token: str) -> str:
    """A card id as shown and audited: "…" and its last 4 characters."""
    return "\u2026" + id_token[-4:]
