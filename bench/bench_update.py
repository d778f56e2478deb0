"""Benchmark of one signed update on the board over loopback; prints one JSON object.

Target: the daemon is down for less than 10 s: from the last answer of the old
release's daemon to the first answer of the new release's daemon that says it is
ready (its local API answers `status` with the new version).

How (the JSON says the same under "method"): tests/integration/update_rig.py builds the
releases (evterm's wheel from a copy of the checkout, the dependencies' wheels repacked
from this environment), serves them with a real HTTP server on 127.0.0.1, and starts a
board: the station and backend simulators, and a supervisor playing systemd that runs
the daemon from /opt/evterm/current (a temporary root) and the updater. The update is
asked for as the backend's firmware_update command leaves it; a probe asks the daemon's
local API every 20 ms throughout. Reported: the downtime, the whole update (request to
Installed), and the steps' times from the journal's reports. The release is a signed
TUF target made by `evterm release`, fetched and verified by the real `fetch_release`.

    .venv/bin/python bench/bench_update.py
"""

from __future__ import annotations

import json
import platform
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from terminal import __version__
from terminal.localapi import request
from terminal.update.journal import UpdateRequest
from terminal.update.request import write_request
from tests.integration.update_rig import GOOD, Board, UpdateKit, remove, short_folder

TARGET_DOWNTIME_S = 10.0


class Probe(threading.Thread):
    """The daemon's version (None: no answer) every 20 ms, with time.monotonic()."""

    def __init__(self, socket_path: str) -> None:
        super().__init__(daemon=True)
        self.socket_path = socket_path
        self.samples: list[tuple[float, str | None]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                reply = request(self.socket_path, {"op": "status"}, 1.0)
                version = reply["state"].get("version") if reply.get("ok") else None
            except (OSError, ValueError, KeyError):
                version = None
            self.samples.append((time.monotonic(), version))
            time.sleep(0.02)

    def downtime_s(self, old: str, new: str) -> float | None:
        last_old = first_new = None
        for at, version in self.samples:
            if version == old and first_new is None:
                last_old = at
            if version == new and first_new is None:
                first_new = at
        if last_old is None or first_new is None:
            return None
        return round(first_new - last_old, 3)


def main() -> int:
    started = time.monotonic()
    kit_folder = short_folder("evbkit-")
    kit = UpdateKit.build(kit_folder)
    board = Board(kit, short_folder("evbup-"), health_timeout_s=60.0)
    try:
        kit_s = round(time.monotonic() - started, 1)
        board.start()
        probe = Probe(board.rig.socket_path)
        probe.start()
        asked = time.monotonic()
        write_request(board.state_dir, UpdateRequest(1, GOOD, kit.url))
        statuses = board.wait_done("Installed", timeout_s=300)
        update_s = round(time.monotonic() - asked, 3)
        board.wait_version(GOOD)
        probe.stopping.set()
        probe.join()
        reports = board.journal().reports
        times = [datetime.fromisoformat(r["at"]) for r in reports]
        steps = {r["status"]: round((t - times[0]).total_seconds(), 3)
                 for r, t in zip(reports, times, strict=True)}
        downtime = probe.downtime_s(__version__, GOOD)
    finally:
        board.close()
        kit.close()
        remove(board.folder)
        remove(kit_folder)
    result: dict[str, Any] = {
        "benchmark": "update",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "method": ("one update 0.1.0 -> 0.1.1 on a test board (update_rig): a signed TUF "
                   "release (evterm release) fetched over loopback HTTP by fetch_release, "
                   "offline pip install into a new release venv "
                   "(no byte compilation), switch, restart by the supervisor, health "
                   "check; downtime = last answer of the old daemon -> first answer of "
                   "the new one (local API status, probed every 20 ms)"),
        "statuses": statuses,
        "steps_s_since_downloading": steps,
        "update_s": update_s,
        "downtime_s": downtime,
        "target_downtime_s": TARGET_DOWNTIME_S,
        "setup_s": kit_s,
        "total_s": round(time.monotonic() - started, 1),
        "pass": downtime is not None and downtime < TARGET_DOWNTIME_S,
    }
    print(json.dumps(result, indent=2))
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
