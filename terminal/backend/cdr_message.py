"""The backend message that carries a session's OCPI 2.2.1 CDR (docs/protocol.md, "cdr").

Provides `KIND` ("cdr", the outbox kind and the event's `kind`), `key(session_id)`
(the idempotency key: one CDR per session, `<session>:cdr`) and `payload(session_id,
cdr)` (`{"session_id", "cdr"}`; the CDR object as terminal.cdr builds it).
"""

from __future__ import annotations

from typing import Any

KIND = "cdr"


def key(session_id: str) -> str:
    """The CDR message's idempotency key: one per session."""
    return f"{session_id}:cdr"


def payload(session_id: str, cdr: dict[str, Any]) -> dict[str, Any]:
    """The event's payload."""
    return {"session_id": session_id, "cdr": cdr}
