"""SignedMetering (terminal/signed_metering.py) across a restart of the terminal: a
signing meter asked again for the end of a transaction it already ended answers that
same end document (LEM's GET /ocmf?transactionId=X); it is journaled once, and the
session stays billable from it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from drivers.meter.signing import (
    ClockSync,
    Identification,
    MeterClock,
    MeterKey,
    SignedReading,
    SigningError,
    TxReason,
)
from hw_mocks.ocmf_meter import OcmfMeterSim
from terminal.session import BeginSigned, EndSigned
from terminal.signed_metering import SignedMetering
from terminal.store import AsyncStore, Store
from tests.unit.clockfake import FakeClock
from tests.unit.signed.ocmf_helpers import World, key_of, make_sim


class SimMeter:
    """A signing meter on `OcmfMeterSim` that, like LEM's API, answers the end document
    of a transaction it already ended when asked to end it again."""

    model = SimpleNamespace(name="lem_dcbm400600")

    def __init__(self, sim: OcmfMeterSim) -> None:
        self.sim = sim
        self.documents: dict[str, str] = {}

    async def public_key(self) -> MeterKey:
        return key_of(self.sim)

    async def clock_state(self) -> MeterClock:
        return MeterClock(ClockSync.SYNCHRONIZED, None)

    async def start_transaction(self, transaction_id: str, identification: Identification,
                                tariff_text: str) -> SignedReading:
        text = self.sim.begin(transaction_id, identification.to_json(), tariff_text)
        self.documents[transaction_id] = text
        return SignedReading.from_ocmf(text)

    async def open_transaction(self) -> str | None:
        return self.sim.open_transaction()

    async def begin_document(self, transaction_id: str) -> SignedReading:
        text = self.sim.last_document()
        if self.sim.open_transaction() != transaction_id or text is None:
            raise SigningError("state", f"no transaction {transaction_id}")
        return SignedReading.from_ocmf(text)

    async def stop_transaction(self, transaction_id: str) -> SignedReading:
        return await self.abort_transaction(transaction_id, TxReason.END)

    async def abort_transaction(self, transaction_id: str, reason: TxReason) -> SignedReading:
        if self.sim.open_transaction() == transaction_id:
            self.documents[transaction_id] = self.sim.end(transaction_id, "E")
        elif transaction_id not in self.documents:
            raise SigningError("state", f"no transaction {transaction_id}")
        return SignedReading.from_ocmf(self.documents[transaction_id])


def metering(meter: SimMeter, store: AsyncStore) -> SignedMetering:
    async def audit(kind: str, detail: dict) -> None:
        audits.append(kind)

    audits: list[str] = []
    signing = SignedMetering(meter, store, FakeClock(), timeout_s=1.0,  # type: ignore[arg-type]
                             tariff_text=lambda auth: "0,39 EUR/kWh", audit=audit)
    signing.audits = audits  # type: ignore[attr-defined]
    return signing


def test_an_end_asked_again_after_a_restart_is_journaled_once_and_stays_billable(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EVTERM_CLOCK_SYNCED", "1")
    world = World()
    meter = SimMeter(make_sim(world))
    store = AsyncStore(Store.open(tmp_path / "journal.db"))

    async def run() -> None:
        before = metering(meter, store)
        start = await before.begin(BeginSigned("S-1", None), None)
        assert start.reading is not None
        world.charge("20000")
        first = await before.end(EndSigned("S-1", "L"), None)
        assert first.problem is None
        # killed before the SignedEnd was committed: the restarted daemon asks again
        after = metering(meter, store)
        await after.refresh()  # as station.recover does
        again = await after.end(EndSigned("S-1", "P"), None)
        assert again.problem is None, again.problem
        assert again.reading is not None and first.reading is not None
        assert again.reading.energy_import_wh == first.reading.energy_import_wh
        assert after.audits == []  # type: ignore[attr-defined]
        summary = after.summary("S-1")
        assert summary is not None and summary.problem is None

    try:
        asyncio.run(run())
        rows = store.store.signed_values("S-1")
    finally:
        store.close()
    assert [r["kind"] for r in rows] == ["begin", "end"]
    assert all(r["problems"] == [] for r in rows)

