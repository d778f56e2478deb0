"""Reconciliation: the journal's card payments of a period against a ledger's closing
(terminal.payment.ledger). Pure: no I/O, no clock (docs/reconciliation.md).

Provides `reconcile(payments, refunded, closing) -> Reconciliation`:
- `payments`: the journal's payments (terminal.store `PaymentRow`) of the period and
  every one the ledger names; `refunded`: the amount refunded per payment reference;
- `Reconciliation.totals`: per scheme the journal's counts and amounts captured,
  voided and refunded (`SchemeTotals`), computed from `Reconciliation.rows` (one
  `JournalEntry` per payment, the rows the Z-report prints beside the totals);
- `Reconciliation.findings`: typed `Finding`s, each naming the payment references and
  both amounts, of the kinds `FindingKind`:
  - gateway (transaction by transaction, matched by PSP reference, else our reference):
    `missing_capture` (the journal captured, the gateway did not), `double_capture`
    (more than one capture booked), `amount_mismatch` (another amount captured),
    `orphan_hold` (the gateway holds an open authorisation that the journal voided,
    declined (never approved: e.g. the answer came too late) or does not know),
    `unexpected_capture` (the gateway captured what the journal voided, declined or
    does not know), `scheme_totals` (the captured total of a scheme differs);
  - ZVT (totals only): `scheme_totals` per card group (count or amount differ); the
    journal-side checks of the ZVT path (`orphan_hold`, `missing_capture`,
    `booking_failed`) are terminal.payment.zvt_repairs `journal_findings`.
  A finding is repairable (`repair`: capture or void) or names what the operator must
  do (`action`). Payments still in flight (requested, approved, capture or void
  pending) are left to the settlement task and not judged: a pre-authorisation being
  asked right now is never taken for an orphan. Neither is a payment the journal
  changed at or after the closing's end (`closing.until`; its row is read after the
  ledger's answer): the next closing judges it.
- `zvt_group(scheme)`: the ZVT card group (drivers.zvt TOTAL_GROUPS) of a scheme id or
  card name.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from terminal.backend.closing_messages import SettlementTransaction
from terminal.payment.ledger import Closing
from terminal.store import PaymentRow, PaymentStatus

ZERO = Decimal(0)
# the settlement task moves these on (terminal.payment.card): a pre-authorisation being
# asked, an approved one (its session running or its bill due), a capture or void being
# sent; a 'requested' one whose session ended is voided by the settlement
IN_FLIGHT = (PaymentStatus.REQUESTED, PaymentStatus.APPROVED, PaymentStatus.CAPTURE_PENDING,
             PaymentStatus.VOID_PENDING)
NOT_TAKEN = (PaymentStatus.VOIDED, PaymentStatus.DECLINED)

# scheme ids (terminal.kernel.cards) and ZVT card names -> the ZVT card group
_ZVT_GROUPS = {"visa": "Visa", "mastercard": "Eurocard", "eurocard": "Eurocard",
               "amex": "Amex", "americanexpress": "Amex", "girocard": "girocard",
               "jcb": "JCB", "diners": "Diners", "dinersclub": "Diners"}

ACTION_DOUBLE = ("refund the extra capture to the cardholder in the gateway's back office "
                 "(the terminal cannot give money back)")
ACTION_MISMATCH = ("compare the receipt with the gateway's capture and refund the "
                   "difference, or ask the gateway to correct the capture")
ACTION_UNEXPECTED = ("refund the capture in the gateway's back office: the journal shows "
                     "the payment was not taken")
ACTION_MISSING_VOIDED = ("the gateway voided a payment the journal captured: ask the "
                         "cardholder's payment again through the operator's back office")
ACTION_TOTALS = ("compare the payment terminal's end-of-day receipt with the journal's "
                 "payments of this scheme (the Z-report's rows)")


def zvt_group(scheme: str) -> str:
    key = "".join(c for c in scheme.lower() if c.isalnum())
    return _ZVT_GROUPS.get(key, "other")


class FindingKind(enum.StrEnum):
    MISSING_CAPTURE = "missing_capture"
    DOUBLE_CAPTURE = "double_capture"
    AMOUNT_MISMATCH = "amount_mismatch"
    ORPHAN_HOLD = "orphan_hold"
    UNEXPECTED_CAPTURE = "unexpected_capture"
    SCHEME_TOTALS = "scheme_totals"
    BOOKING_FAILED = "booking_failed"  # ZVT: the terminal refused or did not confirm


class RepairKind(enum.StrEnum):
    CAPTURE = "capture"
    VOID = "void"


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else str(amount)


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    scheme: str
    currency: str
    reference: str | None = None  # ours; None for a scheme's totals
    psp_reference: str | None = None
    journal_amount: Decimal | None = None
    ledger_amount: Decimal | None = None
    journal_count: int | None = None  # scheme totals only
    ledger_count: int | None = None
    repair: RepairKind | None = None
    action: str = ""  # what the operator must do when there is no repair

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "scheme": self.scheme, "currency": self.currency,
                "reference": self.reference, "psp_reference": self.psp_reference,
                "journal_amount": _text(self.journal_amount),
                "ledger_amount": _text(self.ledger_amount),
                "journal_count": self.journal_count, "ledger_count": self.ledger_count,
                "repair": None if self.repair is None else self.repair.value,
                "action": self.action}


@dataclass(frozen=True)
class JournalEntry:
    """One payment as the Z-report prints it: what it adds to its scheme's totals."""

    reference: str
    psp_reference: str | None
    scheme: str
    status: str
    captured: Decimal  # 0 unless captured
    voided: Decimal  # the authorised amount released, 0 unless voided
    refunded: Decimal

    def to_json(self) -> dict[str, Any]:
        return {"reference": self.reference, "psp_reference": self.psp_reference,
                "scheme": self.scheme, "status": self.status,
                "captured": str(self.captured), "voided": str(self.voided),
                "refunded": str(self.refunded)}


