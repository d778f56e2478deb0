"""The retention policy (terminal.store.retention, terminal.retention): what is pruned,
thinned, anonymised and deleted, and what is kept (receipts, start/stop readings, open,
undelivered and unsettled sessions); bills recomputed afterwards equal the originals;
the work is done in small batches."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from terminal.billing import bill_from_journal
from terminal.config import ConfigError, parse_config
from terminal.kernel.clock import iso_utc
from terminal.retention import Retention, RetentionSettings, thinning_plan
from terminal.store import AsyncStore, PaymentStatus, Store
from terminal.store.retention import ANONYMISED, Budget, RetentionPolicy, RetentionTables
from tests.unit.retention_helpers import charge, deliver_all
from tests.unit.session_helpers import RULES, Driver

DAY = timedelta(days=1)
START = datetime(2026, 1, 5, 16, 40, tzinfo=UTC)  # a Monday: the 17:00 price change inside


class FakeClock:
    speed = 1.0

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at

    def monotonic_s(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


@pytest.fixture
def store(tmp_path):
    store = Store.open(tmp_path / "evterm.db")
    store.conn.execute("PRAGMA synchronous=OFF")  # speed: durability is not under test
    yield store
    store.close()


def receipts(store: Store) -> dict[str, tuple[object, str]]:
    rows = store.conn.execute("SELECT session_id, receipt_json, receipt_text FROM receipts")
    return {sid: (json.loads(data), text) for sid, data, text in rows}


def kinds(store: Store, session_id: str) -> list[str]:
    return [kind for kind, _ in store.readings(session_id)]


def run_until_idle(job: Retention, limit: int = 10_000) -> int:
    """Steps until the job has nothing to do; how many steps did work."""
    async def go() -> int:
        for count in range(limit):
            if not await job.step():
                return count
        raise AssertionError("the job never finished")
    return asyncio.run(go())


def job_for(store: Store, now: datetime, **settings: object) -> Retention:
    return Retention(RetentionSettings(**settings), AsyncStore(store), FakeClock(now))  # type: ignore[arg-type]


# ---- the outbox ----------------------------------------------------------------------


def test_delivered_messages_go_after_outbox_days_undelivered_ones_never(store):
    charge(store, "S-old", START, 60)
    deliver_all(store, START + DAY)
    charge(store, "S-new", START + 40 * DAY, 60)
    deliver_all(store, START + 40 * DAY)
    store.add_outbox("Status", "status:1", {"x": 1}, START)  # never delivered
    tables = RetentionTables(store)
    assert tables.prune_outbox(START + 31 * DAY) > 0
    left = store.outbox(limit=10_000)
    assert {m.session_id for m in left} == {"S-new", None}
    assert [m.idempotency_key for m in left if m.delivered_at is None] == ["status:1"]
    assert tables.prune_outbox(START + 31 * DAY) == 0


# ---- thinning ------------------------------------------------------------------------


def test_thinning_keeps_start_stop_and_the_bill(store):
    charge(store, "S-1", START, 1800, idle_after_s=120)
    deliver_all(store, START + DAY)
    before = receipts(store)["S-1"]
    full = kinds(store, "S-1")
    assert len(full) > 1900
    job = job_for(store, START + 100 * DAY)
    assert run_until_idle(job) > 0
    after = kinds(store, "S-1")
    row = store.session("S-1")
    first, last = store.readings("S-1")[0][1], store.readings("S-1")[-1][1]
    assert after[0] == "start" and str(first.energy_import_wh) == row["meter_start_wh"]
    assert (str(last.energy_import_wh), last.timestamp.isoformat()) == (
        row["meter_stop_wh"], row["stopped_at"])  # the stop reading stays
    assert len(after) <= 10, after  # the readings the bill needs
    assert receipts(store)["S-1"] == before  # the receipt is never touched
    rebuilt = bill_from_journal(store, "S-1")
    assert rebuilt is not None and rebuilt.receipt == before  # recomputed: identical
    assert store.session("S-1")["thinned_at"] is not None
    assert store.session("S-1")["meter_start_wh"] == "1000000"  # start/stop kept
    assert store.transitions("S-1") == []  # diagnostics: the row keeps phase and reason
    assert row["phase"] == "Completed" and row["stop_reason"] == "EVDisconnected"
    stored = store.conn.execute("SELECT tariff_json, terms_id FROM sessions").fetchone()
    assert stored[0] is None and stored[1] is not None  # the terms are kept once


def test_thinning_a_signed_session_keeps_the_bill_the_signed_values_make(store):
    """A signing meter's session with an untrusted clock at its end: its bill has no
    time-based charges; thinning prices it the same way and the rebuilt bill is equal."""
    import dataclasses

    from drivers.meter.signing import ClockSync, MeterKey, SignedReading, TxReason

    charge(store, "S-1", START, 1800, idle_after_s=120)
    readings = [r for _, r in store.readings("S-1")]
    key = MeterKey("3059AA", "ECDSA-secp256r1-SHA256", "MTR-1")
    for kind, reading, clock in (("begin", readings[0], ClockSync.SYNCHRONIZED),
                                 ("end", readings[-1], ClockSync.INFORMATIVE)):
        doc = SignedReading(ocmf=f"OCMF|{kind}|x", tx=TxReason.BEGIN if kind == "begin"
                            else TxReason.END, energy_wh=reading.energy_import_wh,
                            meter_time=reading.timestamp, clock=clock, pagination="T1",
                            meter_serial="MTR-1", status="G", error_flags="", obis="1-b:1.8.0")
        store.add_signed_value("S-1", kind, dataclasses.replace(doc), key, [], START, True)
    before = bill_from_journal(store, "S-1")
    assert before is not None and before.receipt_json["signed_meter"]["time_billed"] is False
    deliver_all(store, START + DAY)
    run_until_idle(job_for(store, START + 100 * DAY))
    assert store.session("S-1")["thinned_at"] is not None
    assert len(kinds(store, "S-1")) < len(readings)
    rebuilt = bill_from_journal(store, "S-1")
    assert rebuilt is not None and rebuilt.receipt == before.receipt


def test_open_undelivered_unsettled_and_recent_sessions_are_not_thinned(store):
    charge(store, "S-recent", START + 95 * DAY, 120)
    charge(store, "S-undelivered", START, 120)
    charge(store, "S-unsettled", START, 120)
    store.add_payment(reference="P-1", session_id="S-unsettled", token="k1.abc",
                      masked_pan="411111******1111", scheme="visa", last4="1111",
                      currency="EUR", amount_requested=Decimal(50), at=START)
    store.update_payment("P-1", START, status=PaymentStatus.CAPTURE_PENDING)
    deliver_all(store, START + 96 * DAY)
    store.add_outbox("TransactionEvent", "late", {"x": 1}, START, session_id="S-undelivered")
    d = Driver()  # an open session, charging, its start long ago
    for result in (d.authorize(0), d.tick(1, 10_000, 0), d.tick(2, 10_010, 50_000),
                   d.tick(3, 10_020, 50_000), d.tick(4, 10_030, 50_000)):
        store.commit(result.records, None, session_id="S-1", at=START - 500 * DAY)
    counts = {sid: len(kinds(store, sid)) for sid in
              ("S-recent", "S-undelivered", "S-unsettled", "S-1")}
    job = job_for(store, START + 100 * DAY)
    run_until_idle(job)
    assert {sid: len(kinds(store, sid)) for sid in counts} == counts
    assert RetentionTables(store).next_to_thin(START + 86 * DAY) is None  # 14 days before
    with pytest.raises(ValueError, match="open"):
        RetentionTables(store).drop_readings("S-1", [1, 2])
    # settled and delivered (with the NotifySettlement its capture queued): now it goes
    store.update_payment("P-1", START, status=PaymentStatus.CAPTURED)
    store.mark_delivered([m.id for m in store.outbox(pending_only=True)], START + 61 * DAY)
    run_until_idle(job_for(store, START + 100 * DAY))
    assert len(kinds(store, "S-undelivered")) < counts["S-undelivered"]
    assert len(kinds(store, "S-unsettled")) < counts["S-unsettled"]
    assert len(kinds(store, "S-1")) == counts["S-1"]  # open: never


def test_a_plan_that_would_change_the_price_is_not_applied(store, monkeypatch):
    charge(store, "S-1", START, 300)
    row = store.session("S-1")
    readings = RetentionTables(store).raw_readings("S-1")
    assert thinning_plan(row, readings, None)  # samples can go
    import terminal.retention as job_module
    monkeypatch.setattr(job_module, "samples_needed",
                        lambda *a, **k: [i % 7 == 0 or i == len(readings) - 1
                                         for i in range(len(readings))])
    # dropping samples blindly would cut the 17:00 boundary's interpolation: refused
    assert thinning_plan(row, readings, None) == []


# ---- the privacy period --------------------------------------------------------------


def test_identifiers_are_dropped_after_the_privacy_period_and_the_bill_still_recomputes(store):
    charge(store, "S-card", START, 300, token="k1.cardtoken", source="card",
           auth={"card_scheme": "visa", "card_last4": "1111", "payment_reference": "P-1",
                 "cost_cap": Decimal(50)})
    store.add_payment(reference="P-1", session_id="S-card", token="k1.cardtoken",
                      masked_pan="411111******1111", scheme="visa", last4="1111",
                      currency="EUR", amount_requested=Decimal(50), at=START)
    store.update_payment("P-1", START, status=PaymentStatus.CAPTURED,
                         envelope_json={"sealed": "x"})
    charge(store, "S-young", START + 200 * DAY, 60, token="04YOUNG")
    deliver_all(store, START + 200 * DAY)
    store.add_audit("service_login", {"technician": "04TECH", "reader": "r1"}, START)
    store.add_audit("problem_report", {"by": "driver", "text": "call me 0151"}, START)
    store.add_audit("tariff", {"by": "backend", "tariff_id": "T1"}, START)
    store.add_audit("service_login", {"technician": "04TECH2"}, START + 200 * DAY)
    for token, expires in (("04OLDCACHE", START), ("04FRESH", START + 400 * DAY)):
        store.conn.execute("INSERT INTO auth_cache (id_token, status, expires_at, "
                           "response_json, last_used) VALUES (?, 'Accepted', ?, '{}', 1)",
                           (token, iso_utc(expires)))
    before = receipts(store)
    before_cdr = store.cdr("S-card")
    assert before_cdr is not None and "k1.cardtoken" in before_cdr
    bill_before = bill_from_journal(store, "S-card")
    tables = RetentionTables(store)
    now = START + 190 * DAY
    while tables.anonymise(now - timedelta(days=180), now):
        pass
    card = store.session("S-card")
    assert card["id_token"] == ANONYMISED and card["anonymised_at"] is not None
    auth = json.loads(card["authorization_json"])
    assert auth["id_token"] == ANONYMISED
    assert (auth["card_last4"], auth["payment_reference"]) == ("1111", "P-1")
    payment = store.payment(session_id="S-card")
    assert (payment.token, payment.masked_pan, payment.envelope_json) == (
        ANONYMISED, "****1111", None)
    assert store.session("S-young")["id_token"] == "04YOUNG"  # not yet due
    dump = "\n".join(str(row) for table in ("sessions", "payments", "audit", "cdrs")
                     for row in store.conn.execute(f"SELECT * FROM {table}"))
    assert "k1.cardtoken" not in dump and "04A1B2C3D4" not in dump
    assert '"04TECH"' not in dump and "0151" not in dump
    assert "04TECH2" in dump  # an audit entry not yet due
    assert '"tariff_id": "T1"' in dump  # what is not personal stays
    cached = [row[0] for row in store.conn.execute("SELECT id_token FROM auth_cache")]
    assert cached == ["04FRESH"]  # expired more than privacy_days ago: gone
    assert receipts(store) == before
    cdr = json.loads(store.cdr("S-card"))
    assert (cdr["cdr_token"]["uid"], cdr["cdr_token"]["contract_id"]) == (ANONYMISED,
                                                                           ANONYMISED)
    assert cdr["total_cost"] == json.loads(before_cdr)["total_cost"]  # the figures stay
    rebuilt = bill_from_journal(store, "S-card")
    assert rebuilt is not None and rebuilt.receipt == bill_before.receipt
    assert rebuilt.amount_charged == bill_before.amount_charged


def test_an_unsettled_or_undelivered_session_keeps_its_identifiers(store):
    charge(store, "S-1", START, 60, token="04PENDING")
    store.add_outbox("TransactionEvent", "late", {"x": 1}, START, session_id="S-1")
    RetentionTables(store).anonymise(START + 400 * DAY, START + 400 * DAY)
    assert store.session("S-1")["id_token"] == "04PENDING"


# ---- the legal period ----------------------------------------------------------------


def test_sessions_past_the_legal_period_are_deleted_entirely_younger_receipts_stay(store):
    charge(store, "S-ancient", START, 60)
    store.add_payment(reference="P-1", session_id="S-ancient", token="t", masked_pan="m",
                      scheme="visa", last4="1111", currency="EUR",
                      amount_requested=Decimal(50), at=START)
    store.update_payment("P-1", START, status=PaymentStatus.CAPTURED)
    store.add_refund(refund_id="R-1", reference="P-1", session_id="S-ancient",
                     amount=Decimal(1), currency="EUR", reason=None, at=START)
    charge(store, "S-kept", START + 3000 * DAY, 60)
    deliver_all(store, START + 3000 * DAY)
    store.add_audit("tariff", {"by": "backend"}, START)
    charge(store, "S-ancient-pending", START, 60)
    store.add_outbox("TransactionEvent", "never-acked", {"x": 1}, START,
                     session_id="S-ancient-pending")
    job = job_for(store, START + 3654 * DAY)
    run_until_idle(job)
    assert store.session("S-ancient") is None
    assert store.session("S-ancient-pending") is not None  # a message still to deliver
    for table in ("readings", "transitions", "receipts", "payments", "refunds", "outbox",
                  "cdrs"):
        assert store.conn.execute(f"SELECT COUNT(*) FROM {table} WHERE session_id = ?",
                                  ("S-ancient",)).fetchone()[0] == 0, table
    assert store.cdr("S-kept") is not None
    assert store.audit() == []
    assert store.receipt("S-kept") is not None
    assert kinds(store, "S-kept")[0] == "start"
    summary = RetentionTables(store).last_run()["last_run"]
    assert summary["rows_expired"] > 0 and summary["sessions_thinned"] == 1


def test_the_newest_session_outlives_the_legal_period(store):
    """A terminal unused for longer than the legal period keeps its last session: the
    journal marker names it, and a journal without it is refused at start."""
    charge(store, "S-old", START, 60)
    charge(store, "S-last", START + DAY, 60)
    deliver_all(store, START + DAY)
    run_until_idle(job_for(store, START + 4000 * DAY))
    assert store.session("S-old") is None
    assert store.session("S-last") is not None


def test_signed_values_go_with_their_session_and_orphans_after_the_legal_period(store):
    from drivers.meter.signing import MeterKey, SignedReading
    from hw_mocks.ocmf_meter import OcmfMeterSim

    energy = [Decimal(1000)]
    sim = OcmfMeterSim(serial="M1", model="DCBM", manufacturer="LEM", firmware="1",
                       curve="secp256r1", energy_wh=lambda: energy[0], now=lambda: START)
    key = MeterKey(sim.public_key_hex, sim.signing_method, "M1")

    def add(session_id: str, kind: str, text: str) -> None:
        store.add_signed_value(session_id, kind, SignedReading.from_ocmf(text), key, [],
                               START, True)

    charge(store, "S-ancient", START, 60)
    add("S-ancient", "begin", sim.begin("S-ancient", {}, ""))
    add("S-ancient", "end", sim.end("S-ancient"))
    add("held-1", "late_end", (sim.begin("held-1", {}, ""), sim.end("held-1"))[1])
    add("held-2", "late_end", (sim.begin("held-2", {}, ""), sim.end("held-2"))[1])
    charge(store, "S-last", START + DAY, 60)
    deliver_all(store, START + DAY)
    run_until_idle(job_for(store, START + 4000 * DAY))
    left = [row[0] for row in store.conn.execute("SELECT session_id FROM signed_values")]
    assert left == ["held-2"]  # the meter's newest document stays (pagination)


# ---- small batches -------------------------------------------------------------------


def test_every_batch_stays_within_its_row_budget(store):
    for i in range(3):
        charge(store, f"S-{i}", START + i * timedelta(hours=2), 600)
    deliver_all(store, START + DAY)
    seen = []
    real = RetentionTables.drop_readings

    def counting(self, session_id, seqs):
        seqs = list(seqs)
        left = real(self, session_id, seqs)
        seen.append(len(seqs) - len(left))
        return left

    RetentionTables.drop_readings = counting  # type: ignore[method-assign]
    try:
        job = job_for(store, START + 100 * DAY, budget=Budget(max_rows=60, max_s=10.0))
        steps = run_until_idle(job)
    finally:
        RetentionTables.drop_readings = real  # type: ignore[method-assign]
    assert max(seen) <= 60 and sum(seen) > 3 * 500  # many batches, none over the budget
    assert steps >= len(seen) > 3 * 500 // 60
    assert RetentionTables(store).prune_outbox(START + 100 * DAY) == 0


def test_a_batch_stops_when_its_time_is_up(store):
    charge(store, "S-1", START, 60)
    deliver_all(store, START + DAY)
    for i in range(120):
        store.add_audit("tariff", {"n": i}, START)
    deliver_all(store, START + DAY)
    ticks = iter(range(1000))
    tables = RetentionTables(store, Budget(max_rows=10_000, max_s=1.5),
                             timer=lambda: float(next(ticks)))  # 1 s per look at the clock
    first = tables.prune_outbox(START + 100 * DAY)
    assert 0 < first <= 50  # one statement, then the time is up: commit
    assert tables.prune_outbox(START + 100 * DAY) > 0  # the rest next time


def test_the_periodic_task_runs_in_batches_with_pauses(store, monkeypatch):
    """`run()` works through a backlog batch by batch, each batch a separate journal
    call (so polls interleave), waking itself while work remains."""
    import terminal.retention as job_module
    monkeypatch.setattr(job_module, "BUSY_PAUSE_S", 0.001)
    charge(store, "S-1", START, 600)
    deliver_all(store, START + DAY)
    job = job_for(store, START + 100 * DAY, budget=Budget(max_rows=50, max_s=10.0),
                  interval_s=3600.0)
    calls = []
    real_call = job.store.call

    async def call(fn, *args, **kwargs):
        calls.append(fn)
        return await real_call(fn, *args, **kwargs)

    job.store.call = call  # type: ignore[method-assign]

    async def go() -> None:
        task = asyncio.create_task(job.run())
        for _ in range(2000):
            await asyncio.sleep(0.002)
            row = await real_call(store.session, "S-1")  # on the journal's thread
            if row["thinned_at"] is not None:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    assert store.session("S-1")["thinned_at"] is not None
    assert len(calls) > 600 // 50  # one batch per call, many calls
    assert kinds(store, "S-1")[0] == "start"


# ---- configuration -------------------------------------------------------------------


def test_the_defaults_and_the_rules_between_the_keys():
    base = {"station": {"id": "ST1", "operator": "Op"}}
    config = parse_config(base)
    assert (config.retention.outbox_days, config.retention.privacy_days,
            config.retention.legal_years) == (30, 180, 10)
    settings = RetentionSettings.from_config(config.retention)
    assert settings.policy == RetentionPolicy(30, 14, 180, 3652)
    with pytest.raises(ConfigError) as err:
        parse_config({**base, "retention": {"privacy_days": 4000, "legal_years": 5}})
    assert "retention.privacy_days = 4000: expected at most the legal period" in str(err.value)
    with pytest.raises(ConfigError, match=r"retention\.outbox_days = 200: expected at most "
                       r"privacy_days"):
        parse_config({**base, "retention": {"outbox_days": 200}})
    with pytest.raises(ConfigError, match=r"retention\.step_budget_ms"):
        parse_config({**base, "retention": {"step_budget_ms": 500}})
    assert RULES.checkpoint_interval_s == 0  # the helpers journal every poll
