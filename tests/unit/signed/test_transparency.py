"""terminal/signed/transparency.py: the Transparenzsoftware XML file reads back with
pyocmf and verifies; the QR text carries the key and fits a QR code."""

from __future__ import annotations

from pathlib import Path

import pyocmf
import pytest

from terminal.signed.transparency import fits_qr, qr_text, transparency_xml
from tests.unit.signed.ocmf_helpers import World, make_sim, session


def test_xml_reads_back_with_pyocmf_and_verifies(tmp_path: Path) -> None:
    world = World()
    sim = make_sim(world)
    begin, end = session(sim, world)
    path = tmp_path / "transaction.xml"
    path.write_text(transparency_xml([begin, end], sim.public_key_hex), encoding="utf-8")
    container = pyocmf.OcmfContainer.from_xml(path)
    assert [(r.transaction_id, r.context) for r in container] == [
        (1, "Transaction.Begin"), (2, "Transaction.End")]
    assert [r.ocmf.payload.PG for r in container] == ["T1", "T2"]
    assert all(r.verify_signature() for r in container)
    assert all(r.public_key is not None and r.public_key.key == sim.public_key_hex
               for r in container)
    assert [r.issues for r in container.check_eichrecht(errors_only=True)] == [[], []]
    text = path.read_text(encoding="utf-8")
    assert f'<signedData format="OCMF" encoding="plain">{begin}</signedData>' in text


def test_xml_refuses_what_is_not_ocmf() -> None:
    with pytest.raises(ValueError, match="no documents"):
        transparency_xml([], "30")
    with pytest.raises(ValueError, match="document 1 is not an OCMF string"):
        transparency_xml(["hello"], "30")
    with pytest.raises(ValueError, match="public key is empty"):
        transparency_xml(["OCMF|{}|{}"], " ")


@pytest.mark.parametrize("curve", ["secp256r1", "secp384r1", "secp521r1"])
def test_qr_text_verifies_the_transaction_and_fits(curve: str) -> None:
    world = World()
    sim = make_sim(world, curve=curve)
    sim.begin("tx", {"IS": True, "IL": "VERIFIED", "IF": ["RFID_PLAIN", "OCPP_AUTH"],
                     "IT": "ISO14443", "ID": "04A2B3C4D5E6F7"}, "T" * 250)
    world.charge("80000")
    end = sim.end("tx")
    text = qr_text(end, sim.public_key_hex)
    assert text == f"{end}|{sim.public_key_hex}"
    with pytest.warns(pyocmf.SpecWarning, match="fourth OCMF section"):
        ocmf = pyocmf.OCMF.from_string(text)
    assert ocmf.embedded_public_key == sim.public_key_hex
    assert ocmf.verify_signature()  # the key carried in the text
    assert ocmf.check_eichrecht(errors_only=True) == []
    # the longest tariff text and the largest key still fit, at L and at M
    assert fits_qr(text, "L") <= 40
    assert fits_qr(text, "M") <= 40


def test_qr_text_refuses_a_text_with_a_key_already() -> None:
    with pytest.raises(ValueError, match="not an OCMF string"):
        qr_text("OCMF|{}|{}|30AB", "30")


def test_too_long_for_a_qr_code_is_named() -> None:
    with pytest.raises(ValueError, match="3000 characters do not fit a QR code at level M"):
        fits_qr("x" * 3000, "M")
