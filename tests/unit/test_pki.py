"""The throw-away test PKI: chains, names, key usage and key file permissions."""

from __future__ import annotations

import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hw_mocks.pki import make_pki


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def _signed_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    key = issuer.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(cert.signature, cert.tbs_certificate_bytes,
                   ec.ECDSA(cert.signature_hash_algorithm))
    except InvalidSignature:
        return False
    return True


def _cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def test_pki_chains_names_and_usages(tmp_path):
    pki = make_pki(tmp_path / "pki", ("ST1", "DE*EVT*E0001*1"))
    ca = _cert(pki.ca.cert)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server = _cert(pki.server.cert)
    assert _signed_by(server, ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.IPv4Address("127.0.0.1")]
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(
        x509.ExtendedKeyUsage).value
    assert sorted(pki.clients) == ["DE*EVT*E0001*1", "ST1", "backend"]
    for name, pair in pki.clients.items():
        cert = _cert(pair.cert)
        assert _cn(cert) == name and _signed_by(cert, ca)
        assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(
            x509.ExtendedKeyUsage).value
    assert _cn(_cert(pki.backend.cert)) == "backend"
    assert pki.rogue is not None and pki.rogue_ca is not None
    rogue = _cert(pki.rogue.cert)
    assert _cn(rogue) == "ST1"  # impersonates a station ...
    assert not _signed_by(rogue, ca)  # ... but under another CA
    assert _signed_by(rogue, _cert(pki.rogue_ca.cert))
    assert pki.client("rogue") == pki.rogue
    with pytest.raises(KeyError, match="ST9"):
        pki.client("ST9")


def test_keys_are_private_and_stay_in_the_folder(tmp_path):
    folder = tmp_path / "pki"
    pki = make_pki(folder)
    keys = sorted(folder.glob("*.key"))
    assert len(keys) == 6  # ca, rogue ca, server, ST1, backend, rogue
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert b"PRIVATE KEY" in key.read_bytes()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {p.parent for p in (pki.ca.key, pki.server.key, pki.backend.key)} == {folder}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pki"]


@pytest.mark.parametrize("stations, backend", [
    (("ST/1",), "backend"), (("ST1",), "ST1"), (("",), "backend"), (("ST1",), "a#b")])
def test_bad_names_are_refused(tmp_path, stations, backend):
    with pytest.raises(ValueError, match=r"certificate name|must differ"):
        make_pki(tmp_path / "pki", stations, backend)