@dataclass(frozen=True)
class Figure:
    count: int = 0
    amount: Decimal = ZERO

    def plus(self, amount: Decimal) -> Figure:
        return Figure(self.count + 1, self.amount + amount) if amount else self

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "amount": str(self.amount)}


@dataclass(frozen=True)
class SchemeTotals:
    scheme: str
    captured: Figure = Figure()
    voided: Figure = Figure()
    refunded: Figure = Figure()

    def to_json(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "captured": self.captured.to_json(),
                "voided": self.voided.to_json(), "refunded": self.refunded.to_json()}


@dataclass(frozen=True)
class Reconciliation:
    source: str
    currency: str
    rows: tuple[JournalEntry, ...]
    totals: tuple[SchemeTotals, ...]
    findings: tuple[Finding, ...] = field(default=())


def journal_rows(payments: Sequence[PaymentRow], refunded: Mapping[str, Decimal],
                 scheme_of: Any = None) -> tuple[JournalEntry, ...]:
    rows = []
    for p in sorted(payments, key=lambda p: (p.created_at, p.reference)):
        captured = (p.amount_captured or ZERO) if p.status is PaymentStatus.CAPTURED else ZERO
        voided = ((p.amount_approved or ZERO) if p.status is PaymentStatus.VOIDED else ZERO)
        scheme = scheme_of(p.scheme) if scheme_of else p.scheme
        rows.append(JournalEntry(p.reference, p.psp_reference, scheme, p.status.value,
                                 captured, voided, refunded.get(p.reference, ZERO)))
    return tuple(rows)


def scheme_totals(rows: Sequence[JournalEntry]) -> tuple[SchemeTotals, ...]:
    """Per scheme: counts and sums of the rows' captured, voided and refunded amounts."""
    out: dict[str, SchemeTotals] = {}
    for row in rows:
        t = out.get(row.scheme, SchemeTotals(row.scheme))
        out[row.scheme] = SchemeTotals(row.scheme, t.captured.plus(row.captured),
                                       t.voided.plus(row.voided), t.refunded.plus(row.refunded))
    return tuple(out[s] for s in sorted(out))


def reconcile(payments: Sequence[PaymentRow], refunded: Mapping[str, Decimal],
              closing: Closing) -> Reconciliation:
    late = {p.reference for p in payments if p.updated_at >= closing.until}
    if late:  # changed after the closing's end: the next closing judges them
        payments = [p for p in payments if p.reference not in late]
    if closing.totals is not None:
        return _reconcile_totals(payments, refunded, closing)
    rows = journal_rows(payments, refunded)
    findings = (_transactions(payments, closing, late)
                + _captured_totals(rows, closing, late))
    return Reconciliation(closing.source, closing.currency, rows, scheme_totals(rows),
                          tuple(findings))


