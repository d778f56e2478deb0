"""In the daemon: the updater's FirmwareStatus reports into the outbox (docs/updates.md,
"Statuses"; docs/protocol.md, `firmware_status`).

The updater runs as root in its own process and never writes the daemon's database; it
keeps its reports in its journal (terminal/update/journal.py, readable by the daemon).
`FirmwareRelay(journal_path, store, clock, link).run(interval_s)` reads them every
interval and queues each one once as an outbox event of kind `firmware_status`
(idempotency key `firmware_status:<request id>:<seq>:<time>`: the time keeps keys apart
if the journal was ever started afresh; a report made while the daemon
was down, e.g. during the restart into a new release, goes out when it is up again).

On failure: a journal that cannot be read is logged (rate-limited) and read again at
the next interval; nothing stops the loop.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from terminal.backend.firmware import FIRMWARE_STATUSES, firmware_status_payload
from terminal.kernel.clock import Clock
from terminal.kernel.logsetup import FaultLogger, get_logger
from terminal.ports import LinkState
from terminal.store import AsyncStore
from terminal.update.journal import JournalError, read_reports

log = get_logger("update")
KIND = "firmware_status"


class FirmwareRelay:
    def __init__(self, journal_path: Path, store: AsyncStore, clock: Clock,
                 link: LinkState) -> None:
        self.journal_path = journal_path
        self.store = store
        self.clock = clock
        self.link = link
        self.faults = FaultLogger(log, "firmware status relay")
        self.queued: set[str] = set()

    async def relay_once(self) -> int:
        """Queues the reports not queued yet; how many were new."""
        try:
            _, reports = await asyncio.to_thread(read_reports, self.journal_path)
        except (JournalError, OSError) as exc:
            self.faults.failed(str(exc))
            return 0
        new = 0
        store = self.store
        for report in reports:
            key = f"{KIND}:{report.get('request_id')}:{report.get('seq')}:{report.get('at')}"
            if key in self.queued or report.get("status") not in FIRMWARE_STATUSES:
                continue
            payload = firmware_status_payload(report.get("request_id"), report["status"],
                                              str(report.get("version")), report.get("info"))
            try:
                at = datetime.fromisoformat(str(report.get("at")))
            except ValueError:
                at = self.clock.now()
            if await store.call(store.store.add_outbox, KIND, key, payload, at):
                new += 1
            self.queued.add(key)
        if new:
            self.link.wake()
        self.faults.recovered()
        return new

    async def run(self, interval_s: float) -> None:
        while True:
            try:
                await self.relay_once()
            except Exception as exc:  # a store fault: tried again at the next interval
                self.faults.failed(str(exc))
            await asyncio.sleep(interval_s)
