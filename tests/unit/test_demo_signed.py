"""The headless demo's account of the signed meter values (hw_mocks/demo_signed.py): the
journaled OCMF documents of each session are checked again with the meter's key and
pyocmf, a pair that does not verify is said so with the reason, and the last receipt's
transparency QR text is printed."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.meter.signing import SignedReading
from hw_mocks.demo_signed import (
    SignedSession,
    SignedValue,
    check_session,
    last_receipt_qr,
    summary_lines,
)
from terminal.store import Store
from tests.unit.signed.ocmf_helpers import RFID, World, key_of, make_sim

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path):
    opened = Store.open(tmp_path / "evterm.db")
    yield opened
    opened.close()


def _journal(store: Store, session_id: str, docs: list[tuple[str, str]], sim) -> list[dict]:
    for kind, text in docs:
        store.add_signed_value(session_id, kind, SignedReading.from_ocmf(text), key_of(sim),
                               [], AT)
    return store.signed_values(session_id)


def test_a_good_pair_verifies_with_its_signed_register_values(store, tmp_path):
    world = World()
    sim = make_sim(world, state_path=tmp_path / "meter.json")
    begin = sim.begin("tx-1", RFID, "")
    world.charge("20000.44")
    end = sim.end("tx-1")
    found = check_session("s-1", _journal(store, "s-1", [("begin", begin), ("end", end)], sim))
    assert found.verifies, found.problems
    assert found.begin is not None and found.end is not None
    assert found.begin.energy_wh == Decimal("1234567")  # 1234567.8 Wh on a 0.001 kWh register
    assert found.end.tx == "E" and found.end.clock == "S"
    assert found.energy_wh == found.end.energy_wh - found.begin.energy_wh > 0
    text = "\n".join(summary_lines([found], None, "lem_dcbm400600"))
    assert "signed begin 1234.567 kWh (T1, TX B, clock S)" in text
    assert f"OCMF pair verifies: {found.energy_wh / 1000:.3f} kWh signed" in text


def test_a_bad_signature_on_the_end_is_said_not_to_verify(store, tmp_path):
    world = World()
    sim = make_sim(world, state_path=tmp_path / "meter.json")
    begin = sim.begin("tx-1", RFID, "")
    world.charge("5000")
    sim.set_fault("bad_signature", True)
    end = sim.end("tx-1")
    found = check_session("s-1", _journal(store, "s-1", [("begin", begin), ("end", end)], sim))
    assert not found.verifies
    assert any(p.startswith("end: signature") for p in found.problems), found.problems
    text = "\n".join(summary_lines([found], None, "lem_dcbm400600"))
    assert "OCMF pair does NOT verify: end: signature" in text


def test_a_session_without_its_signed_end_does_not_verify(store, tmp_path):
    sim = make_sim(World(), state_path=tmp_path / "meter.json")
    found = check_session("s-1", _journal(store, "s-1",
                                          [("begin", sim.begin("tx-1", RFID, ""))], sim))
    assert not found.verifies and found.problems == ["no signed end"]
    assert found.end is None and found.energy_wh is None
    assert "    signed end   none" in summary_lines([found], None, "lem_dcbm400600")


def test_a_plain_meter_has_nothing_signed_and_the_summary_says_so():
    lines = summary_lines([], None, "carlo_gavazzi_em580")
    assert any("the meter model carlo_gavazzi_em580 does not sign" in line for line in lines)


def test_the_last_receipts_qr_text_is_printed_whole():
    value = SignedValue("T1", Decimal("1000"), "S", "B")
    found = SignedSession("s-2", "20260001", value, SignedValue("T2", Decimal("3000"), "S", "E"))
    qr = "OCMF|{\"FV\":\"1.0\"}|{\"SD\":\"30\"}|3059"
    lines = summary_lines([found], ("s-2", qr), "lem_dcbm400600")
    assert lines[-1].endswith("\n" + qr)
    assert "session s-2" in lines[-1]


def test_last_receipt_qr_without_receipts_is_none(store):
    assert last_receipt_qr(store.path) is None


def test_an_end_signed_after_the_close_is_shown_late_and_not_billed(store, tmp_path):
    world = World()
    sim = make_sim(world, state_path=tmp_path / "meter.json")
    begin = sim.begin("tx-1", RFID, "")
    world.charge("500")
    late = sim.end(None, "A")
    found = check_session("s-1", _journal(store, "s-1", [("begin", begin),
                                                         ("late_end", late)], sim),
                          billed_by_energy=False)
    assert found.verifies and found.end is not None and found.end.late
    text = "\n".join(summary_lines([found], None, "lem_dcbm400600"))
    assert "TX A, clock S; signed after the session closed, not billed)" in text
    assert "receipt: energy NOT billed" in text
