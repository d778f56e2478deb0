"""A session's signed meter documents (OCMF, Eichrecht) as an OCPI 2.2.1 SignedData.

Provides `signed_data(begin_ocmf, end_ocmf, public_key_hex)`: OCPI 2.2.1
mod_cdrs.asciidoc "SignedData class" and "SignedValue class": `encoding_method`
"OCMF", `public_key` (the meter's key, base64 as the spec says; the meter gives it in
hex), `signed_values[]` with `nature` "Start" / "End", `plain_data` (the OCMF payload
section, un-encoded, or when it is longer than OCPI's 512 characters its readings:
`plain_data()`) and `signed_data` (the whole OCMF document as
the meter signed it, base64-encoded as the spec says, so a verifier such as the
Transparenzsoftware gets it unchanged). None without a document.
"""

from __future__ import annotations

import base64
import json
from typing import Any

PLAIN_DATA_CHARS = 512
_READING_KEYS = ("TM", "TX", "RV", "RI", "RU", "ST")


def _payload(document: str) -> str:
    """The payload section of `OCMF|{payload}|{signature}` (the document when not so)."""
    parts = document.split("|")
    return parts[1] if len(parts) >= 3 and parts[0] == "OCMF" else document


def plain_data(document: str) -> str:
    """What OCPI's `plain_data` (string(512)) can hold of an OCMF document: its payload
    when it fits, else its readings (time, transaction, value, OBIS id, unit, status:
    `{"RD":[...]}`), else its last reading; the whole document is in `signed_data`."""
    payload = _payload(document)
    if len(payload) <= PLAIN_DATA_CHARS:
        return payload
    try:
        readings = json.loads(payload).get("RD") or []
    except (ValueError, AttributeError):
        return ""
    kept = [{k: r[k] for k in _READING_KEYS if k in r} for r in readings
            if isinstance(r, dict)]
    for chosen in (kept, kept[-1:]):
        text = json.dumps({"RD": chosen}, separators=(",", ":"))
        if len(text) <= PLAIN_DATA_CHARS:
            return text
    return ""


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def public_key_base64(public_key_hex: str) -> str:
    """The meter's key (hex, as the meter gives it) base64-encoded, as OCPI wants it."""
    try:
        return _base64(bytes.fromhex(public_key_hex))
    except ValueError:
        return _base64(public_key_hex.encode())


def signed_data(begin_ocmf: str | None, end_ocmf: str | None,
                public_key_hex: str) -> dict[str, Any] | None:
    """The SignedData of the signed begin and end (None when neither is there)."""
    values = [
        {"nature": nature, "plain_data": plain_data(document),
         "signed_data": _base64(document.encode())}
        for nature, document in (("Start", begin_ocmf), ("End", end_ocmf)) if document
    ]
    if not values:
        return None
    return {"encoding_method": "OCMF", "public_key": public_key_base64(public_key_hex),
            "signed_values": values}
