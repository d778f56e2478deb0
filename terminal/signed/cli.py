"""`evterm ocmf verify FILE|TEXT [--public-key HEX] [--json]`: check signed meter
documents the way the Transparenzsoftware does, with pyocmf.

Reads an OCMF string, a QR code's text (the key appended), a Transparenzsoftware XML
file, an e-receipt JSON file or a text file of OCMF lines (terminal/signed/inputs.py).
Prints per document the meter serial, its reading(s) with time and clock status, and
whether the signature is valid; per transaction (a begin document with its end
document, or an end document that holds both readings) the Eichrecht check.
`--public-key` (hex or base64 DER) is used for every document; without it, the key
found with each document.

Exit codes: 0 every check passed, 1 a check failed, 2 bad input (named on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

CLOCK_NAMES = {"S": "synchronised", "I": "informative", "U": "unsynchronised",
               "R": "relative"}
END_TX = ("E", "L", "R", "A", "P")


def register(subparsers: argparse._SubParsersAction) -> None:
    ocmf = subparsers.add_parser("ocmf", help="signed meter documents (OCMF, Eichrecht)")
    sub = ocmf.add_subparsers(dest="ocmf_command", required=True)
    verify = sub.add_parser(
        "verify", help="verify OCMF documents: signatures and the Eichrecht rules")
    verify.add_argument("input", metavar="FILE|TEXT",
                        help="an OCMF string, a QR text, an XML/JSON/text file, or - "
                        "for stdin")
    verify.add_argument("--public-key", metavar="HEX", default=None,
                        help="the meter's public key (DER, hex or base64)")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.set_defaults(func=run_verify)


@dataclass
class DocReport:
    where: str
    serial: str = ""
    pagination: str = ""
    readings: list[dict[str, str]] = field(default_factory=list)
    signature: str = "not checked"  # valid / invalid / not checked
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    last_tx: str = ""
    begin_only: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"where": self.where, "meter_serial": self.serial,
                "pagination": self.pagination, "readings": self.readings,
                "signature": self.signature, "problems": self.problems,
                "notes": self.notes}


@dataclass
class TxReport:
    documents: list[str]
    errors: list[str]
    warnings: list[str]
    energy: str | None  # end - begin reading with its unit, e.g. "20.001 kWh"

    def to_json(self) -> dict[str, Any]:
        return {"documents": self.documents, "eichrecht_errors": self.errors,
                "eichrecht_warnings": self.warnings, "energy": self.energy}


def run_verify(args: argparse.Namespace) -> int:
    from terminal.signed.inputs import BadInput, read_input

    try:
        found = read_input(args.input)
        key_override = _checked_key(args.public_key) if args.public_key else None
    except BadInput as exc:
        print(f"evterm ocmf verify: {exc}", file=sys.stderr)
        return 2
    docs, transactions = _check_all(found, key_override)
    unreadable = [d for d in docs if d.signature == "unreadable"]
    for doc in unreadable:
        print(f"evterm ocmf verify: {doc.where}: {doc.problems[0]}", file=sys.stderr)
    if unreadable:
        return 2
    ok = all(d.signature == "valid" and not d.problems for d in docs) and all(
        not t.errors for t in transactions)
    if args.json:
        print(json.dumps({"ok": ok, "documents": [d.to_json() for d in docs],
                          "transactions": [t.to_json() for t in transactions]}, indent=2))
    else:
        _print_text(docs, transactions, ok)
    return 0 if ok else 1


def _checked_key(text: str) -> str:
    import pyocmf

    from terminal.signed.inputs import BadInput

    try:
        return pyocmf.PublicKey.from_string("".join(text.split())).key.upper()
    except (pyocmf.PyOCMFError, ValueError, TypeError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BadInput(f"--public-key is not an EC public key (DER, hex or base64): "
                       f"{detail}") from exc


def _check_all(found: list[Any], key_override: str | None,
               ) -> tuple[list[DocReport], list[TxReport]]:
    from drivers.meter.signing import MeterKey, SignedReading, SigningError
    from terminal.signed.verify import (
        OcmfUnreadable,
        pair_warnings,
        parse_ocmf,
        verify_document,
        verify_pair,
    )

    reports: list[DocReport] = []
    signed: list[tuple[DocReport, SignedReading, Any]] = []
    for item in found:
        report = DocReport(where=item.where)
        reports.append(report)
        try:
            ocmf, deviations = parse_ocmf(item.text)
            reading = SignedReading.from_ocmf(item.text)
        except (OcmfUnreadable, SigningError) as exc:
            report.signature = "unreadable"
            detail = exc.detail if isinstance(exc, SigningError) else str(exc)
            report.problems.append(f"unreadable: {detail}")
            continue
        report.notes += [f"OCMF spec: {d}" for d in deviations]
        _describe(report, ocmf)
        key_hex = key_override or item.key_hex
        if key_override and item.key_hex and item.key_hex.upper() != key_override:
            report.notes.append("the key given differs from the key found with the "
                                "document; the key given was used")
        if key_hex is None:
            report.problems.append("no public key: pass --public-key HEX")
            problems = [p for p in verify_document(reading, MeterKey("", "", "")) if
                        not p.startswith("signature")]
        else:
            problems = verify_document(reading, MeterKey(key_hex, "", ""))
            report.signature = "invalid" if any(p.startswith("signature") or
                                                p.startswith("signed with")
                                                for p in problems) else "valid"
        report.problems += problems
        signed.append((report, reading, ocmf))
    transactions: list[TxReport] = []
    used: set[int] = set()
    for index, (report, reading, ocmf) in enumerate(signed):
        if report.begin_only:
            continue
        begin = _matching_begin(signed, index, used)
        if begin is not None:
            used.add(begin)
            b_report, b_reading, b_ocmf = signed[begin]
            errors = verify_pair(b_reading, reading, MeterKey("", "", ""))
            warnings = pair_warnings(b_reading, reading)
            names = [b_report.where, report.where]
            energy = _energy(b_ocmf, ocmf)
        else:
            issues = ocmf.check_eichrecht()
            errors = [f"{i.message} ({i.code.value})" for i in issues
                      if i.severity == "error"]
            warnings = [f"{i.message} ({i.code.value})" for i in issues
                        if i.severity == "warning"]
            names = [report.where]
            energy = _energy(ocmf, ocmf)
        transactions.append(TxReport(names, errors, warnings, energy))
    return reports, transactions


def _describe(report: DocReport, ocmf: Any) -> None:
    payload = ocmf.payload
    report.serial = payload.MS or payload.GS or ""
    report.pagination = payload.PG or ""
    for r in payload.RD:
        tm = str(r.TM)
        stamp, _, status = tm.rpartition(" ")
        report.readings.append({
            "tx": str(r.TX or ""), "value": f"{r.RV}" if r.RV is not None else "",
            "unit": str(r.RU or ""), "time": stamp or tm, "clock": str(status),
            "clock_meaning": CLOCK_NAMES.get(str(status), "unknown"),
            "obis": str(r.RI or ""), "status": str(r.ST or ""), "error_flags": r.EF or ""})
    report.last_tx = report.readings[-1]["tx"] if report.readings else ""
    report.begin_only = bool(report.readings) and all(x["tx"] == "B" for x in report.readings)


def _matching_begin(signed: list[tuple[DocReport, Any, Any]], index: int,
                    used: set[int]) -> int | None:
    """The begin-only document of the same meter just before `index` in pagination."""
    report, reading, _ = signed[index]
    number = reading.pagination_number
    best: int | None = None
    for other, (o_report, o_reading, _) in enumerate(signed):
        if other in used or not o_report.begin_only or o_report.serial != report.serial:
            continue
        o_number = o_reading.pagination_number
        if number is None or o_number is None or o_number >= number:
            continue
        if best is None or o_number > signed[best][1].pagination_number:
            best = other
    return best


def _energy(begin_ocmf: Any, end_ocmf: Any) -> str | None:
    begins = [r for r in begin_ocmf.payload.RD if str(r.TX) == "B" and r.RV is not None]
    ends = [r for r in end_ocmf.payload.RD
            if r.TX is not None and str(r.TX) in END_TX and r.RV is not None]
    if not begins or not ends or begins[0].RU != ends[-1].RU:
        return None
    difference = Decimal(str(ends[-1].RV)) - Decimal(str(begins[0].RV))
    return f"{difference} {ends[-1].RU or ''}".strip()


def _print_text(docs: list[DocReport], transactions: list[TxReport], ok: bool) -> None:
    for doc in docs:
        head = f"{doc.where}: meter {doc.serial or '(no serial)'}"
        print(head + (f", pagination {doc.pagination}" if doc.pagination else ""))
        for r in doc.readings:
            print(f"  reading {r['tx'] or '?'}: {r['value']} {r['unit']} at {r['time']}, "
                  f"clock {r['clock']} ({r['clock_meaning']})")
        print(f"  signature: {doc.signature}")
        for problem in doc.problems:
            print(f"  problem: {problem}")
        for note in doc.notes:
            print(f"  note: {note}")
    for tx in transactions:
        energy = f", energy {tx.energy}" if tx.energy is not None else ""
        verdict = "ok" if not tx.errors else "FAILED"
        print(f"transaction ({' + '.join(tx.documents)}): Eichrecht {verdict}{energy}")
        for error in tx.errors:
            print(f"  error: {error}")
        for warning in tx.warnings:
            print(f"  warning: {warning}")
    print("all checks passed" if ok else "a check FAILED")
