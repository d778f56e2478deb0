"""SignedMetering (the daemon's side of a signing meter) against an in-process meter
built on the simulator core (real ECDSA documents): documents checked and journaled
before use, failures reported and never replaced, held transactions ended, a changed
key refuses new sessions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

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
from terminal.session import Authorization, BeginSigned, EndSigned
from terminal.signed_metering import KEY_CHANGED, SignedMetering, identification
from terminal.store import AsyncStore, Store

NOW = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


class Clock:
    speed = 1.0

    def now(self) -> datetime:
        return NOW

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


class Meter:
    """A SigningMeter over OcmfMeterSim; `fail` makes the named request raise."""

    def __init__(self) -> None:
        self.energy = Decimal(5000)
        self.sim = OcmfMeterSim(serial="M1", model="DCBM", manufacturer="LEM", firmware="1",
                                curve="secp256r1", energy_wh=lambda: self.energy,
                                now=lambda: NOW)
        self.model = SimpleNamespace(name="Test meter")
        self.fail: dict[str, SigningError] = {}
        self.calls: list[str] = []
        self.ended: dict[str, str] = {}

    def _maybe_fail(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail:
            raise self.fail[name]

    async def public_key(self) -> MeterKey:
        self._maybe_fail("public_key")
        return MeterKey(self.sim.public_key_hex, self.sim.signing_method, "M1")

    async def clock_state(self) -> MeterClock:
        return MeterClock(ClockSync.SYNCHRONIZED, NOW)

    async def start_transaction(self, transaction_id: str, ident: Identification,
                                tariff_text: str) -> SignedReading:
        self._maybe_fail("start")
        return SignedReading.from_ocmf(self.sim.begin(transaction_id, ident.to_json(),
                                                      tariff_text))

    async def stop_transaction(self, transaction_id: str) -> SignedReading:
        self._maybe_fail("stop")
        return self._end(transaction_id, "E")

    async def abort_transaction(self, transaction_id: str, reason: TxReason) -> SignedReading:
        self._maybe_fail("abort")
        return self._end(transaction_id, reason.value)

    def _end(self, transaction_id: str, reason: str) -> SignedReading:
        """Like LEM: a transaction it already ended is answered with its end again."""
        if self.sim.open_transaction() == transaction_id:
            self.ended[transaction_id] = self.sim.end(transaction_id, reason)
        elif transaction_id not in self.ended:
            raise SigningError("state", f"no transaction {transaction_id}")
        return SignedReading.from_ocmf(self.ended[transaction_id])

    async def open_transaction(self) -> str | None:
        return self.sim.open_transaction()

    async def begin_document(self, transaction_id: str) -> SignedReading:
        text = self.sim.last_document()
        if self.sim.open_transaction() != transaction_id or text is None:
            raise SigningError("state", f"no transaction {transaction_id}")
        return SignedReading.from_ocmf(text)

    def close(self) -> None:
        pass


def new_metering(meter: Meter, store: Store, audit: Any) -> SignedMetering:
    return SignedMetering(meter, AsyncStore(store), Clock(), timeout_s=5,  # type: ignore[arg-type]
                          tariff_text=lambda auth: "0.59 EUR/kWh", audit=audit)


@pytest.fixture
def parts(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    audits: list[tuple[str, dict[str, Any]]] = []

    async def audit(kind: str, detail: dict[str, Any]) -> None:
        audits.append((kind, detail))

    meter = Meter()
    signing = new_metering(meter, store, audit)
    yield signing, meter, store, audits
    store.close()


AUTH = Authorization(id_token="04A1B2C3", source="rfid")


def test_a_pair_is_journaled_checked_and_answered_with_the_signed_values(parts):
    signing, meter, store, audits = parts

    async def go():
        start = await signing.begin(BeginSigned("S-1", AUTH), None)
        meter.energy += 1234
        end = await signing.end(EndSigned("S-1", "L"), None)
        return start, end

    start, end = asyncio.run(go())
    assert start.reading is not None and start.reading.energy_import_wh == 5000
    assert end.reading is not None and end.reading.energy_import_wh == 6234
    assert end.problem is None and audits == []
    rows = store.signed_values("S-1")
    assert [(r["kind"], r["problems"]) for r in rows] == [("begin", []), ("end", [])]
    summary = signing.summary("S-1")
    assert summary is not None and summary.billable_by_energy
    assert start.signed is not None and start.signed["signedMeterData"] == rows[0]["ocmf"]


def test_a_begin_the_meter_refuses_is_a_problem_and_the_operator_is_told(parts):
    signing, meter, store, audits = parts
    meter.fail["start"] = SigningError("refused", "POST /legal: HTTP 400")
    start = asyncio.run(signing.begin(BeginSigned("S-1", AUTH), None))
    assert start.reading is None and "HTTP 400" in (start.problem or "")
    assert audits[0][0] == "signed_meter_begin_failed"
    assert store.signed_values("S-1") == []


def test_a_bad_begin_signature_ends_the_transaction_on_the_meter_gap_free(parts):
    signing, meter, store, audits = parts
    meter.sim.set_fault("bad_signature", True)
    start = asyncio.run(signing.begin(BeginSigned("S-1", AUTH), None))
    assert start.reading is None and "signature" in (start.problem or "")
    assert meter.sim.open_transaction() is None
    assert [r["kind"] for r in store.signed_values("S-1")] == ["begin", "late_end"]
    assert {kind for kind, _ in audits} >= {"signed_meter_value_invalid",
                                            "signed_meter_begin_failed"}


def test_an_end_that_never_comes_is_asked_three_times_then_reported(parts):
    signing, meter, _store, audits = parts

    async def go():
        await signing.begin(BeginSigned("S-1", AUTH), None)
        meter.fail["stop"] = SigningError("timeout", "no answer")
        return await signing.end(EndSigned("S-1", "E"), None)

    end = asyncio.run(go())
    assert end.reading is None and end.problem == "the end was not signed: timeout: no answer"
    assert meter.calls.count("stop") == 3
    assert audits[-1][0] == "signed_meter_end_missing"


def test_a_transaction_the_meter_still_holds_is_ended_before_the_next_begin(parts):
    signing, meter, store, audits = parts
    meter.sim.begin("S-old", {}, "")  # left open by a crash
    asyncio.run(signing.begin(BeginSigned("S-2", AUTH), None))
    assert [r["kind"] for r in store.signed_values("S-old")] == ["begin", "late_end"]
    assert ("signed_meter_transaction_closed", {"session_id": "S-old", "reason": "P",
            "pagination": store.signed_values("S-old")[1]["pagination"]}) in audits


def test_an_end_asked_again_after_a_restart_is_journaled_once_and_stays_billable(parts):
    """Killed before the SignedEnd was committed: the restarted daemon (a new
    SignedMetering) asks again, the meter answers the same end; journaled once."""
    signing, meter, store, audits = parts

    async def go():
        await signing.begin(BeginSigned("S-1", AUTH), None)
        meter.energy += 20000
        first = await signing.end(EndSigned("S-1", "L"), None)
        after = new_metering(meter, store, signing.audit)
        await after.refresh()
        return first, await after.end(EndSigned("S-1", "P"), None), after

    first, again, after = asyncio.run(go())
    assert again.problem is None and again.reading is not None and first.reading is not None
    assert again.reading.energy_import_wh == first.reading.energy_import_wh
    assert [r["kind"] for r in store.signed_values("S-1")] == ["begin", "end"]
    summary = after.summary("S-1")
    assert summary is not None and summary.problem is None and audits == []


def test_a_begin_the_terminal_never_journaled_is_fetched_before_the_end(parts):
    """Killed between asking for the begin and journaling it: after the restart the
    meter's begin is fetched and journaled, then the end: no pagination gap."""
    signing, meter, store, audits = parts
    meter.sim.begin("S-1", {}, "")  # the meter began; the journal never heard of it

    async def go():
        await signing.refresh()
        return await signing.end(EndSigned("S-1", "P"), None)

    end = asyncio.run(go())
    rows = store.signed_values("S-1")
    assert [(r["kind"], r["problems"]) for r in rows] == [("begin", []), ("end", [])]
    assert end.problem is None and audits == []


