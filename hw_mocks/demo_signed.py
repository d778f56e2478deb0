"""What the headless demo says about the signed meter values (Eichrecht) it produced.

After the scripted walk, `evterm demo` reads the daemon's journal (terminal/store:
the sessions, their signed OCMF documents in `signed_values`, the receipts) and checks
every session's documents again, independently of the daemon, with the terminal's own
checks (terminal/signed/verify.py, built on pyocmf):

- `SignedSession`: one session's signed begin and end (register values in Wh, the
  OCMF pagination and time status; an end the meter signed only after the session
  had closed is a "late" end: journaled, never billed) and the problems found: each
  document against the meter's public key (signature, error flags, meter status,
  pagination after the begin) and the pair (pyocmf's Eichrecht checks); `verifies`
  when there are none; whether its receipt bills the energy;
- `check_session(session_id, rows)`: that check of one session's journaled rows;
- `signed_sessions(database)`: every session that has signed documents, oldest first;
- `last_receipt_qr(database)`: the transparency QR text (receipt JSON
  `signed_meter.qr`: "OCMF|payload|signature|key") of the newest receipt that has
  one, with its session id;
- `summary_lines(sessions, qr, meter_model)`: the printed account.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from drivers.meter.signing import MeterKey, SignedReading, SigningError
from terminal.signed.verify import verify_document, verify_pair
from terminal.store import Store

END_KINDS = ("end", "late_end")  # terminal/store/signed.py: a session's end document


@dataclass(frozen=True)
class SignedValue:
    """One journaled signed document, as the summary shows it."""

    pagination: str
    energy_wh: Decimal
    clock: str  # OCMF time status: S synchronised, I informative, U unknown, R relative
    tx: str  # OCMF reading reason of the document's last reading (B, E, P, ...)
    late: bool = False  # an end signed after the session closed (kind "late_end")


@dataclass(frozen=True)
class SignedSession:
    session_id: str
    meter_serial: str
    begin: SignedValue | None
    end: SignedValue | None
    problems: list[str] = field(default_factory=list)
    billed_by_energy: bool | None = None  # the receipt's signed_meter.billable_by_energy

    @property
    def verifies(self) -> bool:
        """Both documents there, each and the pair without problems."""
        return self.begin is not None and self.end is not None and not self.problems

    @property
    def energy_wh(self) -> Decimal | None:
        if self.begin is None or self.end is None:
            return None
        return self.end.energy_wh - self.begin.energy_wh


def _value(row: dict[str, Any]) -> SignedValue:
    return SignedValue(pagination=str(row["pagination"]), energy_wh=Decimal(row["energy_wh"]),
                       clock=str(row["clock"]), tx=str(row["tx"]),
                       late=row["kind"] == "late_end")


def check_session(session_id: str, rows: list[dict[str, Any]],
                  billed_by_energy: bool | None = None) -> SignedSession:
    """Check a session's journaled documents (`Store.signed_values` rows, at least
    one) again with the meter's key; `billed_by_energy` as its receipt says."""
    begin_row = next((r for r in rows if r["kind"] == "begin"), None)
    end_row = next((r for r in rows if r["kind"] in END_KINDS), None)
    problems: list[str] = []
    if begin_row is None:
        problems.append("no signed begin")
    if end_row is None:
        problems.append("no signed end")
    first = begin_row or end_row or rows[0]
    key = MeterKey(public_key_hex=str(first["public_key"]),
                   signing_method=str(first["signing_method"]),
                   meter_serial=str(first["meter_serial"]))
    if begin_row is not None and end_row is not None:
        problems += _document_problems(begin_row, end_row, key)
    return SignedSession(session_id=session_id, meter_serial=key.meter_serial,
                         begin=_value(begin_row) if begin_row else None,
                         end=_value(end_row) if end_row else None, problems=problems,
                         billed_by_energy=billed_by_energy)


def _document_problems(begin_row: dict[str, Any], end_row: dict[str, Any],
                       key: MeterKey) -> list[str]:
    try:
        begin = SignedReading.from_ocmf(str(begin_row["ocmf"]))
        end = SignedReading.from_ocmf(str(end_row["ocmf"]))
    except SigningError as exc:
        return [exc.detail]
    if end_row["public_key"] != begin_row["public_key"]:
        return ["the end document was signed with another key than the begin document"]
    found = [f"begin: {p}" for p in verify_document(begin, key)]
    found += [f"end: {p}" for p in verify_document(end, key, previous=begin)]
    found += verify_pair(begin, end, key)
    return found


def signed_sessions(database: Path) -> list[SignedSession]:
    """Every session of the journal at `database` with signed documents, oldest first."""
    store = Store.open(database, create=False)
    try:
        sessions = list(reversed(store.sessions(limit=10_000)))
        found = []
        for session in sessions:
            session_id = str(session["id"])
            rows = store.signed_values(session_id)
            if rows:
                receipt = store.receipt(session_id)
                block = (receipt[0].get("signed_meter") or {}) if receipt else {}
                billed = block.get("billable_by_energy") if receipt else None
                found.append(check_session(session_id, rows, billed))
        return found
    finally:
        store.close()


def last_receipt_qr(database: Path) -> tuple[str, str] | None:
    """(session id, QR text) of the newest receipt that carries the transparency QR."""
    store = Store.open(database, create=False)
    try:
        for session in store.sessions(limit=10_000):
            receipt = store.receipt(str(session["id"]))
            block = (receipt[0].get("signed_meter") or {}) if receipt else {}
            if block.get("qr"):
                return str(session["id"]), str(block["qr"])
        return None
    finally:
        store.close()


def _kwh(energy_wh: Decimal) -> str:
    return f"{energy_wh / 1000:.3f} kWh"


def _shown(value: SignedValue | None) -> str:
    if value is None:
        return "none"
    late = "; signed after the session closed, not billed" if value.late else ""
    return (f"{_kwh(value.energy_wh)} ({value.pagination}, TX {value.tx}, clock "
            f"{value.clock}{late})")


def summary_lines(sessions: list[SignedSession], qr: tuple[str, str] | None,
                  meter_model: str) -> list[str]:
    """The printed account of the signed values and the last receipt's QR text."""
    lines = [f"\n== Signed meter values (meter {meter_model}; checked again with the "
             "meter's public key and pyocmf's Eichrecht checks)"]
    if not sessions:
        lines.append(f"  none: the meter model {meter_model} does not sign (run the demo "
                     "with --meter-model lem_dcbm400600 for signed values)")
    for found in sessions:
        lines.append(f"  session {found.session_id} (meter {found.meter_serial}):")
        lines.append(f"    signed begin {_shown(found.begin)}")
        lines.append(f"    signed end   {_shown(found.end)}")
        if found.verifies:
            assert found.energy_wh is not None
            lines.append(f"    OCMF pair verifies: {_kwh(found.energy_wh)} signed")
        else:
            lines.append("    OCMF pair does NOT verify: " + "; ".join(found.problems))
        if found.billed_by_energy is not None:
            lines.append("    receipt: energy billed from the signed values"
                         if found.billed_by_energy else "    receipt: energy NOT billed "
                         "(the signed values were incomplete or invalid at the close)")
    if qr is not None:
        lines.append(f"\n== Transparency QR of the last receipt (session {qr[0]}; "
                     "`evterm ocmf verify` checks it)\n" + qr[1])
    elif sessions:
        lines.append("\n== No receipt carries a transparency QR")
    return lines
