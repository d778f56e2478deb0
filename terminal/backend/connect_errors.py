"""Why a connection to the MQTT broker failed, in words for the log: paho only reports
that it failed; the exception in flight when it calls `on_connect_fail` says why.

Provides `connect_failure_reason(exc)`.
"""

from __future__ import annotations

import socket
import ssl


def connect_failure_reason(exc: BaseException | None) -> str:
    """Why a connection to the broker failed, in words: the TLS reason (certificate
    verify failed and why, hostname mismatch, the broker's alert), connection refused,
    host not found, no answer; "cannot reach the broker" when nothing more is known."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"cannot reach the broker: TLS certificate verify failed: " \
            f"{getattr(exc, 'verify_message', None) or exc.reason or exc}"
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or exc.strerror or str(exc)
        return f"cannot reach the broker: TLS handshake failed: {reason}"
    if isinstance(exc, ConnectionRefusedError):
        return "cannot reach the broker: connection refused"
    if isinstance(exc, socket.gaierror):
        return f"cannot reach the broker: host not found ({exc.strerror})"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "cannot reach the broker: no answer (timed out)"
    if isinstance(exc, OSError):
        return f"cannot reach the broker: {exc.strerror or exc}"
    return "cannot reach the broker"
