"""The daemon-side checks of signed OCMF documents, built on pyocmf.

Provides:
- `parse_ocmf(text)`: pyocmf's model of an OCMF string and the spec deviations it
  tolerates (as the Transparenzsoftware does); `OcmfUnreadable` when it is not one;
- `verify_document(doc, key, previous)`: the problems of one document: its signature
  (pyocmf `verify_signature` with the meter's public key), error flags (EF), meter
  status (ST), the meter serial (MS) against the key's (when the key names one; a
  signing method in the key must be the document's SA), pagination (PG) not the
  previous document's +1 (when a previous document is given);
- `verify_pair(begin, end, key)`: the Eichrecht errors of a transaction (pyocmf
  `check_eichrecht` of the begin and the end document), `pair_warnings` its warnings.

A problem is a short English text naming what is wrong ("signature does not verify
with the meter's public key", "pagination gap: T12 after T10", "error flag E (energy)
set", "meter status M (manipulated)"); an empty list means good.

Meters such as LEM's DCBM repeat the begin reading in the end document (RD holds TX
"B" and TX "E"), so that one document is a whole transaction. pyocmf's pair check then
sees two begin readings and reports MULTIPLE_BEGIN; `verify_pair` replaces that error
by its own check that the repeated reading is the begin document's, unchanged.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from drivers.meter.signing import MeterKey, SignedReading

if TYPE_CHECKING:  # pyocmf (and pydantic under it) is imported at first use: a daemon
    import pyocmf  # whose meter does not sign starts without it

STATUS_NAMES = {
    "N": "not present", "G": "good", "T": "timeout", "D": "disconnected",
    "R": "not found", "M": "manipulated", "X": "exchanged", "I": "incompatible",
    "O": "out of range", "S": "substitute", "E": "other error", "F": "read error",
}
FLAG_NAMES = {"E": "energy", "t": "time"}
SAME_READING_FIELDS = ("TM", "TX", "RV", "RI", "RU", "RT", "EF", "ST")

__all__ = ["OcmfUnreadable", "load_pyocmf", "pair_warnings", "parse_ocmf",
           "verify_document", "verify_pair"]


def load_pyocmf() -> None:
    """Import pyocmf now: a daemon whose meter signs does so at start, so that its first
    check does not hold the event loop while pyocmf and pydantic load."""
    import pyocmf  # noqa: F401


class OcmfUnreadable(ValueError):
    """Not an OCMF document pyocmf can read; the message says why."""


def parse_ocmf(text: str) -> tuple[pyocmf.OCMF, list[str]]:
    """pyocmf's model of `text` and the OCMF-spec deviations it noted (texts)."""
    import pyocmf
    from pyocmf import PyOCMFError

    with warnings.catch_warnings(record=True) as noted:
        warnings.simplefilter("always", pyocmf.SpecWarning)
        try:
            ocmf = pyocmf.OCMF.from_string(text)
        except PyOCMFError as exc:
            raise OcmfUnreadable(_first_line(str(exc))) from exc
        except Exception as exc:  # pyocmf's validators trip on hostile JSON shapes
            raise OcmfUnreadable(f"payload of an unexpected shape ({type(exc).__name__}: "
                                 f"{_first_line(str(exc))})") from exc
    return ocmf, [str(w.message) for w in noted if issubclass(w.category, pyocmf.SpecWarning)]


def verify_document(doc: SignedReading, key: MeterKey,
                    previous: SignedReading | None = None) -> list[str]:
    """The problems of one signed document (empty: good)."""
    try:
        ocmf, _ = parse_ocmf(doc.ocmf)
    except OcmfUnreadable as exc:
        return [f"unreadable: {exc}"]
    problems = signature_problems(ocmf, key)
    for reading in ocmf.payload.RD:
        for flag in reading.EF or "":
            text = f"error flag {flag} ({FLAG_NAMES.get(flag, 'unknown')}) set"
            if text not in problems:
                problems.append(text)
        status = str(reading.ST) if reading.ST is not None else "missing"
        if status != "G":
            text = f"meter status {status} ({STATUS_NAMES.get(status, 'unknown')})"
            if text not in problems:
                problems.append(text)
    serial = ocmf.payload.MS or ""
    if key.meter_serial and serial != key.meter_serial:
        problems.append(f"meter serial {serial or '(none)'} is not the key's meter "
                        f"{key.meter_serial}")
    if previous is not None:
        problems += pagination_problems(previous, doc)
    return problems


def signature_problems(ocmf: pyocmf.OCMF, key: MeterKey) -> list[str]:
    """The signature checked by pyocmf with the meter's key (hex DER)."""
    from pyocmf import SignatureVerificationError

    method = str(ocmf.signature.SA) if ocmf.signature.SA is not None else ""
    problems = []
    if key.signing_method and method and method != key.signing_method:
        problems.append(f"signed with {method}, the meter's key is for "
                        f"{key.signing_method}")
    try:
        valid = ocmf.verify_signature(key.public_key_hex)
    except SignatureVerificationError as exc:
        return [*problems, f"signature cannot be checked: {_first_line(str(exc))}"]
    if not valid:
        problems.append("signature does not verify with the meter's public key")
    return problems


