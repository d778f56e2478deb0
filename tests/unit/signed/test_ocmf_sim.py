"""The OCMF meter core (hw_mocks/ocmf_meter.py): its documents verify with pyocmf, its
pagination counts, its faults give what pyocmf rejects, its state survives."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyocmf
import pytest

from drivers.meter.signing import ClockSync, SignedReading, TxReason
from hw_mocks.ocmf_meter import SIGNING_FAULT_KINDS, OcmfMeterSim, SimStateError

RFID = {"IS": True, "IL": "VERIFIED", "IF": ["RFID_PLAIN", "OCPP_AUTH"], "IT": "ISO14443",
        "ID": "04A2B3C4D5E6F7"}


@dataclass
class World:
    """The sim's counter and clock, moved by the test."""

    energy_wh: Decimal = Decimal("1234567.8")
    now: datetime = field(default_factory=lambda: datetime(2026, 3, 1, 12, 0, 0, 250000,
                                                           tzinfo=UTC))

    def charge(self, energy_wh: str, minutes: int = 20) -> None:
        self.energy_wh += Decimal(energy_wh)
        self.now += timedelta(minutes=minutes)


def make_sim(world: World, curve: str = "secp256r1", state_path: Path | None = None,
             ) -> OcmfMeterSim:
    return OcmfMeterSim(serial="LEM-0042", model="DCBM 400", manufacturer="LEM",
                        firmware="1.2.3", curve=curve, energy_wh=lambda: world.energy_wh,
                        now=lambda: world.now, state_path=state_path)


def parse(text: str) -> pyocmf.OCMF:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a spec deviation fails the test
        return pyocmf.OCMF.from_string(text)


def errors(begin: pyocmf.OCMF, end: pyocmf.OCMF | None = None) -> list[str]:
    return [str(i) for i in begin.check_eichrecht(end, errors_only=True)]


def session(sim: OcmfMeterSim, world: World, tx: str = "tx-1", reason: str = "E",
            energy_wh: str = "20000.44") -> tuple[str, str]:
    begin = sim.begin(tx, RFID, "0,39 EUR/kWh")
    world.charge(energy_wh)
    return begin, sim.end(tx, reason)


@pytest.mark.parametrize("curve", ["secp256r1", "secp384r1", "secp521r1", "brainpoolP256r1"])
@pytest.mark.parametrize("reason", ["E", "L", "R", "A", "P"])
def test_every_pair_verifies_with_pyocmf(curve: str, reason: str) -> None:
    world = World()
    sim = make_sim(world, curve)
    begin_text, end_text = session(sim, world, reason=reason)
    begin, end = parse(begin_text), parse(end_text)
    assert begin.verify_signature(sim.public_key_hex)
    assert end.verify_signature(sim.public_key_hex)
    assert begin_text.split("|")[2] == json.dumps(
        {"SA": sim.signing_method, "SD": begin.signature.SD},
        separators=(",", ":"))
    # the end document is a whole transaction on its own
    assert errors(end) == []
    assert [r.TX for r in end.payload.RD] == ["B", reason]
    # the begin document's reading is the end document's begin reading, unchanged
    assert begin.payload.RD[0] == end.payload.RD[0]
    # pyocmf's pair check sees the begin reading twice (the end document repeats it,
    # as LEM meters do); it is the only error it reports
    assert [i.code for i in begin.check_eichrecht(end, errors_only=True)] == [
        pyocmf.IssueCode.MULTIPLE_BEGIN]


def test_values_and_fields_as_the_meter_writes_them() -> None:
    world = World()
    sim = make_sim(world)
    begin_text, end_text = session(sim, world, energy_wh="20000.44")
    payload = json.loads(end_text.split("|")[1])
    assert payload["MS"] == "LEM-0042" and payload["MV"] == "LEM"
    assert payload["IT"] == "ISO14443" and payload["ID"] == "04A2B3C4D5E6F7"
    assert payload["TT"] == "0,39 EUR/kWh" and payload["FV"] == "1.0"
    assert '"RV":1234.567,' in end_text and '"RV":1254.568,' in end_text
    assert payload["RD"][0]["TM"] == "2026-03-01T12:00:00,250+0000 S"
    assert payload["RD"][1]["TM"] == "2026-03-01T12:20:00,250+0000 S"
    begin = SignedReading.from_ocmf(begin_text)
    end = SignedReading.from_ocmf(end_text)
    assert begin.energy_wh == Decimal("1234567") and begin.tx is TxReason.BEGIN
    assert end.energy_wh == Decimal("1254568") and end.tx is TxReason.END
    assert end.clock is ClockSync.SYNCHRONIZED
    assert sim.public_key_hex == sim.public_key_hex.upper()
    assert pyocmf.PublicKey.from_string(sim.public_key_hex).curve == "secp256r1"
    assert sim.signing_method == "ECDSA-secp256r1-SHA256"


def test_pagination_counts_every_document() -> None:
    world = World()
    sim = make_sim(world)
    texts = [*session(sim, world, "a"), *session(sim, world, "b")]
    assert [SignedReading.from_ocmf(t).pagination for t in texts] == ["T1", "T2", "T3", "T4"]
    assert sim.last_document() == texts[-1]