def _transactions(payments: Sequence[PaymentRow], closing: Closing,
                  late: set[str]) -> list[Finding]:
    by_psp = {p.psp_reference: p for p in payments if p.psp_reference}
    by_ref = {p.reference: p for p in payments}
    seen: set[str] = set()
    findings: list[Finding] = []
    for tx in closing.transactions:
        if tx.reference in late:
            continue
        payment = by_psp.get(tx.psp_reference) or by_ref.get(tx.reference)
        if payment is not None:
            seen.add(payment.reference)
        findings += _judge(payment, tx, closing.currency)
    for payment in payments:  # captured in the journal, unknown to the gateway
        if payment.reference not in seen and payment.status is PaymentStatus.CAPTURED:
            findings.append(Finding(
                FindingKind.MISSING_CAPTURE, payment.scheme, payment.currency,
                payment.reference, payment.psp_reference, payment.amount_captured, None,
                repair=RepairKind.CAPTURE if payment.psp_reference else None,
                action="" if payment.psp_reference else ACTION_MISSING_VOIDED))
    return findings


def _judge(p: PaymentRow | None, tx: SettlementTransaction, currency: str) -> list[Finding]:
    def finding(kind: FindingKind, journal: Decimal | None, ledger: Decimal | None,
                repair: RepairKind | None = None, action: str = "") -> list[Finding]:
        return [Finding(kind, tx.scheme, tx.currency or currency, tx.reference,
                        tx.psp_reference, journal, ledger, repair=repair, action=action)]

    if p is not None and p.status in IN_FLIGHT:
        return []
    if p is not None and p.status is PaymentStatus.CAPTURED:
        journal = p.amount_captured or ZERO
        if tx.open_hold:
            return finding(FindingKind.MISSING_CAPTURE, journal, None, RepairKind.CAPTURE)
        if tx.status == "voided":
            return finding(FindingKind.MISSING_CAPTURE, journal, None,
                           action=ACTION_MISSING_VOIDED)
        if len(tx.captured) > 1:
            return finding(FindingKind.DOUBLE_CAPTURE, journal, tx.amount_captured,
                           action=ACTION_DOUBLE)
        if tx.amount_captured != journal:
            return finding(FindingKind.AMOUNT_MISMATCH, journal, tx.amount_captured,
                           action=ACTION_MISMATCH)
        return []
    if p is not None and p.status not in NOT_TAKEN:
        return []  # failed: already listed for the operator by the settlement
    if tx.open_hold:
        return finding(FindingKind.ORPHAN_HOLD, None, tx.amount_authorised, RepairKind.VOID)
    if tx.status == "captured":
        return finding(FindingKind.UNEXPECTED_CAPTURE, None, tx.amount_captured,
                       action=ACTION_UNEXPECTED)
    return []


def _captured_totals(rows: Sequence[JournalEntry], closing: Closing,
                     late: set[str]) -> list[Finding]:
    journal: dict[str, Figure] = {}
    for row in rows:
        journal[row.scheme] = journal.get(row.scheme, Figure()).plus(row.captured)
    ledger: dict[str, Figure] = {}
    for tx in closing.transactions:
        if tx.status == "captured" and tx.reference not in late:
            ledger[tx.scheme] = Figure(ledger.get(tx.scheme, Figure()).count + len(tx.captured),
                                       ledger.get(tx.scheme, Figure()).amount
                                       + tx.amount_captured)
    return _compare(journal, ledger, closing.currency)


def _compare(journal: Mapping[str, Figure], ledger: Mapping[str, Figure],
             currency: str) -> list[Finding]:
    findings = []
    for scheme in sorted(set(journal) | set(ledger)):
        ours, theirs = journal.get(scheme, Figure()), ledger.get(scheme, Figure())
        if ours != theirs:
            findings.append(Finding(FindingKind.SCHEME_TOTALS, scheme, currency,
                                    journal_amount=ours.amount, ledger_amount=theirs.amount,
                                    journal_count=ours.count, ledger_count=theirs.count,
                                    action=ACTION_TOTALS))
    return findings


def _reconcile_totals(payments: Sequence[PaymentRow], refunded: Mapping[str, Decimal],
                      closing: Closing) -> Reconciliation:
    rows = journal_rows(payments, refunded, zvt_group)
    journal: dict[str, Figure] = {}
    for row in rows:
        journal[row.scheme] = journal.get(row.scheme, Figure()).plus(row.captured)
    assert closing.totals is not None
    ledger = {t.scheme: Figure(t.count, t.amount) for t in closing.totals if t.count}
    findings = _compare(journal, ledger, closing.currency)
    return Reconciliation(closing.source, closing.currency, rows, scheme_totals(rows),
                          tuple(findings))
