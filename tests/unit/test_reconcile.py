"""Reconciliation (terminal.payment.reconcile, pure) and the closing around it
(terminal.payment.closing: journaled before repairs, repairs idempotent by their own
reference, a repair waiting for the gateway finished by the next closing, the Z-report
stored and queued for the backend) with a scripted ledger and gateway; the daily time."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from terminal.backend.api import BackendUnavailable
from terminal.backend.closing_messages import (
    SettlementBatch,
    SettlementTransaction,
    ZReport,
    check_z_report,
)
from terminal.backend.messages import CaptureRequest, CaptureResponse, MessageError, VoidRequest
from terminal.payment.closing import Closings, ClosingSettings, next_closing
from terminal.payment.ledger import Closing, SchemeTotal
from terminal.payment.reconcile import FindingKind, RepairKind, reconcile, zvt_group
from terminal.payment.zreport import z_report, z_report_text
from terminal.store import AsyncStore, PaymentRow, PaymentStatus, Store
from terminal.store.closings import ClosingStore
from tests.unit.clockfake import FakeClock
from tests.unit.closing_helpers import journal_payment

D = Decimal
T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
S = PaymentStatus


def row(ref: str, status: PaymentStatus, *, captured: str | None = None, psp: str | None = None,
        scheme: str = "visa", approved: str = "50.00") -> PaymentRow:
    return PaymentRow(
        reference=ref, session_id=ref.removesuffix(":pay"), token="k1." + "ab" * 20,
        masked_pan="411111******1111", scheme=scheme, last4="1111", currency="EUR",
        amount_requested=D("50.00"), amount_approved=D(approved), psp_reference=psp,
        offline=False, envelope_json=None, status=status,
        amount_captured=None if captured is None else D(captured), reason=None,
        created_at=T0, updated_at=T0)


def tx(ref: str, psp: str, status: str, *captured: str, scheme: str = "visa",
       authorised: str = "50.00") -> SettlementTransaction:
    return SettlementTransaction(psp, ref, status, scheme, "EUR", D(authorised),
                                 tuple(D(c) for c in captured))


def gateway(*txs: SettlementTransaction) -> Closing:
    return Closing("gateway", T0, T0 + timedelta(days=1), "EUR", txs)


# the planted ledger: one of each discrepancy, one clean payment, one in flight
JOURNAL = [
    row("a:pay", S.CAPTURED, captured="12.34", psp="P-A"),  # missing capture
    row("b:pay", S.CAPTURED, captured="20.00", psp="P-B"),  # double capture
    row("c:pay", S.CAPTURED, captured="15.00", psp="P-C", scheme="mastercard"),  # mismatch
    row("d:pay", S.VOIDED, psp="P-D"),  # orphan hold
    row("e:pay", S.CAPTURED, captured="5.00", psp="P-E"),  # clean
    row("f:pay", S.CAPTURE_PENDING, captured="7.00", psp="P-F"),  # in flight
    row("g:pay", S.DECLINED),  # the gateway approved it after all: orphan hold
    row("i:pay", S.REQUESTED),  # being asked right now: the gateway's hold is no orphan
]
LEDGER = gateway(
    tx("a:pay", "P-A", "authorised"),
    tx("b:pay", "P-B", "captured", "20.00", "20.00"),
    tx("c:pay", "P-C", "captured", "16.00", scheme="mastercard"),
    tx("d:pay", "P-D", "authorised"),
    tx("e:pay", "P-E", "captured", "5.00"),
    tx("f:pay", "P-F", "authorised"),
    tx("g:pay", "P-G", "authorised", authorised="30.00"),
    tx("h:pay", "P-H", "captured", "9.00"),  # unknown to the journal
    tx("i:pay", "P-I", "authorised"),
)


def test_every_planted_discrepancy_is_found_with_its_references_and_amounts():
    result = reconcile(JOURNAL, {}, LEDGER)
    by_ref = {(f.kind, f.reference): f for f in result.findings}
    missing = by_ref[(FindingKind.MISSING_CAPTURE, "a:pay")]
    assert (missing.psp_reference, missing.journal_amount, missing.ledger_amount,
            missing.repair) == ("P-A", D("12.34"), None, RepairKind.CAPTURE)
    double = by_ref[(FindingKind.DOUBLE_CAPTURE, "b:pay")]
    assert (double.journal_amount, double.ledger_amount, double.repair) == \
        (D("20.00"), D("40.00"), None)
    assert "refund" in double.action
    mismatch = by_ref[(FindingKind.AMOUNT_MISMATCH, "c:pay")]
    assert (mismatch.journal_amount, mismatch.ledger_amount, mismatch.scheme) == \
        (D("15.00"), D("16.00"), "mastercard")
    assert by_ref[(FindingKind.ORPHAN_HOLD, "d:pay")].repair is RepairKind.VOID
    orphan = by_ref[(FindingKind.ORPHAN_HOLD, "g:pay")]
    assert (orphan.ledger_amount, orphan.repair) == (D("30.00"), RepairKind.VOID)
    assert by_ref[(FindingKind.UNEXPECTED_CAPTURE, "h:pay")].ledger_amount == D("9.00")
    # the clean one and those still in flight are not findings
    assert not {"e:pay", "f:pay", "i:pay"} & {f.reference for f in result.findings}
    totals = {f.scheme: f for f in result.findings if f.kind is FindingKind.SCHEME_TOTALS}
    assert (totals["visa"].journal_amount, totals["visa"].ledger_amount) == \
        (D("37.34"), D("54.00"))  # 12.34+20+5 vs 20+20+5+9
    assert (totals["mastercard"].journal_amount, totals["mastercard"].ledger_amount) == \
        (D("15.00"), D("16.00"))


def test_a_consistent_ledger_gives_no_findings_and_totals_from_the_rows():
    journal = [row("e:pay", S.CAPTURED, captured="5.00", psp="P-E"),
               row("d:pay", S.VOIDED, psp="P-D", approved="40.00")]
    result = reconcile(journal, {"e:pay": D("1.50")},
                       gateway(tx("e:pay", "P-E", "captured", "5.00"),
                               tx("d:pay", "P-D", "voided", authorised="40.00")))
    assert result.findings == ()
    (visa,) = result.totals
    assert (visa.captured.count, visa.captured.amount) == (1, D("5.00"))
    assert (visa.voided.count, visa.voided.amount) == (1, D("40.00"))
    assert (visa.refunded.count, visa.refunded.amount) == (1, D("1.50"))


def test_a_payment_the_journal_changed_after_the_closing_is_left_to_the_next():
    late = row("a:pay", S.CAPTURED, captured="3.00", psp="P-A")
    late = PaymentRow(**{**late.__dict__, "updated_at": T0 + timedelta(days=2)})
    result = reconcile([late], {}, gateway(tx("a:pay", "P-A", "authorised")))
    assert result.findings == () and result.rows == ()


def test_a_capture_the_gateway_never_heard_of_is_retried():
    result = reconcile([row("a:pay", S.CAPTURED, captured="3.00", psp="P-A")], {}, gateway())
    kinds = [(f.kind, f.repair) for f in result.findings]
    assert (FindingKind.MISSING_CAPTURE, RepairKind.CAPTURE) in kinds


def test_zvt_totals_per_card_group_against_the_journal():
    closing = Closing("zvt", None, T0 + timedelta(hours=1), "EUR", (), (
        SchemeTotal("Visa", 2, D("17.34")), SchemeTotal("Eurocard", 1, D("5.00")),
        SchemeTotal("girocard", 0, D(0))))
    journal = [row("a:pay", S.CAPTURED, captured="12.34", scheme="visa"),
               row("b:pay", S.CAPTURED, captured="5.00", scheme="Visa"),
               row("c:pay", S.CAPTURED, captured="6.00", scheme="MASTERCARD")]
    result = reconcile(journal, {}, closing)
    (finding,) = result.findings
    assert finding.kind is FindingKind.SCHEME_TOTALS and finding.scheme == "Eurocard"
    assert (finding.journal_count, finding.journal_amount, finding.ledger_count,
            finding.ledger_amount) == (1, D("6.00"), 1, D("5.00"))
    assert [zvt_group(s) for s in ("visa", "American Express", "maestro", "girocard")] == \
        ["Visa", "Amex", "other", "girocard"]


def test_settlement_messages_round_trip_and_name_bad_fields():
    batch = SettlementBatch("ST1", T0, T0 + timedelta(hours=1),
                            (tx("b:pay", "P-B", "captured", "20.00", "20.00"),))
    assert SettlementBatch.from_json(batch.to_json()) == batch
    bad = batch.to_json()
    bad["transactions"][0]["captured"] = []
    with pytest.raises(MessageError) as err:
        SettlementBatch.from_json(bad)
    assert err.value.field == "SettlementBatch.transactions[0].status"
    with pytest.raises(MessageError, match="status"):
        tx("x", "P-X", "settled")

    report = z_report("z1", "ST1", "daily", LEDGER, reconcile(JOURNAL, {}, LEDGER), (), T0)
    head = ZReport.from_json(report)
    assert (head.closing_id, head.source, head.period_end, head.idempotency_key) == \
        ("z1", "gateway", LEDGER.until, "z-report:z1")
    assert head.to_json() == report
    for key, value, field_name in (("source", "bank", "ZReport.source"),
                                   ("period_end", "yesterday", "ZReport.period_end"),
                                   ("findings", {}, "ZReport.findings")):
        with pytest.raises(MessageError) as err:
            ZReport.from_json({**report, key: value})
        assert err.value.field == field_name


# ---- the closing around it ------------------------------------------------------------------


class ScriptedLedger:
    source = "gateway"

    def __init__(self, closing: Closing) -> None:
        self.closing_value = closing
        self.asked: list[tuple[Any, Any]] = []

    async def closing(self, since: datetime | None, until: datetime) -> Closing:
        self.asked.append((since, until))
        return Closing("gateway", since, until, "EUR", self.closing_value.transactions)


class ScriptedGateway:
    def __init__(self, journal: Store) -> None:
        self.calls: list[Any] = []
        self.down = False
        self.journal = journal
        self.seen_closing: list[str] = []
        self.woken = 0

    async def capture(self, req: CaptureRequest) -> CaptureResponse:
        return self._answer(req)

    async def void(self, req: VoidRequest) -> CaptureResponse:
        return self._answer(req)

    def _answer(self, req: Any) -> CaptureResponse:
        # the closing is journaled before any repair goes out
        row = self.journal.conn.execute("SELECT status FROM closings").fetchone()
        self.seen_closing.append(row[0])
        if self.down:
            raise BackendUnavailable("offline")
        self.calls.append(req)
        return CaptureResponse(True)

    def wake(self) -> None:
        self.woken += 1


def closings_for(tmp_path: Path, ledger: Closing) -> tuple[Closings, ScriptedGateway, Store,
                                                           AsyncStore]:
    store = Store.open(tmp_path / "j.db")
    for p in JOURNAL:
        journal_payment(store, p.reference, p.status, T0, scheme=p.scheme,
                        approved=p.amount_approved, captured=p.amount_captured,
                        psp_reference=p.psp_reference)
    clock = FakeClock()
    clock.start = T0 + timedelta(hours=2)
    gateway_fake = ScriptedGateway(store)
    settings = ClosingSettings("ST1", time(3, 0), "Europe/Berlin", 5.0)
    astore = AsyncStore(store)
    return (Closings(ScriptedLedger(ledger), gateway_fake, astore, clock, settings),
            gateway_fake, store, astore)


def test_closing_journals_then_repairs_and_queues_the_z_report(tmp_path):
    closings, gw, store, astore = closings_for(tmp_path, LEDGER)
    try:
        report = asyncio.run(closings.close("service"))
    finally:
        astore.close()
    store = Store.open(tmp_path / "j.db")
    assert gw.seen_closing == ["repairing"] * 3  # committed before each repair
    sent = {(type(r).__name__, r.reference.split(":")[0], r.psp_reference) for r in gw.calls}
    assert sent == {("CaptureRequest", "a", "P-A"), ("VoidRequest", "d", "P-D"),
                    ("VoidRequest", "g", "P-G")}
    capture = next(r for r in gw.calls if isinstance(r, CaptureRequest))
    assert capture.amount == D("12.34") and capture.reference != "a:pay"
    assert report["status"] == "done" and gw.woken == 1
    assert {r["status"] for r in report["repairs"]} == {"done"}
    left = {(x["kind"], x["reference"]) for x in report["remaining"]}
    assert {("double_capture", "b:pay"), ("amount_mismatch", "c:pay"),
            ("unexpected_capture", "h:pay")} <= left
    assert all(x["action"] for x in report["remaining"])
    # every total is the sum of the rows printed beside it
    for scheme in report["schemes"]:
        mine = [p for p in report["payments"] if p["scheme"] == scheme["scheme"]]
        for what in ("captured", "voided", "refunded"):
            assert D(scheme[what]["amount"]) == sum((D(p[what]) for p in mine), D(0))
            assert scheme[what]["count"] == sum(1 for p in mine if D(p[what]))
    check_z_report(report)
    stored = ClosingStore(store).last()
    assert stored is not None and stored["status"] == "done"
    assert stored["report"]["closing_id"] == report["closing_id"]
    # the payments' own NotifySettlement messages are queued beside it
    (queued,) = [m for m in store.outbox() if m.kind == "z_report"]
    assert (queued.kind, queued.idempotency_key) == ("z_report", f"z-report:{report['closing_id']}")
    text = z_report_text(report)
    assert "double_capture b:pay" in text and "FOR THE OPERATOR" in text
    assert "4111111111111111" not in text and "411111" not in text


def test_a_repair_waiting_for_the_gateway_is_sent_by_the_next_closing(tmp_path):
    closings, gw, store, astore = closings_for(tmp_path, LEDGER)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        gw.down = True
        first = await closings.close("daily")
        gw.down = False
        closings.clock.advance(3600)  # type: ignore[attr-defined]
        second = await closings.close("service")
        return first, second

    try:
        first, second = asyncio.run(scenario())
    finally:
        astore.close()
    store = Store.open(tmp_path / "j.db")
    assert first["status"] == "repairing"
    assert {r["status"] for r in first["repairs"]} == {"waiting"}
    assert any(x["kind"] == "repair_waiting" for x in first["remaining"])
    rows = ClosingStore(store).recent()
    assert [r["status"] for r in rows] == ["done", "done"]
    earlier = ClosingStore(store).get(first["closing_id"])
    assert earlier is not None
    assert {r["status"] for r in earlier["report"]["repairs"]} == {"done"}
    # the earlier closing's repairs went out with their first references (idempotent)
    first_refs = {r["reference"] for r in first["repairs"]}
    assert first_refs <= {r.reference for r in gw.calls}
    assert second["period_start"] == first["period_end"]
    assert len([m for m in store.outbox() if m.kind == "z_report"]) == 2


def test_the_daily_closing_time_is_local():
    now = datetime(2026, 12, 3, 1, 30, tzinfo=UTC)  # 02:30 in Berlin
    assert next_closing(now, time(3, 0), "Europe/Berlin") == \
        datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
    later = datetime(2026, 12, 3, 2, 0, 1, tzinfo=UTC)
    assert next_closing(later, time(3, 0), "Europe/Berlin") == \
        datetime(2026, 12, 4, 2, 0, tzinfo=UTC)


def test_a_closing_time_that_is_no_time_of_day_is_named():
    from terminal.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match=r"payment\.closing_time = '25:00': a time of day "
                                          r"HH:MM from 00:00 to 23:59"):
        parse_config({"station": {"id": "x", "operator": "Op"},
                      "payment": {"closing_time": "25:00"}})


class BrokenGateway(ScriptedGateway):
    """Fails in an unexpected way at the first repair: the process 'crashes' there."""

    def _answer(self, req: Any) -> CaptureResponse:
        raise RuntimeError("power cut")


def test_a_closing_interrupted_mid_repair_is_finished_after_the_restart(tmp_path):
    closings, gw, store, astore = closings_for(tmp_path, LEDGER)
    broken = BrokenGateway(store)
    crashed = Closings(closings.ledger, broken, astore, closings.clock, closings.settings)

    async def scenario() -> dict[str, Any]:
        with pytest.raises(RuntimeError, match="power cut"):
            await crashed.close("daily")
        row = await astore.call(ClosingStore(store).last)
        assert row["status"] == "repairing"  # journaled, repairs planned, nothing sent
        assert {r["status"] for r in row["report"]["repairs"]} == {"planned"}
        assert [m for m in store.outbox() if m.kind == "z_report"] == []
        # after the restart: a new Closings on the same journal
        assert await closings.finish_unfinished() == 1
        return dict(await astore.call(ClosingStore(store).last))

    try:
        row = asyncio.run(scenario())
    finally:
        astore.close()
    assert row["status"] == "done"
    planned = {r["reference"] for r in row["report"]["repairs"]}
    assert {r.reference for r in gw.calls} == planned  # the references planned before
    assert {r["status"] for r in row["report"]["repairs"]} == {"done"}


def test_the_daily_run_closes_at_the_local_closing_time(tmp_path):
    closings, _gw, store, astore = closings_for(tmp_path, gateway())  # nothing to find

    async def scenario() -> None:
        task = asyncio.create_task(closings.run())
        # two closings finished (a closing's row is 'repairing' until its end)
        while sum(r["status"] == "done"
                  for r in await astore.call(ClosingStore(store).recent)) < 2:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    try:
        asyncio.run(scenario())
    finally:
        astore.close()
    store = Store.open(tmp_path / "j.db")
    rows = ClosingStore(store).recent()
    rows = [r for r in rows if r["status"] == "done"]  # a third may have been cut off
    ends = sorted(datetime.fromisoformat(r["period_end"]) for r in rows)[:2]
    # 03:00 in Berlin (CET) is 02:00 UTC; the clock starts on 2 Dec at 10:00 UTC
    assert ends == [datetime(2026, 12, 3, 2, 0, tzinfo=UTC),
                    datetime(2026, 12, 4, 2, 0, tzinfo=UTC)]
    assert all(r["trigger"] == "daily" and r["status"] == "done" for r in rows)
    assert rows[-1]["period_start"] is None