def test_a_changed_public_key_refuses_new_sessions(parts):
    signing, meter, _store, audits = parts
    asyncio.run(signing.refresh())
    assert signing.refusal() is None
    registered = signing.key
    meter.sim = OcmfMeterSim(serial="M1", model="DCBM", manufacturer="LEM", firmware="1",
                             curve="secp256r1", energy_wh=lambda: meter.energy, now=lambda: NOW)
    asyncio.run(signing.refresh())
    assert signing.refusal() == KEY_CHANGED and signing.key == registered
    assert audits[-1][0] == "signed_meter_key_changed"
    assert signing.status()["fault"] is None  # the key itself is fine; the gate says why


def test_identification_never_carries_a_card_number():
    card = identification(Authorization(id_token="tok-abc", source="card",
                                        payment_reference="PAY-1"))
    assert (card.type, card.data) == ("CARD_TXN_NR", "PAY-1")
    rfid = identification(AUTH)
    assert (rfid.type, rfid.data, rfid.level) == ("ISO14443", "04A1B2C3", "VERIFIED")
    offline = identification(Authorization(id_token="04FF", source="rfid", recheck=True))
    assert offline.level == "UNKNOWN"


def test_a_key_changed_while_the_terminal_was_down_is_caught_at_the_first_refresh(parts):
    signing, meter, store, audits = parts
    asyncio.run(signing.begin(BeginSigned("S-1", AUTH), None))  # journaled with key 1
    asyncio.run(signing.end(EndSigned("S-1", "E"), None))
    restarted = new_metering(meter, store, signing.audit)
    meter.sim = OcmfMeterSim(serial="M1", model="DCBM", manufacturer="LEM", firmware="1",
                             curve="secp256r1", energy_wh=lambda: meter.energy, now=lambda: NOW)
    asyncio.run(restarted.refresh())
    asyncio.run(restarted.refresh())
    assert restarted.refusal() == KEY_CHANGED
    assert [kind for kind, _ in audits].count("signed_meter_key_changed") == 1


def test_the_registered_key_of_the_configuration_decides(parts):
    signing, meter, store, _audits = parts
    other = OcmfMeterSim(serial="M2", model="DCBM", manufacturer="LEM", firmware="1",
                         curve="secp256r1", energy_wh=lambda: meter.energy, now=lambda: NOW)
    pinned = new_metering(meter, store, signing.audit)
    pinned.registered_key_hex = other.public_key_hex  # registered: not this meter's key
    asyncio.run(pinned.refresh())
    assert pinned.refusal() == KEY_CHANGED
    accepted = new_metering(meter, store, signing.audit)
    accepted.registered_key_hex = meter.sim.public_key_hex.lower().upper()
    asyncio.run(accepted.refresh())
    assert accepted.refusal() is None