def test_state_errors() -> None:
    world = World()
    sim = make_sim(world)
    with pytest.raises(SimStateError, match="no transaction"):
        sim.end("tx-1")
    sim.begin("tx-1", RFID, "")
    with pytest.raises(SimStateError, match="tx-1 is running"):
        sim.begin("tx-2", RFID, "")
    with pytest.raises(SimStateError, match="not tx-9"):
        sim.end("tx-9")
    assert sim.open_transaction() == "tx-1"
    sim.end(None, "P")
    assert sim.open_transaction() is None
    with pytest.raises(ValueError, match="end reason"):
        sim.end(None, "X")
    with pytest.raises(ValueError, match="curve"):
        make_sim(world, curve="secp999r1")


def test_bad_signature_does_not_verify() -> None:
    world = World()
    sim = make_sim(world)
    sim.set_fault("bad_signature", True)
    begin_text, end_text = session(sim, world)
    assert not parse(begin_text).verify_signature(sim.public_key_hex)
    assert not parse(end_text).verify_signature(sim.public_key_hex)
    sim.set_fault("bad_signature", False)
    assert parse(session(sim, world, "b")[1]).verify_signature(sim.public_key_hex)


def test_a_key_of_another_meter_does_not_verify() -> None:
    world = World()
    sim, other = make_sim(world), make_sim(world)
    assert sim.public_key_hex != other.public_key_hex
    assert not parse(session(sim, world)[1]).verify_signature(other.public_key_hex)


def test_pagination_gap_skips_a_number() -> None:
    world = World()
    sim = make_sim(world)
    begin = sim.begin("a", RFID, "")
    sim.set_fault("pagination_gap", True)
    end = sim.end("a")
    numbers = [SignedReading.from_ocmf(t).pagination_number for t in (begin, end)]
    assert numbers == [1, 3]
    assert parse(end).verify_signature(sim.public_key_hex)


def test_error_flag_is_an_eichrecht_error() -> None:
    world = World()
    sim = make_sim(world)
    sim.set_fault("error_flag", True)
    _, end_text = session(sim, world)
    end = parse(end_text)
    assert end.payload.RD[1].EF == "E"
    assert any(i.code == pyocmf.IssueCode.ERROR_FLAGS for i in end.check_eichrecht(
        errors_only=True))


@pytest.mark.parametrize(("kind", "status"), [("clock_unsync", "U"),
                                              ("clock_informative", "I")])
def test_clock_faults_set_the_time_status(kind: str, status: str) -> None:
    world = World()
    sim = make_sim(world)
    sim.set_fault(kind, True)
    assert sim.clock_sync == ClockSync(status)
    _, end_text = session(sim, world)
    end = parse(end_text)
    assert end.payload.RD[1].TM.status == status
    warnings_ = [i.code for i in end.check_eichrecht() if i.severity == "warning"]
    assert pyocmf.IssueCode.TIME_SYNC in warnings_
    sim.set_fault(kind, False)
    assert sim.clock_sync is ClockSync.SYNCHRONIZED


def test_unknown_fault_is_refused() -> None:
    sim = make_sim(World())
    with pytest.raises(ValueError, match="fault 'melted' unknown"):
        sim.set_fault("melted", True)
    assert set(SIGNING_FAULT_KINDS) == {"bad_signature", "pagination_gap", "error_flag",
                                        "clock_unsync", "clock_informative"}


def test_reboot_keeps_the_open_transaction_and_loses_the_clock() -> None:
    world = World()
    sim = make_sim(world)
    begin_text = sim.begin("tx-1", RFID, "")
    sim.reboot()
    assert sim.open_transaction() == "tx-1"
    assert sim.clock_sync is ClockSync.UNSYNCHRONIZED
    world.charge("5000")
    end_text = sim.end("tx-1", "P")
    end = SignedReading.from_ocmf(end_text)
    assert end.clock is ClockSync.UNSYNCHRONIZED and end.pagination == "T2"
    assert errors(parse(end_text)) == []
    assert parse(end_text).payload.RD[0] == parse(begin_text).payload.RD[0]
    sim.set_time()
    assert sim.clock_sync is ClockSync.SYNCHRONIZED
    sim.reboot()
    sim.set_time(synced=False)
    assert sim.clock_sync is ClockSync.INFORMATIVE


def test_state_file_survives_a_new_instance(tmp_path: Path) -> None:
    world = World()
    path = tmp_path / "meter.json"
    sim = make_sim(world, state_path=path)
    session(sim, world, "a")
    begin_text = sim.begin("b", RFID, "tariff")
    assert path.stat().st_mode & 0o077 == 0  # it holds the private key
    again = make_sim(world, state_path=path)
    assert again.public_key_hex == sim.public_key_hex
    assert again.open_transaction() == "b"
    assert again.last_document() == begin_text
    world.charge("100")
    end_text = again.end("b")
    assert SignedReading.from_ocmf(end_text).pagination == "T4"
    assert parse(end_text).verify_signature(sim.public_key_hex)
    assert errors(parse(end_text)) == []
    assert json.loads(end_text.split("|")[1])["TT"] == "tariff"


def test_a_broken_state_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "meter.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(SimStateError, match=r"meter\.json unreadable"):
        make_sim(World(), state_path=path)
    make_sim(World(), curve="secp384r1", state_path=tmp_path / "k.json")
    with pytest.raises(SimStateError, match="not on secp256r1"):
        make_sim(World(), state_path=tmp_path / "k.json")
