"""Session, tap and status facts for the fleet tests: seeded, varied (two VAT rates, a
no-VAT part, refunds, idle fees, sessions without energy, several payment methods),
each receipt consistent (gross = net + VAT, net = the rates' nets + the no-VAT part)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from terminal.report.facts import RefundFact, SessionFact, StatusFact, TapFact, VatRow

CENT = Decimal("0.01")
METHODS = ("card", "rfid", "app", "local")


def sessions(station_id: str, count: int, start: datetime, seed: int,
             currency: str = "EUR", every: timedelta = timedelta(hours=7)) -> list[SessionFact]:
    rng = random.Random(seed)
    out = []
    at = start
    for n in range(count):
        energy = Decimal(rng.randint(0, 80_000)) / 10 if n % 7 else Decimal(0)
        rows = []
        for percent in (Decimal(19), Decimal(7))[: rng.randint(1, 2)]:
            net = (Decimal(rng.randint(100, 5000)) / 100).quantize(CENT)
            vat = (net * percent / 100).quantize(CENT)
            rows.append(VatRow(percent, net, vat, net + vat))
        no_vat = Decimal(rng.choice((0, 0, 150))) / 100
        idle = Decimal(rng.choice((0, 0, 0, 300))) / 100
        gross = sum((r.gross for r in rows), Decimal(0)) + no_vat
        net = sum((r.net for r in rows), Decimal(0)) + no_vat
        refunds = ((RefundFact(at + timedelta(hours=2), Decimal("1.25"), "goodwill"),)
                   if n % 5 == 3 else ())
        opened = at
        started = at + timedelta(minutes=1)
        stopped = started + timedelta(minutes=rng.randint(5, 60))
        closed = stopped + timedelta(minutes=rng.randint(0, 30))
        out.append(SessionFact(
            station_id=station_id, session_id=f"{station_id}-{n}", opened_at=opened,
            started_at=started, stopped_at=stopped, closed_at=closed, source="card",
            payment_method=METHODS[rng.randint(0, 3)], id_token=f"tok{n % 3}",
            stop_reason="ev", final_phase="closed", meter_serial="M1",
            meter_start_wh=Decimal(1000 * n), meter_stop_wh=Decimal(1000 * n) + energy,
            energy_wh=energy, currency=currency, receipt_present=True, amount_charged=gross,
            net_amount=net, no_vat_amount=no_vat, vat_rows=tuple(rows), idle_fee=idle,
            payment_status="captured", payment_via="gateway", card_scheme="visa",
            amount_approved=Decimal(50), amount_captured=gross, refunds=refunds))
        at += every
    return out


def taps(count: int, start: datetime) -> list[TapFact]:
    return [TapFact(start + timedelta(hours=5 * n), "pcsc0", "card",
                    "declined" if n % 4 == 0 else "accepted", "ok", f"tok{n % 3}",
                    float(300 + n), None) for n in range(count)]


def statuses(start: datetime, pattern: list[tuple[str, int]]) -> list[StatusFact]:
    """Status rows, each `minutes` long after the one before."""
    out, at = [], start
    for status, minutes in pattern:
        out.append(StatusFact(at, status, "test"))
        at += timedelta(minutes=minutes)
    return out


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
