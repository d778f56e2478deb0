"""A throw-away PKI for the MQTT link's tests, the demo and the bench (security profile 3).

Provides `make_pki(folder, stations=("ST1",), backend="backend") -> PkiPaths`: written
with `cryptography` into `folder` only (never into the repository):

- a CA (`ca.pem`, `ca.key`),
- a server certificate for `localhost` and `127.0.0.1` (`server.pem`, `server.key`),
- one client certificate per station with CN = the station id (`client-<id>.pem/.key`),
- one for the backend with CN = `backend` (the broker's ACL user of that name),
- a `rogue` client certificate (CN = the first station) signed by ANOTHER CA, which the
  broker must refuse.

Keys are EC P-256, unencrypted PEM, mode 0600; certificates are valid from one day ago
for `valid_days` (default 30). A name that cannot be a file name or MQTT user (empty,
`/`, `+`, `#`, NUL) raises ValueError naming it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROGUE = "rogue"


@dataclass(frozen=True)
class CertPair:
    """A certificate and its private key, as PEM files."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class PkiPaths:
    folder: Path
    ca: CertPair
    server: CertPair
    backend_name: str
    clients: dict[str, CertPair] = field(default_factory=dict)  # by CN (stations, backend)
    rogue: CertPair | None = None
    rogue_ca: CertPair | None = None

    @property
    def ca_cert(self) -> Path:
        return self.ca.cert

    @property
    def backend(self) -> CertPair:
        return self.clients[self.backend_name]

    def client(self, name: str) -> CertPair:
        """The client certificate of a station (or of the backend, or `rogue`)."""
        if name == ROGUE and self.rogue is not None:
            return self.rogue
        try:
            return self.clients[name]
        except KeyError:
            raise KeyError(f"no client certificate for {name!r}; have "
                           f"{', '.join(sorted(self.clients))}") from None


def _check_name(name: str) -> str:
    if not name or any(c in name for c in "/+#\x00\\") or len(name) > 64:
        raise ValueError(f"certificate name {name!r}: expected 1-64 characters without "
                         "/ \\ + # or NUL")
    return name


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "evterm test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class _Authority:
    def __init__(self, cn: str, valid_days: int) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.not_before = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        self.not_after = self.not_before + dt.timedelta(days=valid_days + 1)
        public = self.key.public_key()
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before).not_valid_after(self.not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self.key, hashes.SHA256())
        )

    def issue(self, cn: str, *, server: bool
              ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        public = key.public_key()
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(self.cert.subject)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(self.not_before).not_valid_after(self.not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=True, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self.key.public_key()), critical=False)
        )
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.IPv4Address("127.0.0.1")),
            ]), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key

    def write(self, folder: Path, stem: str) -> CertPair:
        pair = CertPair(folder / f"{stem}.pem", folder / f"{stem}.key")
        _write_cert(pair.cert, self.cert)
        _write_key(pair.key, self.key)
        return pair


def _issue_to(ca: _Authority, folder: Path, stem: str, cn: str, *, server: bool) -> CertPair:
    cert, key = ca.issue(cn, server=server)
    pair = CertPair(folder / f"{stem}.pem", folder / f"{stem}.key")
    _write_cert(pair.cert, cert)
    _write_key(pair.key, key)
    return pair


def make_pki(folder: str | Path, stations: Iterable[str] = ("ST1",),
             backend: str = "backend", *, valid_days: int = 30) -> PkiPaths:
    """A CA, a server certificate, client certificates (stations, backend) and a rogue
    one, written into `folder` (created, mode 0700)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    names = [_check_name(s) for s in stations]
    _check_name(backend)
    if backend in names or ROGUE in (*names, backend):
        raise ValueError(f"certificate names must differ from each other and from "
                         f"{ROGUE!r}: stations {names}, backend {backend!r}")
    ca = _Authority("evterm test CA", valid_days)
    clients = {name: _issue_to(ca, folder, f"client-{name}", name, server=False)
               for name in (*names, backend)}
    other = _Authority("evterm rogue CA", valid_days)
    return PkiPaths(
        folder=folder,
        ca=ca.write(folder, "ca"),
        server=_issue_to(ca, folder, "server", "localhost", server=True),
        backend_name=backend,
        clients=clients,
        rogue=_issue_to(other, folder, f"client-{ROGUE}", names[0] if names else ROGUE,
                        server=False),
        rogue_ca=other.write(folder, "rogue-ca"),
    )
