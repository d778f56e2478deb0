"""End-of-day reconciliation against the simulators as separate processes:
- the backend simulator (`evterm sim backend-loopback`): real payments pre-authorised,
  captured and voided through the terminal's LoopbackBackend, then a discrepancy of each
  kind planted through the simulator's admin interface (missing capture, double
  capture, amount mismatch, orphan hold); the closing finds them all, repairs what it
  may (the capture retried, the hold voided: the simulator's ledger shows it), lists the
  rest for the operator, and the next closing finds the repaired payments consistent;
- the same over MQTT (`evterm sim backend` on mosquitto): the settlement batch and the
  repair as requests, the Z-report as an outbox event the simulator checks and records;
- the ZVT terminal (`evterm sim zvt`): payments booked through the ZVT client, the
  journal differing in one card group; the closing's End-of-day finds that group's
  totals mismatched and nothing else."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from drivers.zvt.client import ZvtClient
from hw_mocks.backend_process import BackendProcess
from hw_mocks.ports import free_port
from hw_mocks.rig import wait_ready
from hw_mocks.station_sim import control
from terminal.backend.loopback import LoopbackBackend
from terminal.backend.messages import CaptureRequest, PreauthRequest, VoidRequest
from terminal.kernel.cards import CardData, mask_pan
from terminal.kernel.clock import SYSTEM_CLOCK
from terminal.payment.closing import Closings, ClosingSettings
from terminal.payment.crypto import TokenKey, load_gateway_key, seal, tokenize
from terminal.payment.ledger import GatewayLedger, ZvtLedger
from terminal.store import AsyncStore, PaymentStatus, Store
from tests.unit.closing_helpers import journal_payment

D = Decimal
STATION = "DE*EVT*E0001*1"
VISA = "4111111111111111"  # public test card numbers only
KEY = TokenKey("k1", bytes(range(32)))
SETTINGS = ClosingSettings(STATION, time(3, 0), "Europe/Berlin", 5.0)


@pytest.fixture
def sim() -> Iterator[BackendProcess]:
    folder = Path(tempfile.mkdtemp(prefix="evrc-"))  # short: a socket path < 108 bytes
    backend_sim = BackendProcess(folder)
    backend_sim.start()
    yield backend_sim
    backend_sim.close()
    shutil.rmtree(folder, ignore_errors=True)


async def admin(sim: Any, cmd: str, **values: Any) -> dict[str, Any]:
    return await asyncio.to_thread(sim.admin, cmd, **values)


async def pay(backend: Any, sim: Any, reference: str,
              capture: str | None) -> str:
    """Pre-authorise 50.00 at the gateway, then capture `capture` or void; the PSP ref."""
    card = CardData(VISA, "2812")
    envelope = seal(card, load_gateway_key(sim.gateway_public), STATION, reference)
    answer = await backend.preauthorize(PreauthRequest(
        reference, STATION, D("50.00"), "EUR", envelope, tokenize(card, KEY), mask_pan(VISA),
        "visa"))
    assert answer.approved and answer.psp_reference
    if capture is None:
        assert (await backend.void(VoidRequest(reference, answer.psp_reference))).ok
    else:
        assert (await backend.capture(CaptureRequest(reference, answer.psp_reference,
                                                     D(capture), "EUR"))).ok
    return answer.psp_reference


def test_planted_discrepancies_are_found_and_the_repairable_ones_repaired(sim, tmp_path):
    store = Store.open(tmp_path / "journal.db")
    astore = AsyncStore(store)
    # journal reference -> what the terminal did (capture amount, or None: voided)
    done = {"a:pay": "12.34", "b:pay": "20.00", "c:pay": "15.00", "d:pay": None,
            "e:pay": "5.00"}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        backend = LoopbackBackend(sim.socket, STATION, 5.0, reconnect_min_s=0.05)
        await backend.start()
        assert backend.online
        try:
            for reference, capture in done.items():
                psp = await pay(backend, sim, reference, capture)
                status = PaymentStatus.VOIDED if capture is None else PaymentStatus.CAPTURED
                await astore.call(journal_payment, store, reference, status,
                                  SYSTEM_CLOCK.now(), psp_reference=psp,
                                  captured=None if capture is None else D(capture))
            await admin(sim, "plant", kind="drop_capture", reference="a:pay")
            await admin(sim, "plant", kind="double_capture", reference="b:pay")
            await admin(sim, "plant", kind="capture_amount", reference="c:pay",
                        amount="16.00")
            await admin(sim, "plant", kind="reopen", reference="d:pay")
            closings = Closings(GatewayLedger(backend, STATION, "EUR", 5.0), backend, astore,
                                SYSTEM_CLOCK, SETTINGS)
            first = await closings.close("service")
            second = await closings.close("service")
            ledger = await admin(sim, "ledger")
            return first, second, ledger
        finally:
            await backend.close()

    try:
        first, second, ledger = asyncio.run(scenario())
    finally:
        astore.close()
    found = {(f["kind"], f["reference"]) for f in first["findings"] if f["reference"]}
    assert found == {("missing_capture", "a:pay"), ("double_capture", "b:pay"),
                     ("amount_mismatch", "c:pay"), ("orphan_hold", "d:pay")}
    by_kind = {f["kind"]: f for f in first["findings"]}
    assert (by_kind["double_capture"]["journal_amount"],
            by_kind["double_capture"]["ledger_amount"]) == ("20.00", "40.00")
    assert (by_kind["amount_mismatch"]["journal_amount"],
            by_kind["amount_mismatch"]["ledger_amount"]) == ("15.00", "16.00")
    assert {(r["kind"], r["payment_reference"], r["status"]) for r in first["repairs"]} == \
        {("capture", "a:pay", "done"), ("void", "d:pay", "done")}
    assert {(x["kind"], x["reference"]) for x in first["remaining"]} >= \
        {("double_capture", "b:pay"), ("amount_mismatch", "c:pay")}
    # the gateway's ledger after the repairs
    payments = {p["reference"]: p for p in ledger["payments"]}
    assert (payments["a:pay"]["status"], payments["a:pay"]["captured"]) == ("captured", "12.34")
    assert payments["d:pay"]["status"] == "voided"
    # the next closing: the repaired payments are consistent, the rest was not touched
    assert second["period_start"] == first["period_end"]
    assert second["findings"] == [] and second["repairs"] == []
    assert {p["reference"] for p in second["payments"]} == {"a:pay", "d:pay"}
    # the visa totals of the first closing: 12.34 + 20.00 + 15.00 + 5.00 captured
    (visa,) = first["schemes"]
    assert visa["captured"] == {"count": 4, "amount": "52.34"}
    assert visa["voided"] == {"count": 1, "amount": "50.00"}
    store = Store.open(tmp_path / "journal.db")
    assert [m.kind for m in store.outbox() if m.kind == "z_report"] == ["z_report", "z_report"]


def test_over_mqtt_the_z_report_reaches_the_backend_simulator(broker, backend_sim, tmp_path):
    from terminal.backend.factory import create_backend
    from terminal.config import BackendConfig

    sim = backend_sim(broker)
    store = Store.open(tmp_path / "journal.db")
    astore = AsyncStore(store)
    config = BackendConfig(kind="mqtt", mqtt_port=broker.port, request_timeout_s=5.0,
                           keepalive_s=5)

    async def scenario() -> dict[str, Any]:
        backend = create_backend(config, STATION, astore, SYSTEM_CLOCK)
        await backend.start()
        try:
            psp = await pay(backend, sim, "m1:pay", "7.50")
            await astore.call(journal_payment, store, "m1:pay", PaymentStatus.CAPTURED,
                              SYSTEM_CLOCK.now(), psp_reference=psp, captured=D("7.50"))
            await admin(sim, "plant", kind="drop_capture", reference="m1:pay")
            closings = Closings(GatewayLedger(backend, STATION, "EUR", 5.0), backend, astore,
                                SYSTEM_CLOCK, SETTINGS)
            report = await closings.close("daily")
            for _ in range(250):
                view = await admin(sim, "events", kind="z_report")
                if view["events"]:
                    break
                await asyncio.sleep(0.02)
            return {"report": report, "view": view, "ledger": await admin(sim, "ledger")}
        finally:
            await backend.close()

    try:
        out = asyncio.run(scenario())
    finally:
        astore.close()
    report = out["report"]
    assert [(r["kind"], r["status"]) for r in report["repairs"]] == [("capture", "done")]
    (event,) = out["view"]["events"]
    assert event["station_id"] == STATION
    assert event["idempotency_key"] == f"z-report:{report['closing_id']}"
    assert event["payload"]["findings"] == report["findings"]
    assert out["view"]["rejected"] == []
    (payment,) = out["ledger"]["payments"]
    assert (payment["status"], payment["captured"]) == ("captured", "7.50")


# ---- the ZVT terminal -----------------------------------------------------------------------


@pytest.fixture
def zvt() -> Iterator[tuple[int, str]]:
    folder = tempfile.mkdtemp(prefix="evzr-")
    control_path = os.path.join(folder, "control.sock")
    proc = subprocess.Popen(
        [sys.executable, "-m", "terminal.cli", "sim", "zvt", "--tcp",
         f"127.0.0.1:{free_port()}", "--control", control_path,
         "--state", os.path.join(folder, "state.json")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = wait_ready(proc, "zvt simulator")
        yield int(ready["port"]), control_path
    finally:
        proc.kill()
        proc.wait(timeout=5)
        shutil.rmtree(folder, ignore_errors=True)


def test_zvt_end_of_day_totals_mismatch_is_found(zvt, tmp_path):
    port, control_path = zvt
    store = Store.open(tmp_path / "journal.db")
    astore = AsyncStore(store)
    now = datetime.now(UTC)

    async def book(client: ZvtClient, card: str, amount: str) -> None:
        assert control(control_path, {"cmd": "next", "card": card})["ok"]
        held = await client.preauthorize(D("50.00"))
        assert held.approved and held.receipt_number is not None
        booked = await client.book_total(held.receipt_number, D(amount))
        assert booked.approved

    async def scenario() -> dict[str, Any]:
        async with ZvtClient("127.0.0.1", port) as client:
            await client.register()
            await book(client, "visa", "12.34")
            await book(client, "mastercard", "5.00")
            ledger = ZvtLedger(client.end_of_day, "EUR", SYSTEM_CLOCK)
            closings = Closings(ledger, _NoBackend(), astore, SYSTEM_CLOCK, SETTINGS)
            return await closings.close("service")

    # the journal: the visa payment as booked, the mastercard one at 6.00
    journal_payment(store, "v:pay", PaymentStatus.CAPTURED, now, scheme="visa",
                    captured=D("12.34"), psp_reference="zvt-1", via="zvt")
    journal_payment(store, "m:pay", PaymentStatus.CAPTURED, now, scheme="mastercard",
                    captured=D("6.00"), psp_reference="zvt-2", via="zvt")
    # a built-in payment in the same journal: the ZVT closing does not judge it
    journal_payment(store, "g:pay", PaymentStatus.CAPTURED, now, scheme="mastercard",
                    captured=D("3.00"), psp_reference="P-3")
    try:
        report = asyncio.run(scenario())
    finally:
        astore.close()
    assert report["source"] == "zvt"
    assert {p["reference"] for p in report["payments"]} == {"v:pay", "m:pay"}
    (finding,) = report["findings"]
    assert (finding["kind"], finding["scheme"], finding["journal_amount"],
            finding["ledger_amount"], finding["journal_count"], finding["ledger_count"]) == \
        ("scheme_totals", "Eurocard", "6.00", "5.00", 1, 1)
    assert report["repairs"] == [] and len(report["remaining"]) == 1
    assert {t["scheme"]: t["amount"] for t in report["ledger"]["totals"]} == \
        {"Visa": "12.34", "Eurocard": "5.00"}


class _NoBackend:
    """No repair is planned here; the Z-report still goes to the outbox."""

    def wake(self) -> None:
        return None
