"""The words of the session state machine: phases, stop reasons, authorisation, rules.

Provides `Phase` (OCPP connector/transaction names) and its groups (`ENERGY_PHASES`,
`METERED_PHASES`, `OPEN_PHASES`, `ENDED_PHASES`), `StopReason`, `Authorization` (what
an accepted authorisation allows, with its JSON form for the journal) and `Rules`
(the session's timings and thresholds from the config).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any


class Phase(enum.StrEnum):
    AVAILABLE = "Available"
    AUTHORIZING = "Authorizing"
    AUTHORIZED = "Authorized"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    COMPLETED = "Completed"
    FAULTED = "Faulted"
    REJECTED = "Rejected"


ENERGY_PHASES = frozenset({Phase.CHARGING, Phase.SUSPENDED_EV, Phase.SUSPENDED_EVSE})
METERED_PHASES = ENERGY_PHASES | {Phase.FINISHING}
OPEN_PHASES = METERED_PHASES | {Phase.AUTHORIZING, Phase.AUTHORIZED}
ENDED_PHASES = frozenset({Phase.COMPLETED, Phase.FAULTED, Phase.REJECTED})


class StopReason(enum.StrEnum):
    """Why energy delivery (and with it the session) ended; OCPP 2.x names where one
    exists, our own for faults the operator must tell apart."""

    LOCAL = "Local"  # the driver: same card tapped again, or the stop button
    REMOTE = "Remote"  # the backend / app
    COST_LIMIT = "CostLimitReached"  # pre-authorised amount or cost cap
    ENERGY_LIMIT = "EnergyLimitReached"
    EV_FULL = "StoppedByEV"  # the EV ended charging (battery full)
    EV_DISCONNECTED = "EVDisconnected"  # unplugged while energy was offered
    METER_FAULT = "MeterFault"
    CHARGER_FAULT = "ChargerFault"
    POWER_LOSS = "PowerLoss"  # the terminal was down and could not resume
    TECHNICIAN = "Technician"
    TIMEOUT = "Timeout"  # never plugged in, or the EV never drew power


@dataclass(frozen=True)
class Authorization:
    """What an accepted authorisation allows. id_token is never a card number (cards
    give a token). Caps are incl. VAT in the tariff's currency / Wh; None = no cap."""

    id_token: str
    source: str  # rfid, card, app, remote, local
    valid_until: datetime | None = None
    cost_cap: Decimal | None = None
    energy_cap_wh: Decimal | None = None
    payment_reference: str | None = None
    card_scheme: str | None = None
    card_last4: str | None = None
    tariff_json: str | None = None  # a personal tariff (fleet contract); None = the station's
    recheck: bool = False  # accepted offline although unknown: ask the backend when back
    vat_number: str | None = None  # a company's, for its receipt (terminal.kernel.vat)
    hold_until: datetime | None = None  # a card hold's grace deadline: no energy by then
    # -> the session ends (terminal.payment.holds; the hold is voided by settlement)

    def valid_at(self, at: datetime) -> bool:
        return self.valid_until is None or at < self.valid_until

    def to_json(self) -> dict[str, Any]:
        return {
            "id_token": self.id_token,
            "source": self.source,
            "valid_until": self.valid_until.isoformat() if self.valid_until else None,
            "cost_cap": str(self.cost_cap) if self.cost_cap is not None else None,
            "energy_cap_wh": str(self.energy_cap_wh) if self.energy_cap_wh is not None else None,
            "payment_reference": self.payment_reference,
            "card_scheme": self.card_scheme,
            "card_last4": self.card_last4,
            "tariff_json": self.tariff_json,
            "recheck": self.recheck,
            **({"vat_number": self.vat_number} if self.vat_number is not None else {}),
            **({"hold_until": self.hold_until.isoformat()} if self.hold_until else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Authorization:
        def dec(key: str) -> Decimal | None:
            return Decimal(data[key]) if data.get(key) is not None else None

        until = data.get("valid_until")
        hold_until = data.get("hold_until")
        return cls(
            id_token=data["id_token"],
            source=data["source"],
            valid_until=datetime.fromisoformat(until) if until else None,
            cost_cap=dec("cost_cap"),
            energy_cap_wh=dec("energy_cap_wh"),
            payment_reference=data.get("payment_reference"),
            card_scheme=data.get("card_scheme"),
            card_last4=data.get("card_last4"),
            tariff_json=data.get("tariff_json"),
            recheck=bool(data.get("recheck", False)),
            vat_number=data.get("vat_number"),
            hold_until=datetime.fromisoformat(hold_until) if hold_until else None,
        )


@dataclass(frozen=True)
class Rules:
    """Session timings and thresholds (from [session] and [charger] config)."""

    connection_timeout_s: float = 120.0
    ev_power_timeout_s: float = 300.0
    ev_finished_after_s: float = 60.0
    output_off_timeout_s: float = 2.0
    charging_threshold_w: Decimal = Decimal(100)
    checkpoint_interval_s: float = 0.0
    meter_value_interval_s: float = 60.0
    max_charger_errors: int = 3
    hold_grace_s: float = 0.0  # [payment] hold_grace_s: a touch moves a card hold's grace
    # deadline to this long after it (0: it never moves)
    signed_metering: bool = False  # the meter signs (Eichrecht): energy only between
    # the meter's signed begin and end (docs/eichrecht.md)
