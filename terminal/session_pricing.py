"""One owner of a session's money: its terms, the running pricer, the cost cap
projection, the idle fee and the final bill.

Provides `SessionPricing(station_terms, poll_interval_s, stop_latency_s, site)` (`site`:
the station as its OCPI CDRs name it, terminal.cdr; each bill then carries its CDR):
- `station_terms`: the terms for sessions starting now (`replace_station_tariff` when
  the backend pushes a tariff; a running session keeps its own) and `price_list()`,
  the station's price texts in every language (cached per terms);
- `begin(authorization)`: a session's energy starts; its terms are the personal tariff
  of its authorisation, else the station's (frozen into the session);
- `feed(reading)`: once per journaled reading (after the commit);
- `cost()`: the running cost (incl. and excl. VAT, no step_size), computed once per new
  reading; what the session machine compares with a cost cap;
- `shown_cost()`: the cost the screen shows (`ShownCost`), by the rule of the final bill:
  the price as if the session ended at the last reading (step_size, min/max price), split
  into its charging part (energy, time, flat) and its idle (PARKING_TIME) part, so that
  shown = charging part + idle part (unless a min/max price applies: `price_limit` says
  so) and the receipt of a session unplugged at the next poll shows the same total;
- `price_now()`: the price texts of the ENERGY and TIME components in force now;
- `idle_ahead(state, now)`: while charging, when an idle fee would start if charging
  ended now;
- `projection(reading, interval_s)`: cost and energy one poll plus the stop latency
  ahead, so a cap stops delivery before it is passed;
- `idle_fee(state, now)`: while Finishing, when the idle (PARKING_TIME) fee starts
  (probed on a copy at most once a minute) and what it has cost: the idle part of
  `shown_cost()`;
- `bill(...)`: the final billing result at close, from the readings in memory and those
  of the closing step (nothing is read back from the journal), the same function a
  rebuilt receipt uses (terminal.billing.bill_session);
- `rebuild(terms_json, readings)`: after a restart, from the journal.
On failure: a reading the pricer refuses is logged and skipped for the running cost
(the journal and so the bill still hold it); a projection or idle probe that fails is
logged and reported as unknown (None).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from drivers.meter.reading import MeterReading
from terminal.billing import Bill, SessionFacts, Terms, bill_session, sample_of
from terminal.cdr import CdrSite
from terminal.kernel.clock import iso_utc
from terminal.kernel.locales import LOCALES
from terminal.kernel.logsetup import fields, get_logger
from terminal.pricing import RunningCost, RunningPricer, Sample
from terminal.pricing.display import tariff_lines, tariff_texts
from terminal.pricing.model import Dimension
from terminal.pricing.result import ActiveElements
from terminal.session import Authorization, Phase, SessionState
from terminal.session.model import ENERGY_PHASES
from terminal.signed_billing import SignedSummary

log = get_logger("pricing")

IDLE_FEE_HORIZON_S = 4 * 3600  # an idle fee further ahead is not announced
IDLE_PROBE_INTERVAL_S = 60.0  # the idle-fee figures are recomputed at most this often


@dataclass(frozen=True)
class Projection:
    """What the next Tick tells the session machine about money and energy."""

    cost: Decimal | None = None  # projected cost incl. VAT one horizon ahead
    energy_wh: Decimal | None = None  # projected energy since the session start
    cost_so_far: Decimal | None = None  # incl. VAT


@dataclass(frozen=True)
class IdleProbe:
    """The idle-fee figures of one Finishing phase, as computed at `at`."""

    key: tuple[str | None, datetime | None]  # (session id, Finishing entered at)
    at: datetime
    info: dict[str, Any] | None
    fee_from: datetime | None


@dataclass(frozen=True)
class ShownCost:
    """The cost the screen shows, priced like the final bill as if the session ended at
    the last reading. Without a min/max price: incl_vat = charging_incl_vat +
    idle_incl_vat, where idle_incl_vat is the PARKING_TIME subtotal (rounded to the minor
    unit) and charging_incl_vat (energy, time, flat) is the rest. With one
    (`price_limit` 'min_price'/'max_price'), the parts are the subtotals before it."""

    currency: str
    excl_vat: Decimal
    incl_vat: Decimal
    charging_incl_vat: Decimal
    idle_incl_vat: Decimal
    price_limit: str | None
    active: ActiveElements | None  # the elements in force at the last reading

    def to_json(self) -> dict[str, Any]:
        return {"currency": self.currency, "excl_vat": str(self.excl_vat),
                "incl_vat": str(self.incl_vat),
                "charging_incl_vat": str(self.charging_incl_vat),
                "idle_incl_vat": str(self.idle_incl_vat), "price_limit": self.price_limit}


def terms_for(station_terms: Terms, auth: Authorization | None) -> Terms:
    """The terms a session is priced by: the personal tariff that came with its
    authorisation (fleet contracts, checked when accepted), else the station's."""
    if auth is None or auth.tariff_json is None:
        return station_terms
    return dataclasses.replace(station_terms, tariff_json=json.loads(auth.tariff_json))


