"""Hand-built facts for the report's tests: a session, a tap, a status row with
defaults that a test overrides by keyword, and the report of them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from terminal.report.build import build_report
from terminal.report.facts import RefundFact, SessionFact, StatusFact, TapFact, VatRow
from terminal.report.irregularities import Thresholds

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a Monday
D = Decimal


def session(n: int = 0, *, at: datetime | None = None, minutes: float = 30,
            energy_wh: str = "20000", gross: str = "11.90", rate: str = "19",
            **over: Any) -> SessionFact:
    """A card session of `minutes` (charging all but the last 5), its receipt at one
    VAT rate, its payment captured at the receipt's amount."""
    opened = at or T0 + timedelta(hours=n)
    closed = opened + timedelta(minutes=minutes)
    amount = D(gross)
    vat = (amount * D(rate) / (100 + D(rate))).quantize(D("0.01"))
    fields: dict[str, Any] = {
        "station_id": "DE*EVT*E0001", "session_id": f"S{n}", "opened_at": opened,
        "started_at": opened + timedelta(minutes=1), "closed_at": closed,
        "stopped_at": closed - timedelta(minutes=5) if D(energy_wh) else None,
        "source": "card", "payment_method": "card", "id_token": f"tok{n}",
        "stop_reason": "Local", "final_phase": "Completed", "meter_serial": "M1",
        "meter_start_wh": None, "meter_stop_wh": None, "energy_wh": D(energy_wh),
        "currency": "EUR", "receipt_present": True, "amount_charged": amount,
        "net_amount": amount - vat, "no_vat_amount": D(0),
        "vat_rows": (VatRow(D(rate), amount - vat, vat, amount),) if amount else (),
        "idle_fee": D(0), "payment_status": "captured", "payment_via": "gateway",
        "card_scheme": "visa", "amount_approved": D("50.00"), "amount_captured": amount,
        "refunds": ()}
    fields.update(over)
    return SessionFact(**fields)


def refund(amount: str, at: datetime = T0, reason: str = "goodwill") -> RefundFact:
    return RefundFact(at, D(amount), reason)


def tap(at: datetime, *, result: str = "accepted", kind: str = "card", token: str = "tokA",
        decision_ms: float | None = 400.0, session_id: str | None = None,
        reason: str = "accepted") -> TapFact:
    return TapFact(at, "pcsc", kind, result, reason, token, decision_ms, session_id)


def status(at: datetime, name: str, cause: str = "") -> StatusFact:
    return StatusFact(at, name, cause)


def report(sessions: list[SessionFact] = (), taps: list[TapFact] = (),  # type: ignore[assignment]
           statuses: list[StatusFact] = (),  # type: ignore[assignment]
           *, since: datetime = T0 - timedelta(hours=8), days: float = 7,
           timezone: str = "UTC", thresholds: Thresholds | None = None) -> dict[str, Any]:
    until = since + timedelta(days=days)
    return build_report(sessions, taps, statuses, station_ids=["DE*EVT*E0001"],
                        since=since, until=until, timezone=timezone, now=until,
                        thresholds=thresholds or Thresholds())


def kinds(result: dict[str, Any]) -> list[str]:
    return [item["kind"] for item in result["irregularities"]]


def failures(result: dict[str, Any]) -> dict[str, int]:
    return {f["kind"]: f["count"] for f in result["failures"]}
