"""What the driver takes to the S.A.F.E. Transparenzsoftware (TPS) to check a bill.

Provides:
- `transparency_xml(docs, public_key_hex)`: the TPS XML file: one `<value>` per
  document, numbered (`transactionId`, the number the TPS lists the dataset under),
  `context` "Transaction.Begin" or "Transaction.End" by the document's last reading,
  the OCMF string as `<signedData format="OCMF" encoding="plain">` (no white space
  around it, or the signature cannot be verified) and the meter's key as
  `<publicKey encoding="hex">`. Each document is its own dataset: the end document
  holds the begin reading too, so it verifies the whole transaction on its own (paired
  with the begin document under one number, the TPS would see two begin readings);
- `qr_text(end_doc, public_key_hex)`: the one text a QR code carries,
  "OCMF|payload|signature|key" (the key appended as a fourth section, as QR codes
  for the TPS carry it), and `QR_ERROR_LEVELS` / `fits_qr` to check it fits.

Sources (read only): the TPS XML format description of S.A.F.E. e.V.
(transparenzsoftware, "XML Format Transparenzsoftware (TPS)": values/value/signedData/
publicKey, the transactionId and context attributes) and pyocmf 0.6
(`OcmfContainer.from_xml`, which reads this file back; `OCMF.embedded_public_key`,
the fourth section).
"""

from __future__ import annotations

import json
from xml.sax.saxutils import escape, quoteattr

import qrcode
from qrcode.exceptions import DataOverflowError

CONTEXT_BEGIN = "Transaction.Begin"
CONTEXT_END = "Transaction.End"
END_REASONS = frozenset("ELRAP")
QR_ERROR_LEVELS = {"L": qrcode.constants.ERROR_CORRECT_L, "M": qrcode.constants.ERROR_CORRECT_M}

__all__ = ["QR_ERROR_LEVELS", "fits_qr", "qr_text", "transparency_xml"]


def _context(doc: str) -> str:
    """Transaction.End when the document's last reading ends a transaction."""
    try:
        readings = json.loads(doc.split("|")[1])["RD"]
        last = str(readings[-1].get("TX", ""))
    except (IndexError, KeyError, TypeError, ValueError, AttributeError):
        return CONTEXT_BEGIN
    return CONTEXT_END if last in END_REASONS else CONTEXT_BEGIN


def _clean(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError(f"{what} is empty")
    if any(ch in text for ch in "\r\n"):
        raise ValueError(f"{what} spans lines; an OCMF document is one line")
    return text


def transparency_xml(docs: list[str], public_key_hex: str) -> str:
    """The TPS XML file (UTF-8 text) of `docs` (OCMF strings), each with the key."""
    if not docs:
        raise ValueError("no documents for the transparency file")
    key = _clean(public_key_hex, "the public key").upper()
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', "<values>"]
    for number, doc in enumerate(docs, start=1):
        text = _clean(doc, f"document {number}")
        if not text.startswith("OCMF|"):
            raise ValueError(f"document {number} is not an OCMF string (OCMF|...)")
        lines += [
            f"  <value transactionId=\"{number}\" context={quoteattr(_context(text))}>",
            f'    <signedData format="OCMF" encoding="plain">{escape(text)}</signedData>',
            f'    <publicKey encoding="hex">{escape(key)}</publicKey>',
            "  </value>",
        ]
    lines.append("</values>")
    return "\n".join(lines) + "\n"


def qr_text(end_doc: str, public_key_hex: str) -> str:
    """"OCMF|payload|signature|key": the end document (both readings) with the key
    appended, the single text one QR code carries to verify the whole transaction."""
    text = _clean(end_doc, "the end document")
    parts = text.split("|")
    if len(parts) != 3 or parts[0] != "OCMF":
        raise ValueError("the end document is not an OCMF string (OCMF|payload|signature)")
    return f"{text}|{_clean(public_key_hex, 'the public key').upper()}"


def fits_qr(text: str, level: str = "M") -> int:
    """The QR version (1..40) `text` needs at error correction `level` ("L" or "M");
    ValueError when no QR code holds it."""
    code = qrcode.QRCode(error_correction=QR_ERROR_LEVELS[level])
    code.add_data(text)
    try:
        code.make(fit=True)
    except (DataOverflowError, ValueError) as exc:  # ValueError: past version 40
        raise ValueError(f"{len(text)} characters do not fit a QR code at level "
                         f"{level}") from exc
    return int(code.version)
