"""What one build of the screen reads: the model at a moment, in the language shown,
and the daemon's values as the screens need them.

Provides `ScreenState(model, now_s)`: the snapshot (`state`, `phase`), whether the
daemon and the backend are reachable, whether a stop is pending, `t(key, ...)` (a text
in the screen's language) and the values several screens read (currency, amounts,
energy, cost, price lines, maintenance, faults, readers, app start), tolerant of
missing or malformed fields (neutral values, never an exception): among them the
cost's charging and idle parts (`cost_parts`), the min/max price that applies
(`price_limit`), the unit prices in force (`price_now`) and the receipt shown
(`receipt`). `Feedback`: a card
being checked or a recent tap result, as ui/view.py finds it.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ui.i18n import DEFAULT_LANGUAGE, amount, tr
from ui.model import STOP_PENDING_S, UiModel, current_language, pending_receipt
from ui.values import decimal_of, out_of_service

Feedback = tuple[str, Mapping[str, Any] | None] | None
"""("checking", None) while a card is checked, ("tap", event) for a recent result."""


class ScreenState:
    def __init__(self, model: UiModel, now_s: float) -> None:
        self.model = model
        self.now_s = now_s
        self.language = current_language(model)
        self.state: Mapping[str, Any] = model.state or {}
        self.phase = self.state.get("phase")
        self.connected = model.connected and model.state is not None
        self.online = self.state.get("backend_online") is not False
        stop_at = model.stop_requested_at_s
        self.stopping = stop_at is not None and 0 <= now_s - stop_at < STOP_PENDING_S

    def t(self, key: str, **values: object) -> str:
        return tr(key, self.language, **values)

    def receipt(self, any_language: bool = False) -> Mapping[str, Any] | None:
        """The receipt fetched for the pending session in the language shown (or in any
        language: its signed meter data are the same in each); None while it is being
        fetched (or the one here is another session's or language's)."""
        pending = pending_receipt(self.model) or {}
        receipt = self.model.receipt
        if receipt is None or receipt.get("session_id") != pending.get("session_id"):
            return None
        if not any_language and self.model.receipt_language != self.language:
            return None
        return receipt

    def maintenance(self) -> Mapping[str, Any] | None:
        """The snapshot's `out_of_service` (set by a technician), None when in service."""
        return out_of_service(self.state)

    def hardware_fault(self) -> bool:
        """The meter or the power stage reports a fault while no session runs."""
        return bool(self.state.get("meter_fault") or self.state.get("charger_fault"))

    def readers_down(self) -> bool:
        readers = self.state.get("readers")
        if not isinstance(readers, Mapping) or not readers:
            return False
        return all(state != "ready" for state in readers.values())

    def app_start(self) -> Mapping[str, Any] | None:
        app = self.state.get("app_start")
        return app if isinstance(app, Mapping) and isinstance(app.get("url"), str) else None

    def currency(self) -> str:
        cost = self.state.get("cost")
        for source in (cost, self.state.get("price_list")):
            if isinstance(source, Mapping) and isinstance(source.get("currency"), str):
                return str(source["currency"])
        return "EUR"

    def amount(self, value: Any) -> str:
        return amount(decimal_of(value) or Decimal(0), self.currency(), self.language)

    def energy_wh(self) -> Decimal:
        return decimal_of(self.state.get("energy_wh")) or Decimal(0)

    def cost_incl_vat(self) -> Decimal:
        cost = self.state.get("cost")
        return (decimal_of(cost.get("incl_vat")) if isinstance(cost, Mapping) else None) \
            or Decimal(0)

    def cost_parts(self) -> tuple[Decimal, Decimal] | None:
        """(charging part, idle part) of the shown cost, incl. VAT; None when the snapshot
        has none (docs/local-api.md: cost = charging part + idle part unless a min/max
        price applies)."""
        cost = self.state.get("cost")
        if not isinstance(cost, Mapping):
            return None
        charging = decimal_of(cost.get("charging_incl_vat"))
        idle = decimal_of(cost.get("idle_incl_vat"))
        return None if charging is None or idle is None else (charging, idle)

    def price_limit(self) -> str | None:
        """'min_price' or 'max_price' when the tariff's limit sets the shown cost."""
        cost = self.state.get("cost")
        limit = cost.get("price_limit") if isinstance(cost, Mapping) else None
        return limit if limit in ("min_price", "max_price") else None

    def price_now(self) -> tuple[str, ...]:
        """The unit prices in force now, as the price list words them, in this language."""
        texts = self.state.get("price_now")
        if not isinstance(texts, Mapping):
            return ()
        lines = texts.get(self.language) or texts.get(DEFAULT_LANGUAGE) or ()
        return tuple(str(line) for line in lines) if isinstance(lines, list | tuple) else ()

    def price_lines(self) -> tuple[str, ...]:
        price_list = self.state.get("price_list")
        texts = price_list.get("texts") if isinstance(price_list, Mapping) else None
        if not isinstance(texts, Mapping):
            return ()
        lines = texts.get(self.language) or texts.get(DEFAULT_LANGUAGE) or ()
        return tuple(str(line) for line in lines) if isinstance(lines, list | tuple) else ()
