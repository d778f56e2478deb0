"""The daemon as the updater sees it, through its local API's `status` op
(docs/local-api.md): whether a session is open, and whether a new release is healthy.

- `session_open(socket) -> bool | None`: True while a session is open (the phases of
  `terminal.session.model.OPEN_PHASES`), None when the daemon does not answer.
- `health(socket, version) -> (check, detail) | None`: None when healthy, else the first
  check that fails: `daemon_ready` (the local API answers, with the expected version),
  `meter_poll` (a meter poll has completed since the start), `readers` (every reader
  "ready"), `backend` (the backend link is connected).
- `wait_healthy(socket, version, timeout_s, interval_s)`: the same, asked until healthy
  or `timeout_s` (monotonic) has passed; returns the last failure or None.
"""

from __future__ import annotations

import time
from typing import Any

from terminal.localapi import request
from terminal.session.model import OPEN_PHASES

REQUEST_TIMEOUT_S = 3.0


def _status(socket: str) -> dict[str, Any] | None:
    try:
        reply = request(socket, {"op": "status"}, REQUEST_TIMEOUT_S)
    except (OSError, ValueError):
        return None
    if not reply.get("ok") or not isinstance(reply.get("state"), dict):
        return None
    return dict(reply["state"])


def session_open(socket: str) -> bool | None:
    state = _status(socket)
    if state is None:
        return None
    return str(state.get("phase")) in OPEN_PHASES


def health(socket: str, version: str) -> tuple[str, str] | None:
    state = _status(socket)
    if state is None:
        return "daemon_ready", f"the daemon does not answer on {socket}"
    if state.get("version") != version:
        return "daemon_ready", f"the daemon runs version {state.get('version')!r}"
    if not state.get("meter_polled"):
        return "meter_poll", "no meter poll has completed"
    readers = state.get("readers") or {}
    down = sorted(name for name, value in readers.items() if value != "ready")
    if down:
        return "readers", "not ready: " + ", ".join(f"{n} ({readers[n]})" for n in down)
    if not state.get("backend_online"):
        return "backend", "the backend link is not connected"
    return None


def wait_healthy(socket: str, version: str, timeout_s: float,
                 interval_s: float = 0.5) -> tuple[str, str] | None:
    deadline = time.monotonic() + timeout_s
    while True:
        failed = health(socket, version)
        if failed is None or time.monotonic() >= deadline:
            return failed
        time.sleep(interval_s)
