"""What a signing meter's documents mean for the bill: billed energy = signed end -
signed begin exactly, no ENERGY without both valid documents, no time-based charges
without trusted clocks."""

from __future__ import annotations

from decimal import Decimal

from terminal.pricing import parse_tariff
from terminal.pricing.model import Dimension
from terminal.signed_billing import NO_END, SignedSummary
from tests.unit.session_helpers import reading


def row(kind: str, energy_wh: str, *, problems: list[str] | None = None, clock: str = "S",
        synced: int | None = 1) -> dict:
    return {"kind": kind, "meter_serial": "M1", "public_key": "3059AB",
            "signing_method": "ECDSA-secp256r1-SHA256", "ocmf": f"OCMF|{kind}|sig",
            "energy_wh": energy_wh, "clock": clock, "terminal_clock_synced": synced,
            "problems": problems or []}


TARIFF = parse_tariff({
    "country_code": "DE", "party_id": "EVT", "id": "T", "currency": "EUR",
    "min_price": {"excl_vat": 1.0},
    "elements": [{"price_components": [
        {"type": "ENERGY", "price": 0.5, "vat": 19.0, "step_size": 1},
        {"type": "TIME", "price": 6.0, "vat": 19.0, "step_size": 60},
        {"type": "FLAT", "price": 1.0, "vat": 19.0, "step_size": 1}]}],
    "last_updated": "2026-01-01T00:00:00Z"})


def dims(summary: SignedSummary) -> set[Dimension]:
    tariff = summary.tariff(TARIFF)
    return {c.type for e in tariff.elements for c in e.price_components}


def test_no_rows_is_a_meter_that_does_not_sign():
    assert SignedSummary.from_rows([]) is None


def test_a_good_pair_bills_everything():
    summary = SignedSummary.from_rows([row("begin", "1000"), row("end", "1500")])
    assert summary is not None and summary.billable_by_energy and summary.clock_trusted
    assert (summary.start_wh, summary.end_wh) == (Decimal(1000), Decimal(1500))
    assert summary.tariff(TARIFF) is TARIFF
    assert summary.end_ocmf == "OCMF|end|sig"


def test_a_missing_or_invalid_end_bills_no_energy_and_no_minimum():
    missing = SignedSummary.from_rows([row("begin", "1000")])
    assert missing is not None and missing.problem == NO_END
    # no signed end: no signed end time either, so no time-based charges
    assert dims(missing) == {Dimension.FLAT}
    assert missing.tariff(TARIFF).min_price is None
    bad = SignedSummary.from_rows([row("begin", "1000"),
                                   row("end", "1500", problems=["pagination gap: T7 after T5"])])
    assert bad is not None and bad.problem == "pagination gap: T7 after T5"
    assert dims(bad) == {Dimension.TIME, Dimension.FLAT}  # both clocks were synchronised


def test_a_clock_not_synchronised_at_begin_or_end_drops_time_based_charges():
    for begin, end in ((row("begin", "1000", clock="I"), row("end", "1500")),
                       (row("begin", "1000"), row("end", "1500", synced=0)),
                       (row("begin", "1000", synced=None), row("end", "1500"))):
        summary = SignedSummary.from_rows([begin, end])
        assert summary is not None and not summary.clock_trusted
        assert dims(summary) == {Dimension.ENERGY, Dimension.FLAT}


def test_late_end_rows_of_other_transactions_do_not_count_as_the_end():
    summary = SignedSummary.from_rows([row("begin", "1000"), row("late_end", "1200")])
    assert summary is not None and summary.problem == NO_END


def test_the_readings_priced_lie_between_the_signed_begin_and_end():
    readings = [reading(0, "1000"), reading(10, "1200"), reading(20, "1500.4"),
                reading(30, "1500")]
    summary = SignedSummary.from_rows([row("begin", "1000"), row("end", "1500")])
    assert summary is not None
    kept = summary.readings(readings)
    assert [r.energy_import_wh for r in kept] == [1000, 1200, 1500]
    assert kept[-1].energy_import_wh - kept[0].energy_import_wh == 500