def pagination_problems(previous: SignedReading, doc: SignedReading) -> list[str]:
    before, now = previous.pagination_number, doc.pagination_number
    if now is None:
        return [f"pagination {doc.pagination or '(none)'} is not a transaction counter"]
    if before is None:
        return [f"pagination {previous.pagination or '(none)'} of the previous document "
                "is not a transaction counter"]
    if now == before + 1:
        return []
    if now > before + 1:
        return [f"pagination gap: {doc.pagination} after {previous.pagination}"]
    return [f"pagination goes back: {doc.pagination} after {previous.pagination}"]


def _pair_issues(begin: SignedReading, end: SignedReading,
                 ) -> tuple[list[pyocmf.EichrechtIssue], list[str]]:
    """pyocmf's issues of the pair, and our own errors (unreadable, a repeated begin
    reading that is not the begin document's)."""
    import pyocmf
    from pyocmf import IssueCode

    try:
        begin_ocmf, _ = parse_ocmf(begin.ocmf)
        end_ocmf, _ = parse_ocmf(end.ocmf)
    except OcmfUnreadable as exc:
        return [], [f"unreadable: {exc}"]
    issues = begin_ocmf.check_eichrecht(end_ocmf)
    own = _roles(begin_ocmf, end_ocmf)
    begins_in_end = [r for r in end_ocmf.payload.RD if r.TX == pyocmf.MeterReadingReason.BEGIN]
    begins_in_begin = [r for r in begin_ocmf.payload.RD
                       if r.TX == pyocmf.MeterReadingReason.BEGIN]
    if begins_in_end and len(begins_in_begin) == 1 and len(begins_in_end) == 1:
        # the end document repeats the begin reading (LEM and most DC meters)
        issues = [i for i in issues if i.code != IssueCode.MULTIPLE_BEGIN]
        ours, theirs = begins_in_begin[0], begins_in_end[0]
        for name in SAME_READING_FIELDS:
            if str(getattr(ours, name)) != str(getattr(theirs, name)):
                own.append(f"the end document's begin reading differs from the begin "
                           f"document's: {name} {getattr(theirs, name)} instead of "
                           f"{getattr(ours, name)}")
    return issues, own


def _roles(begin: pyocmf.OCMF, end: pyocmf.OCMF) -> list[str]:
    """The begin document begins, the end document ends, and the end comes later."""
    from pyocmf.enums.reading import is_end_reason

    problems = []
    ending = [str(r.TX) for r in begin.payload.RD if is_end_reason(r.TX)]
    if ending:
        problems.append(f"the begin document holds an end reading (TX {ending[0]})")
    last = end.payload.RD[-1].TX if end.payload.RD else None
    if not is_end_reason(last):
        problems.append(f"the end document's last reading is not an end reading (TX "
                        f"{last or '(none)'})")
    before = _t_counter(begin.payload.PG or "")
    after = _t_counter(end.payload.PG or "")
    if before is not None and after is not None and after <= before:
        problems.append(f"the end document ({end.payload.PG}) is not after the begin "
                        f"document ({begin.payload.PG})")
    return problems


def verify_pair(begin: SignedReading, end: SignedReading, key: MeterKey) -> list[str]:
    """The Eichrecht errors of the transaction `begin` .. `end` (pyocmf
    check_eichrecht, errors only; `pair_warnings` gives the warnings); the key names
    the meter both documents must come from."""
    from pyocmf import IssueSeverity

    issues, problems = _pair_issues(begin, end)
    problems += [_issue_text(i) for i in issues if i.severity == IssueSeverity.ERROR]
    for doc, name in ((begin, "begin"), (end, "end")):
        if key.meter_serial and doc.meter_serial != key.meter_serial:
            problems.append(f"the {name} document's meter serial {doc.meter_serial or '(none)'}"
                            f" is not the key's meter {key.meter_serial}")
    return problems


def pair_warnings(begin: SignedReading, end: SignedReading) -> list[str]:
    """pyocmf's Eichrecht warnings of the pair (e.g. the clock not synchronised)."""
    from pyocmf import IssueSeverity

    issues, _ = _pair_issues(begin, end)
    return [_issue_text(i) for i in issues if i.severity == IssueSeverity.WARNING]


def _t_counter(pagination: str) -> int | None:
    """"T12" -> 12; None for a fiscal ("F") or malformed counter."""
    if len(pagination) > 1 and pagination[0] == "T" and pagination[1:].isdigit():
        return int(pagination[1:])
    return None


def _issue_text(issue: pyocmf.EichrechtIssue) -> str:
    return f"{issue.message} ({issue.code.value})"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"
