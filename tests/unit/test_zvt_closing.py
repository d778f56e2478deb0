"""The end-of-day closing on the ZVT path with its repairs at the terminal: ZvtPayments
on `evterm sim zvt` (its own process), ZvtLedger and ZvtRepairs (terminal.payment.
zvt_repairs). The closing compares only the ZVT path's payments (a built-in payment in
the same journal is not judged against the terminal), finds a reservation whose
session closed long ago and releases it at the terminal (Reversal, once, also when the
repair is sent again), lists a booking the terminal refused, and the End-of-day totals
match the one booking. Plus the pure journal-side checks."""

from __future__ import annotations

import asyncio
from datetime import time, timedelta
from decimal import Decimal as D
from typing import Any

from terminal.kernel.clock import iso_utc
from terminal.payment.closing import Closings, ClosingSettings
from terminal.payment.ledger import ZvtLedger
from terminal.payment.reconcile import FindingKind, RepairKind
from terminal.payment.zreport import Repair
from terminal.payment.zvt_repairs import ZvtRepairs, journal_findings
from terminal.store import PaymentRow, PaymentStatus
from tests.integration.test_zvt_sim import start_zvt  # noqa: F401 (fixture)
from tests.unit.closing_helpers import journal_payment
from tests.unit.test_zvt_payments import launch, zvt_rig  # noqa: F401 (fixture)

SETTINGS = ClosingSettings("DE*EVT*E0001*1", time(3, 0), "Europe/Berlin", 2.0,
                           stale_after_s=3600.0)


class _Backend:
    """The backend as the closing needs it here: the outbox pump's wake-up only."""

    def __init__(self) -> None:
        self.woken = 0

    def wake(self) -> None:
        self.woken += 1


def test_the_zvt_closing_releases_a_stale_reservation_at_the_terminal(tmp_path,
                                                                       launch) -> None:  # noqa: F811
    zvt = zvt_rig(tmp_path, launch())
    rig, store = zvt.rig, zvt.rig.store
    backend = _Backend()
    closings = Closings(ZvtLedger(zvt.link.end_of_day, "EUR", rig.clock), backend,  # type: ignore[arg-type]
                        rig.astore, rig.clock, SETTINGS, ZvtRepairs(zvt.payments))

    async def scenario() -> tuple[dict[str, Any], Repair]:
        booked = await zvt.tap("S-2")  # booked with its bill
        rig.accept(booked, "S-2")
        rig.charge("S-2")
        assert await zvt.payments.settle_due() == 1
        assert (await zvt.tap("S-1")).approved  # held; its session ends without a bill
        rig.clock.advance(3 * 3600)
        store.conn.execute("UPDATE sessions SET closed_at = ? WHERE id = 'S-1'",
                           (iso_utc(rig.clock.now() - timedelta(hours=2)),))
        journal_payment(store, "F:pay", PaymentStatus.FAILED, rig.clock.now()
                        - timedelta(minutes=5), scheme="mastercard", captured=D("7.00"),
                        via="zvt")
        journal_payment(store, "G:pay", PaymentStatus.CAPTURED, rig.clock.now()
                        - timedelta(minutes=5), captured=D("9.99"), psp_reference="P-9")
        store.conn.execute("UPDATE payments SET reason = 'booking refused: 6F' "
                           "WHERE reference = 'F:pay'")
        rig.clock.advance(1)
        report = await closings.close("service")
        again = await closings.repairs.send(Repair.from_json(report["repairs"][0]))
        await zvt.link.close()
        return report, again

    report, again = asyncio.run(scenario())
    assert report["status"] == "done" and report["source"] == "zvt"
    assert "G:pay" not in {p["reference"] for p in report["payments"]}  # the other path
    findings = {(f["kind"], f["reference"]): f for f in report["findings"]}
    assert sorted(findings) == [("booking_failed", "F:pay"), ("orphan_hold", "S-1:pay")]
    assert findings[("orphan_hold", "S-1:pay")]["ledger_amount"] == "50.00"
    assert "6F" in findings[("booking_failed", "F:pay")]["action"]
    assert [(r["kind"], r["payment_reference"], r["status"]) for r in report["repairs"]] == [
        ("void", "S-1:pay", "done")]
    assert [r["kind"] for r in report["remaining"]] == ["booking_failed"]
    assert (again.status, again.reason) == ("done", None)  # sent again: nothing twice
    state = zvt.sim_state()
    assert state["reservations"] == {} and len(state["reversed"]) == 1
    assert rig.payment("S-1").status is PaymentStatus.VOIDED
    ledger = {t["scheme"]: (t["count"], t["amount"]) for t in report["ledger"]["totals"]}
    assert ledger == {"Visa": (1, str(rig.payment("S-2").amount_captured))}
    assert backend.woken == 1


def _row(status: PaymentStatus, **values: Any) -> PaymentRow:
    base = {"reference": "S:pay", "session_id": "S", "token": "t", "masked_pan": None,
            "scheme": "mastercard", "last4": "0001", "currency": "EUR",
            "amount_requested": "50.00", "amount_approved": "50.00", "amount_captured": None,
            "psp_reference": "zvt:1:0001", "status": status.value, "reason": None,
            "created_at": "2026-01-01T00:00:00.000Z", "updated_at": "2026-01-01T00:00:00.000Z",
            "via": "zvt", "pt_json": None, "offline": 0, "envelope_json": None}
    return PaymentRow.from_row({**base, **values})


def test_journal_findings_of_the_zvt_path() -> None:
    stale = [(_row(PaymentStatus.APPROVED), None),
             (_row(PaymentStatus.APPROVED, reference="B:pay"), D("12.34")),
             (_row(PaymentStatus.CAPTURE_PENDING, reference="C:pay",
                   amount_captured="3.00"), D("3.00")),
             (_row(PaymentStatus.VOID_PENDING, reference="V:pay"), D("0"))]
    period = [_row(PaymentStatus.FAILED, reference="F:pay", reason="booking refused: 6F"),
              _row(PaymentStatus.CAPTURED, reference="K:pay", amount_captured="1.00")]
    found = [(f.kind, f.reference, f.scheme, f.repair, f.journal_amount, f.ledger_amount)
             for f in journal_findings(stale, period, "EUR")]
    assert found == [
        (FindingKind.ORPHAN_HOLD, "S:pay", "Eurocard", RepairKind.VOID, None, D("50.00")),
        (FindingKind.MISSING_CAPTURE, "B:pay", "Eurocard", RepairKind.CAPTURE, D("12.34"),
         None),
        (FindingKind.MISSING_CAPTURE, "C:pay", "Eurocard", RepairKind.CAPTURE, D("3.00"),
         None),
        (FindingKind.ORPHAN_HOLD, "V:pay", "Eurocard", RepairKind.VOID, None, D("50.00")),
        (FindingKind.BOOKING_FAILED, "F:pay", "Eurocard", None, None, None)]
