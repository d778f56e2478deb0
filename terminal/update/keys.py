"""The operator's signing keys: ed25519 key files in a keys folder, one file per key.

`generate(keys_dir, role, count)` writes `<role>-<n>.pem` (PKCS#8 PEM, mode 0600, the
folder 0700) and returns the signers; `signers_for(keys_dir, role, keyids)` loads the
files of a role whose keys are among `keyids` (the ones root trusts for it). Keys are
made and used with securesystemslib's `CryptoSigner` (python-tuf's signer); they never
belong in a repository: docs/updates.md says where operators keep them.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner

from terminal.update.roles import ROLES

__all__ = ["ROLES", "KeyFileError", "generate", "key_files", "load", "signers_for"]


class KeyFileError(ValueError):
    """A key file is missing, unreadable or not a key of the role."""


def key_files(keys_dir: Path, role: str) -> list[Path]:
    return sorted(keys_dir.glob(f"{role}-*.pem"))


def generate(keys_dir: Path, role: str, count: int) -> list[CryptoSigner]:
    """`count` new ed25519 keys for `role`, written 0600; never overwrites a key file."""
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    signers: list[CryptoSigner] = []
    first = len(key_files(keys_dir, role)) + 1
    for number in range(first, first + count):
        signer = CryptoSigner.generate_ed25519()
        path = keys_dir / f"{role}-{number}.pem"
        # O_EXCL: a key file that exists is never replaced; 0600 from the start
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(signer.private_bytes)
        signers.append(signer)
    return signers


def load(path: Path) -> CryptoSigner:
    try:
        private = load_pem_private_key(path.read_bytes(), password=None)
        return CryptoSigner(private)
    except (OSError, ValueError, TypeError) as error:
        raise KeyFileError(f"{path}: not a readable ed25519 key file: {error}") from None


def signers_for(keys_dir: Path, role: str, keyids: list[str]) -> list[CryptoSigner]:
    """The signers in keys_dir that root trusts for `role` (by key id)."""
    if not keys_dir.is_dir():
        raise KeyFileError(f"no keys folder {keys_dir}")
    signers = [load(path) for path in key_files(keys_dir, role)]
    return [s for s in signers if s.public_key.keyid in keyids]
