"""Key files of the backend simulators (for tests and the demo only; never commit keys):
the payment gateway's X25519 pair (hw_mocks.backend_logic) and the operator's Ed25519
signing pair (hw_mocks.backend_mqtt).

Provides:
- `write_key_pair(folder, key, private_name, public_name)`: the private key as PKCS#8
  PEM (mode 0600) and its public key as PEM in `folder`; (private path, public path).
- `load_private_key(path, label, kind, kind_name)`: an unencrypted PEM private key of
  type `kind`; ValueError naming the file (`"{label} key file {path}: ..."`) when it
  cannot be read, is not PEM or is another kind of key.
- `public_pem(key)`: the public key of a private key as PEM text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

PrivateKey = X25519PrivateKey | Ed25519PrivateKey
K = TypeVar("K", X25519PrivateKey, Ed25519PrivateKey)


def public_pem(key: PrivateKey) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def write_key_pair(folder: str | Path, key: PrivateKey, private_name: str,
                   public_name: str) -> tuple[Path, Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / private_name, folder / public_name
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    public_path.write_bytes(public_pem(key).encode("ascii"))
    return private_path, public_path


def load_private_key(path: str | Path, label: str, kind: type[K], kind_name: str) -> K:
    path = Path(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ValueError(f"{label} key file {path}: cannot read: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise ValueError(f"{label} key file {path}: not an unencrypted PEM private "
                         "key") from None
    if not isinstance(key, kind):
        raise ValueError(f"{label} key file {path}: expected an {kind_name} private key, "
                         f"got {type(key).__name__}")
    return key
