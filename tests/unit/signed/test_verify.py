"""terminal/signed/verify.py on documents of the OCMF meter core: good documents have
no problems; each fault and each tampering is named."""

from __future__ import annotations

import json

import pytest

from drivers.meter.signing import MeterKey, SignedReading
from hw_mocks.ocmf_meter import OcmfMeterSim
from terminal.signed import pair_warnings, verify_document, verify_pair
from terminal.signed.verify import OcmfUnreadable, parse_ocmf
from tests.unit.signed.ocmf_helpers import World, key_of, make_sim, session


def signed(text: str) -> SignedReading:
    return SignedReading.from_ocmf(text)


def tampered(text: str, reading: int, field: str, value: object) -> str:
    """The document with one reading's field changed, the signature kept."""
    head, payload, signature = text.split("|")
    data = json.loads(payload)
    data["RD"][reading][field] = value
    return "|".join([head, json.dumps(data, separators=(",", ":")), signature])


@pytest.fixture
def meter() -> tuple[OcmfMeterSim, World]:
    world = World()
    return make_sim(world), world


def test_good_documents_and_pair(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    begin, end = (signed(t) for t in session(sim, world))
    key = key_of(sim)
    assert verify_document(begin, key, None) == []
    assert verify_document(end, key, begin) == []
    assert verify_pair(begin, end, key) == []
    assert pair_warnings(begin, end) == []


def test_bad_signature(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    sim.set_fault("bad_signature", True)
    begin, end = (signed(t) for t in session(sim, world))
    assert verify_document(end, key_of(sim), begin) == [
        "signature does not verify with the meter's public key"]


def test_another_meters_key(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    other = make_sim(world)
    _, end = session(sim, world)
    assert verify_document(signed(end), key_of(other)) == [
        "signature does not verify with the meter's public key"]


def test_a_key_on_another_curve(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    other = make_sim(world, curve="secp384r1")
    _, end = session(sim, world)
    problems = verify_document(signed(end), key_of(other))
    assert problems[0] == ("signed with ECDSA-secp256r1-SHA256, the meter's key is for "
                           "ECDSA-secp384r1-SHA256")
    assert problems[1].startswith("signature cannot be checked: Public key curve mismatch")


def test_tampered_value_breaks_the_signature(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    _, end = session(sim, world)
    forged = tampered(end, 1, "RV", 1240.0)
    assert verify_document(signed(forged), key_of(sim)) == [
        "signature does not verify with the meter's public key"]


def test_pagination_gap_and_order(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    first_begin, first_end = session(sim, world, "a")
    sim.set_fault("pagination_gap", True)
    begin = sim.begin("b", {}, "")
    key = key_of(sim)
    assert verify_document(signed(begin), key, signed(first_end)) == [
        "pagination gap: T4 after T2"]
    assert verify_document(signed(first_begin), key, signed(first_end)) == [
        "pagination goes back: T1 after T2"]


def test_error_flag_and_meter_status(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    sim.set_fault("error_flag", True)
    begin, end = (signed(t) for t in session(sim, world))
    key = key_of(sim)
    assert verify_document(end, key, begin) == ["error flag E (energy) set"]
    assert any("ERROR_FLAGS" in p for p in verify_pair(begin, end, key))
    # a status other than G (here forged, so the signature breaks too)
    manipulated = signed(tampered(end.ocmf, 1, "ST", "M"))
    assert "meter status M (manipulated)" in verify_document(manipulated, key)


def test_meter_serial_must_be_the_keys(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    begin, end = (signed(t) for t in session(sim, world))
    key = MeterKey(sim.public_key_hex, sim.signing_method, "LEM-9999")
    assert verify_document(end, key) == ["meter serial LEM-0042 is not the key's meter "
                                         "LEM-9999"]
    assert verify_pair(begin, end, key) == [
        "the begin document's meter serial LEM-0042 is not the key's meter LEM-9999",
        "the end document's meter serial LEM-0042 is not the key's meter LEM-9999"]


def test_unreadable_document(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    _, end = session(sim, world)
    doc = signed(end)
    broken = SignedReading(**{**doc.__dict__, "ocmf": "OCMF|{\"RD\": 5}|{}"})
    problems = verify_document(broken, key_of(sim))
    assert len(problems) == 1 and problems[0].startswith("unreadable: ")
    with pytest.raises(OcmfUnreadable):
        parse_ocmf("not ocmf")


def test_pair_with_a_changed_begin_reading(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    begin, end = session(sim, world)
    other_begin = tampered(begin, 0, "RV", 1200.0)
    problems = verify_pair(signed(other_begin), signed(end), key_of(sim))
    assert problems == ["the end document's begin reading differs from the begin "
                        "document's: RV 1234.567 instead of 1200.0"]


def test_pair_of_another_transaction_is_refused(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    begin_a, _ = session(sim, world, "a")
    _, end_b = session(sim, world, "b")
    problems = verify_pair(signed(begin_a), signed(end_b), key_of(sim))
    assert problems and problems[0].startswith(
        "the end document's begin reading differs from the begin document's: TM")


def test_pair_given_the_wrong_way_round(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    begin, end = session(sim, world)
    problems = verify_pair(signed(end), signed(begin), key_of(sim))
    assert problems[:3] == [
        "the begin document holds an end reading (TX E)",
        "the end document's last reading is not an end reading (TX B)",
        "the end document (T1) is not after the begin document (T2)"]


def test_unsynchronised_clock_is_a_warning(meter: tuple[OcmfMeterSim, World]) -> None:
    sim, world = meter
    sim.reboot()
    begin, end = (signed(t) for t in session(sim, world))
    assert verify_pair(begin, end, key_of(sim)) == []
    assert any("TIME_SYNC" in w for w in pair_warnings(begin, end))
