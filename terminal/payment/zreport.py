"""The Z-report of an end-of-day closing: JSON (stored, sent to the backend, in the
export bundle) and text (the service screen), docs/reconciliation.md "The Z-report".

Provides:
- `Repair`: one automatic repair (a capture retried or a hold voided) with its own
  reference (idempotent at the gateway) and its outcome (`REPAIR_STATES`);
- `plan_repairs(findings, closing_id)`: the repairs the findings call for;
- `z_report(...)`: the report as JSON: the period, the per-scheme totals (captured,
  voided, refunded: count and amount) beside the payment rows they are summed from, the
  ledger's own figures, the findings, the repairs and what remains for the operator;
- `remaining(report)`: what the operator must still do (findings without a repair and
  repairs that did not succeed), recomputed whenever a repair's outcome changes;
- `z_report_text(report)`: the same as text, one fact a line.

No card data: references, schemes and amounts only.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from terminal.kernel.clock import iso_utc
from terminal.payment.ledger import Closing
from terminal.payment.reconcile import Finding, Reconciliation

REPAIR_STATES = ("planned", "done", "refused", "waiting")
# a repair reference: ours + the closing's stamp + c/v; at most 64 characters
MAX_REFERENCE = 64


@dataclass(frozen=True)
class Repair:
    kind: str  # capture or void
    reference: str  # the repair's own (idempotency key at the gateway)
    payment_reference: str
    psp_reference: str | None
    amount: Decimal | None  # a capture's amount
    currency: str
    status: str = "planned"
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "reference": self.reference,
                "payment_reference": self.payment_reference,
                "psp_reference": self.psp_reference,
                "amount": None if self.amount is None else str(self.amount),
                "currency": self.currency, "status": self.status, "reason": self.reason}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Repair:
        return cls(data["kind"], data["reference"], data["payment_reference"],
                   data["psp_reference"],
                   None if data["amount"] is None else Decimal(data["amount"]),
                   data["currency"], data["status"], data["reason"])

    def outcome(self, status: str, reason: str | None = None) -> Repair:
        return replace(self, status=status, reason=reason)


def repair_reference(reference: str, closing_id: str, kind: str) -> str:
    suffix = f":{closing_id}:{kind[0]}"
    return reference[:MAX_REFERENCE - len(suffix)] + suffix


def plan_repairs(findings: tuple[Finding, ...], closing_id: str) -> tuple[Repair, ...]:
    repairs = []
    for f in findings:
        if f.repair is None or f.reference is None:
            continue
        amount = f.journal_amount if f.repair.value == "capture" else None
        repairs.append(Repair(f.repair.value, repair_reference(f.reference, closing_id,
                                                               f.repair.value),
                              f.reference, f.psp_reference, amount, f.currency))
    return tuple(repairs)


def z_report(closing_id: str, station_id: str, trigger: str, closing: Closing,
             result: Reconciliation, repairs: tuple[Repair, ...], at: datetime
             ) -> dict[str, Any]:
    ledger: dict[str, Any]
    if closing.totals is not None:
        ledger = {"totals": [{"scheme": t.scheme, "count": t.count, "amount": str(t.amount)}
                             for t in closing.totals if t.count]}
    else:
        ledger = {"transactions": [tx.to_json() for tx in closing.transactions]}
    report = {
        "closing_id": closing_id, "station_id": station_id, "source": closing.source,
        "trigger": trigger, "currency": closing.currency, "created_at": iso_utc(at),
        "period_start": None if closing.since is None else iso_utc(closing.since),
        "period_end": iso_utc(closing.until),
        "schemes": [t.to_json() for t in result.totals],
        "payments": [row.to_json() for row in result.rows],
        "ledger": ledger,
        "findings": [f.to_json() for f in result.findings],
        "repairs": [r.to_json() for r in repairs],
    }
    report["remaining"] = remaining(report)
    return report


def with_repairs(report: dict[str, Any], repairs: tuple[Repair, ...]) -> dict[str, Any]:
    out = dict(report, repairs=[r.to_json() for r in repairs])
    out["remaining"] = remaining(out)
    return out


def remaining(report: dict[str, Any]) -> list[dict[str, Any]]:
    """What the operator must still do: findings without a repair, repairs not done."""
    out = [{"kind": f["kind"], "scheme": f["scheme"], "reference": f["reference"],
            "psp_reference": f["psp_reference"], "journal_amount": f["journal_amount"],
            "ledger_amount": f["ledger_amount"], "action": f["action"]}
           for f in report["findings"] if f["repair"] is None]
    for r in report["repairs"]:
        if r["status"] != "done":
            what = "retry the capture" if r["kind"] == "capture" else "void the hold"
            out.append({"kind": f"repair_{r['status']}", "scheme": None,
                        "reference": r["payment_reference"],
                        "psp_reference": r["psp_reference"], "journal_amount": r["amount"],
                        "ledger_amount": None,
                        "action": (f"{what} in the gateway's back office"
                                   if r["status"] == "refused" else
                                   f"the terminal tries again ({what}) at the next closing")
                        + (f" ({r['reason']})" if r["reason"] else "")})
    return out


def z_report_text(report: dict[str, Any]) -> str:
    cur = report["currency"]
    lines = [f"Z-REPORT {report['closing_id']}", f"station {report['station_id']}",
             f"source {report['source']} ({report['trigger']})",
             f"from {report['period_start'] or 'the beginning'}",
             f"to   {report['period_end']}", "", "PAYMENTS"]
    for p in report["payments"]:
        lines.append(f"  {p['reference']} {p['scheme']} {p['status']} "
                     f"captured {p['captured']} voided {p['voided']} "
                     f"refunded {p['refunded']}")
    lines += ["", f"TOTALS PER SCHEME ({cur})"]
    for s in report["schemes"]:
        lines.append(f"  {s['scheme']}: captured {s['captured']['count']} / "
                     f"{s['captured']['amount']}, voided {s['voided']['count']} / "
                     f"{s['voided']['amount']}, refunded {s['refunded']['count']} / "
                     f"{s['refunded']['amount']}")
    if "totals" in report["ledger"]:
        lines += ["", "PAYMENT TERMINAL END-OF-DAY"]
        lines += [f"  {t['scheme']}: {t['count']} / {t['amount']}"
                  for t in report["ledger"]["totals"]]
    lines += ["", f"FINDINGS ({len(report['findings'])})"]
    for f in report["findings"]:
        lines.append(f"  {f['kind']} {f['reference'] or f['scheme']}: journal "
                     f"{f['journal_amount'] or '-'} ledger {f['ledger_amount'] or '-'}"
                     + (f" (count {f['journal_count']} / {f['ledger_count']})"
                        if f["journal_count"] is not None else ""))
    lines += ["", f"REPAIRS ({len(report['repairs'])})"]
    lines += [f"  {r['kind']} {r['payment_reference']}"
              + (f" {r['amount']}" if r["amount"] else "") + f": {r['status']}"
              + (f" ({r['reason']})" if r["reason"] else "") for r in report["repairs"]]
    lines += ["", f"FOR THE OPERATOR ({len(report['remaining'])})"]
    lines += [f"  {x['kind']} {x['reference'] or x['scheme']}: {x['action']}"
              for x in report["remaining"]]
    return "\n".join(lines) + "\n"
