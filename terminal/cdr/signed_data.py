"""A session's signed meter documents (OCMF, Eichrecht) as an OCPI 2.2.1 SignedData.

Provides `signed_data(begin_ocmf, end_ocmf, public_key_hex)`: OCPI 2.2.1
mod_cdrs.asciidoc "SignedData class" and "SignedValue class": `encoding_method`
"OCMF", `public_key` (the meter's key, hex as the meter gives it), `signed_values[]`
with `nature` "Start" / "End", `plain_data` (the OCMF payload section, the readable
values) and `signed_data` (the whole OCMF document as the meter signed it, so a
verifier such as the Transparenzsoftware takes it as it is). None without a document.
"""

from __future__ import annotations

from typing import Any


def _payload(document: str) -> str:
    """The payload section of `OCMF|{payload}|{signature}` (the document when not so)."""
    parts = document.split("|")
    return parts[1] if len(parts) >= 3 and parts[0] == "OCMF" else document


def signed_data(begin_ocmf: str | None, end_ocmf: str | None,
                public_key_hex: str) -> dict[str, Any] | None:
    """The SignedData of the signed begin and end (None when neither is there)."""
    values = [
        {"nature": nature, "plain_data": _payload(document), "signed_data": document}
        for nature, document in (("Start", begin_ocmf), ("End", end_ocmf)) if document
    ]
    if not values:
        return None
    return {"encoding_method": "OCMF", "public_key": public_key_hex, "signed_values": values}
