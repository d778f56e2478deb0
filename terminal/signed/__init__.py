"""Signed meter documents (Eichrecht): the daemon-side checks of OCMF documents
(`verify.py`: `verify_document`, `verify_pair`, `pair_warnings`), what goes to the
S.A.F.E. Transparenzsoftware (`transparency.py`: its XML file, the QR code's text) and
`evterm ocmf verify` (`cli.py`, reading its input with `inputs.py`). Every signature
and Eichrecht rule is pyocmf's.

The checks are re-exported here, loaded on first use, so that registering the CLI
does not load pyocmf for every `evterm` command.
"""

from __future__ import annotations

from typing import Any

__all__ = ["pair_warnings", "parse_ocmf", "verify_document", "verify_pair"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from terminal.signed import verify

        return getattr(verify, name)
    raise AttributeError(f"module 'terminal.signed' has no attribute {name!r}")
