"""The status snapshot every local-API client gets (docs/local-api.md, `state`).

Provides `StatusBoard(...).snapshot()`: one dict from the parts that own each figure:
the session state and the refusal reason (the session port), the last poll
(terminal.observation), the cost as shown with its charging and idle parts, the unit
prices in force and the idle fee (terminal.session_pricing: `shown_cost`, by the rule
of the final bill, so cost = charging part + idle part and the receipt of a session
unplugged at the next poll shows the same total),
the screen's state (terminal.screen), the service menu's login state, the readers'
states and the backend link, the software version and whether a meter poll has completed
since the start (the updater's health check, docs/updates.md). Read-only: it changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Protocol

from terminal import __version__
from terminal.config import Config
from terminal.kernel.clock import Clock, iso_utc
from terminal.kernel.driver_texts import LANGUAGES
from terminal.observation import Observation
from terminal.payment.holds import HoldPolicy
from terminal.ports import LinkState, SessionPort
from terminal.screen import Screen
from terminal.session import Phase, SessionState
from terminal.session_pricing import SessionPricing


class ServiceStatus(Protocol):
    def snapshot(self, now: datetime) -> dict[str, Any]: ...


UNSIGNED_METERING: dict[str, Any] = {
    "signed": False, "meter_model": None, "meter_serial": None, "public_key": None,
    "signing_method": None, "meter_clock": None, "terminal_clock_synced": None,
    "clock_trusted": None, "fault": None}


class StatusBoard:
    def __init__(self, config: Config, clock: Clock, port: SessionPort,
                 observation: Observation, pricing: SessionPricing, screen: Screen,
                 service: ServiceStatus, link: LinkState,
                 reader_states: Callable[[], dict[str, str]], holds: HoldPolicy | None,
                 metering: Callable[[], dict[str, Any]] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.port = port
        self.seen = observation
        self.pricing = pricing
        self.screen = screen
        self.service = service
        self.link = link
        self.reader_states = reader_states
        self.holds = holds  # card payment's hold policy; None: no bank cards taken
        self.metering = metering  # a signing meter's block (docs/local-api.md)

    def _plug_in_until(self, state: SessionState) -> str | None:
        """While Authorized: when the session ends unless a vehicle is plugged in (the
        connection timeout from the authorisation or the driver's last `touch`, or a card
        hold's grace deadline if that comes first; a `touch` moves both)."""
        if state.phase is not Phase.AUTHORIZED or state.authorized_at is None:
            return None
        timeout_s = self.config.session.connection_timeout_s
        until = state.authorized_at + timedelta(seconds=timeout_s)
        auth = state.authorization
        if auth is not None and auth.hold_until is not None:
            until = min(until, auth.hold_until)
        return iso_utc(until)

    def snapshot(self) -> dict[str, Any]:
        state = self.port.state
        seen = self.seen
        outcome = seen.outcome
        reading = seen.billable_reading
        energy = None
        if state.start_reading is not None and state.last_reading is not None:
            energy = state.last_reading.energy_import_wh - state.start_reading.energy_import_wh
        shown = self.pricing.shown_cost()
        cost = shown.to_json() if shown is not None else None
        auth = state.authorization
        now = self.clock.now()
        started_at, elapsed_s = session_times(state, now)
        accepting = self.port.refusal_reason() is None
        return {
            "station_id": self.config.station.id,
            "timezone": self.config.station.timezone,
            "phase": state.phase.value,
            "session_id": state.session_id,
            "plugged": state.plugged,
            "output_on": state.output_on and not self.port.journal_failed,
            "journal_fault": self.port.journal_failed,
            "metering": self.metering() if self.metering else UNSIGNED_METERING,
            "energy_wh": str(energy) if energy is not None else None,
            "power_w": str(reading.power_w) if reading and reading.power_w is not None else None,
            "cost": cost,
            "cost_cap": str(auth.cost_cap) if auth and auth.cost_cap is not None else None,
            "energy_cap_wh": (str(auth.energy_cap_wh)
                              if auth and auth.energy_cap_wh is not None else None),
            "vat_number": auth.vat_number if auth else None,  # a company's, when given
            "stop_reason": state.stop_reason.value if state.stop_reason else None,
            "since": iso_utc(state.since) if state.since else None,
            "meter_fault": str(outcome.fault) if outcome and outcome.fault else None,
            "meter_polled": outcome is not None,
            "version": __version__,
            "charger_fault": seen.charger.fault if seen.charger else seen.charger_error,
            "price_list": self.pricing.price_list(),
            "language": self.screen.language,
            "languages": list(LANGUAGES),
            "operator": self.config.station.operator,
            "support_phone": self.config.ui.support_phone or None,
            "now": iso_utc(now),
            "session_started_at": iso_utc(started_at) if started_at else None,
            "elapsed_s": elapsed_s,
            "idle": self.pricing.idle_fee(state, now),
            "idle_ahead": self.pricing.idle_ahead(state, now),
            "price_now": self.pricing.price_now(),
            "receipt_pending": self.screen.pending_receipt(now),
            "app_start": self.screen.app_start(),
            "accepting_sessions": accepting,
            **self.service.snapshot(now),
            "backend_online": self.link.online,
            "card_payment": self.holds is not None,
            "readers": self.reader_states(),
            "language_reset": self.screen.language_reset(),
            "plug_in_until": self._plug_in_until(state),
            "card_hold": self._card_hold(),
        }

    def _card_hold(self) -> dict[str, Any] | None:
        """What a bank card tapped now would have reserved (the budget picked, else
        `[payment] preauth_amount`), the budgets offered and the grace period; None
        without card payment (docs/local-api.md)."""
        holds = self.holds
        if holds is None:
            return None
        budget = self.screen.budget
        return {
            "amount": str(budget if budget is not None else holds.default_amount),
            "currency": self.pricing.station_terms.tariff.currency,
            "choices": [str(choice) for choice in holds.choices],
            "budget": str(budget) if budget is not None else None,
            "grace_s": holds.grace_s,
        }


def session_times(state: SessionState, now: datetime) -> tuple[datetime | None, int | None]:
    """(session start = its first reading, seconds since then; for a session that
    ended, its duration up to the stop reading)."""
    if state.start_reading is None:
        return None, None
    started = state.start_reading.timestamp
    end = now
    if not state.is_open and state.last_reading is not None:
        end = state.last_reading.timestamp
    return started, max(0, int((end - started).total_seconds()))