class SessionPricing:
    def __init__(self, station_terms: Terms, poll_interval_s: float,
                 stop_latency_s: float, site: CdrSite | None = None) -> None:
        self.station_terms = station_terms
        self.site = site  # the station as its CDRs name it; None: bills without a CDR
        self.poll_interval_s = poll_interval_s
        self.stop_latency_s = stop_latency_s
        self.terms: Terms | None = None
        self.receipt_url: str | None = None  # the session's e-receipt, on its receipt
        self.pricer: RunningPricer | None = None
        self.readings: list[MeterReading] = []
        self._cost: tuple[int, RunningCost] | None = None
        self._shown: tuple[int, ShownCost | None] | None = None
        self._idle_probe: IdleProbe | None = None
        self._price_now: tuple[Any, dict[str, list[str]]] | None = None
        self._price_list: tuple[Terms, dict[str, Any]] | None = None

    # ---- the station's terms -----------------------------------------------------------

    def replace_station_tariff(self, tariff_json: dict[str, Any]) -> Terms:
        self.station_terms = dataclasses.replace(self.station_terms, tariff_json=tariff_json)
        return self.station_terms

    def price_list(self) -> dict[str, Any]:
        """The station's tariff as the screen shows it before a driver commits: its id,
        currency and the price texts in every supported language."""
        terms = self.station_terms
        cached = self._price_list
        if cached is None or cached[0] is not terms:
            tariff = terms.tariff
            texts = {code: list(tariff_texts(tariff, code)) for code in LOCALES}
            cached = self._price_list = (terms, {"tariff_id": tariff.id,
                                                 "currency": tariff.currency,
                                                 "texts": texts})
        return cached[1]

    # ---- one session -------------------------------------------------------------------

    def begin(self, auth: Authorization | None, receipt_url: str | None = None) -> Terms:
        self._reset()
        self.receipt_url = receipt_url
        self.terms = terms_for(self.station_terms, auth)
        self.pricer = self._new_pricer(self.terms)
        return self.terms

    def feed(self, reading: MeterReading) -> None:
        if self.pricer is None:
            return
        self.readings.append(reading)
        try:
            self.pricer.add_sample(sample_of(reading))
        except ValueError as exc:
            log.error("running cost: reading refused", extra=fields(error=exc))

    def end(self) -> None:
        self._reset()

    def rebuild(self, terms_json: str, readings: list[MeterReading],
                receipt_url: str | None) -> None:
        """The running pricer of a session resumed after a restart, from the journal."""
        self._reset()
        self.terms = Terms.from_json(terms_json)
        self.receipt_url = receipt_url
        self.pricer = self._new_pricer(self.terms)
        for reading in readings:
            self.feed(reading)

    def bill(self, session_id: str, auth: Authorization | None, source: str,
             stop_reason: str, closing: list[MeterReading],
             signed: SignedSummary | None = None) -> Bill | None:
        """The final bill of the session closing now (its readings so far and those of
        the closing step); None when it never delivered energy or the bill cannot be
        made (logged: the receipt is rebuilt at the next start)."""
        readings = self.readings + closing
        if self.terms is None or not readings:
            return None
        facts = SessionFacts(session_id, self.terms, auth, source, stop_reason,
                             self.receipt_url, signed, site=self.site)
        try:
            return bill_session(facts, readings)
        except Exception:
            log.exception("receipt failed; it will be rebuilt at the next start",
                          extra=fields(session=session_id))
            return None

    # ---- running figures ---------------------------------------------------------------

    def cost(self) -> RunningCost | None:
        """The running cost up to the last reading; None before the first."""
        pricer = self.pricer
        if pricer is None or pricer.sample_count == 0:
            return None
        if self._cost is None or self._cost[0] != pricer.sample_count:
            self._cost = (pricer.sample_count, pricer.cost_so_far())
        return self._cost[1]

    def shown_cost(self) -> ShownCost | None:
        """The cost the screen shows (ShownCost), computed once per new reading; None
        before the first reading or when it cannot be priced (logged)."""
        pricer = self.pricer
        if pricer is None or pricer.sample_count == 0:
            return None
        if self._shown is None or self._shown[0] != pricer.sample_count:
            self._shown = (pricer.sample_count, self._price_shown(pricer))
        return self._shown[1]

    @staticmethod
    def _price_shown(pricer: RunningPricer) -> ShownCost | None:
        try:
            result = pricer.result()
        except ValueError as exc:
            log.warning("shown cost failed", extra=fields(error=exc))
            return None
        idle = result.dimension(Dimension.PARKING_TIME).incl_vat
        if result.price_limit is None:
            charging = result.total.incl_vat - idle
        else:
            charging = sum((d.incl_vat for d in result.dimensions
                            if d.dimension is not Dimension.PARKING_TIME), Decimal(0))
        active = result.periods[-1].active if result.periods else None
        return ShownCost(result.currency, result.total.excl_vat, result.total.incl_vat,
                         charging, idle, result.price_limit, active)

    def price_now(self) -> dict[str, list[str]] | None:
        """The price texts (every language) of the ENERGY and TIME components in force at
        the last reading, as the price list words them; None when none is (or before the
        first reading)."""
        shown, terms = self.shown_cost(), self.terms
        if shown is None or shown.active is None or terms is None:
            return None
        active = shown.active
        key = (terms, active.energy, active.time)
        if self._price_now is None or self._price_now[0] != key:
            wanted = {(Dimension.ENERGY, active.energy), (Dimension.TIME, active.time)}
            texts = {code: [line.text for line in tariff_lines(terms.tariff, code)
                            if (line.dimension, line.element_index) in wanted]
                     for code in LOCALES}
            self._price_now = (key, texts)
        texts = self._price_now[1]
        return texts if any(texts.values()) else None

    def projection(self, reading: MeterReading | None, start_energy_wh: Decimal | None,
                   interval_s: float) -> Projection:
        """Cost and energy one poll (the configured interval or the last one measured,
        whichever is longer) plus the stop latency after `reading`."""
        pricer, cost = self.pricer, self.cost()
        if pricer is None or cost is None or reading is None or start_energy_wh is None:
            return Projection()
        horizon_s = max(self.poll_interval_s, interval_s) + self.stop_latency_s
        power_w = max(reading.power_w or Decimal(0), Decimal(0))
        energy_wh = reading.energy_import_wh + power_w * Decimal(str(horizon_s)) / 3600
        ahead = Sample(reading.timestamp + timedelta(seconds=horizon_s), energy_wh, power_w,
                       reading.current_a or Decimal(0))
        try:
            projected = pricer.price_if(ahead)
        except ValueError as exc:
            log.warning("cost projection failed", extra=fields(error=exc))
            return Projection()
        return Projection(projected.total.incl_vat, energy_wh - start_energy_wh, cost.incl_vat)

    def idle_fee(self, state: SessionState, now: datetime) -> dict[str, Any] | None:
        """While Finishing: when the idle (PARKING_TIME) fee starts (`fee_from`, within
        IDLE_FEE_HORIZON_S, None when already accruing or none is ahead), whether it
        accrues now and what it has cost so far (incl. VAT). Probed once per Finishing
        phase and then at most every IDLE_PROBE_INTERVAL_S (and when fee_from passes)."""
        if state.phase is not Phase.FINISHING or self.pricer is None \
                or self.pricer.sample_count == 0 or state.last_reading is None:
            return None
        probe = self._probe(state, state.last_reading, now)
        if probe.info is None:
            return None
        shown = self.shown_cost()
        if shown is None:
            return probe.info
        # what it has cost: the idle part of the shown cost, priced by the same rule
        return {**probe.info, "accrued": str(shown.idle_incl_vat)}

    def idle_ahead(self, state: SessionState, now: datetime) -> dict[str, Any] | None:
        """While the energy flows (Charging, SuspendedEV/EVSE): when an idle fee would
        start if charging ended now. `at_charging_end`: it would start at once;
        `fee_from`: the first instant it would start (within IDLE_FEE_HORIZON_S), else
        None. None when no idle fee is ahead (or before the first reading)."""
        if state.phase not in ENERGY_PHASES or self.pricer is None \
                or self.pricer.sample_count == 0 or state.last_reading is None:
            return None
        probe = self._probe(state, state.last_reading, now)
        info = probe.info
        if info is None or not (info["accruing"] or info["fee_from"]):
            return None
        return {"fee_from": info["fee_from"], "at_charging_end": info["accruing"],
                "currency": info["currency"]}

    def _probe(self, state: SessionState, last: MeterReading, now: datetime) -> IdleProbe:
        """The idle probe of this phase: once per phase, then at most every
        IDLE_PROBE_INTERVAL_S and at once when its fee_from is reached."""
        key = (state.session_id, state.since)
        probe = self._idle_probe
        if (probe is None or probe.key != key
                or (now - probe.at).total_seconds() >= IDLE_PROBE_INTERVAL_S
                or (probe.fee_from is not None and now >= probe.fee_from)):
            probe = self._idle_probe = self.probe_idle_fee(key, last, now)
        return probe

    def probe_idle_fee(self, key: tuple[str | None, datetime | None], last: MeterReading,
                       now: datetime) -> IdleProbe:
        assert self.pricer is not None
        at = max(now, last.timestamp)
        zero = Decimal(0)
        try:
            # on a copy: the parked car from the last reading on, then 4 h ahead
            probe = copy.deepcopy(self.pricer)
            probe.add_sample(Sample(at, last.energy_import_wh, zero, zero))
            so_far = probe.result()
            ahead = probe.price_if(Sample(at + timedelta(seconds=IDLE_FEE_HORIZON_S),
                                          last.energy_import_wh, zero, zero))
        except ValueError as exc:
            log.warning("idle fee probe failed", extra=fields(error=exc))
            return IdleProbe(key, now, None, None)
        tariff = self.pricer.tariff
        fee_start = None
        for period in ahead.periods:
            index = period.active.parking_time
            if period.end <= at or period.charging or index is None:
                continue
            if any(c.type is Dimension.PARKING_TIME and c.price > 0
                   for c in tariff.elements[index].price_components):
                fee_start = max(period.start, at)
                break
        accrued = next((d.incl_vat for d in so_far.dimensions
                        if d.dimension is Dimension.PARKING_TIME), zero)
        accruing = fee_start is not None and fee_start <= at
        fee_from = None if accruing else fee_start
        info = {"fee_from": iso_utc(fee_from) if fee_from else None, "accruing": accruing,
                "accrued": str(accrued), "currency": so_far.currency}
        return IdleProbe(key, now, info, fee_from)

    # ---- helpers -----------------------------------------------------------------------

    def _new_pricer(self, terms: Terms) -> RunningPricer:
        return RunningPricer(terms.tariff, terms.timezone, terms.charging_threshold_w)

    def _reset(self) -> None:
        self.terms = None
        self.receipt_url = None
        self.pricer = None
        self.readings = []
        self._cost = None
        self._shown = None
        self._idle_probe = None
        self._price_now = None
