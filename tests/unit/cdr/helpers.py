"""CDRs of priced sessions for the CDR tests: a site and `cdr_of(tariff, session)`."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from terminal.cdr import CdrInput, CdrSite, build_cdr
from terminal.pricing import SessionInput, price_session
from terminal.pricing.model import Tariff

SITE = CdrSite(country_code="DE", party_id="EVT", location_id="LOC1", address="Hauptstr. 1",
               city="Berlin", country="DEU", latitude="52.520008", longitude="13.404954",
               evse_uid="EVSE1", evse_id="DE*EVT*E1", connector_id="1", postal_code="10115")


def cdr_of(tariff: Tariff, session: SessionInput, tz: str = "UTC",
           amount_charged: Decimal | None = None, **fields: Any) -> dict[str, Any]:
    """The CDR of `session` priced by `tariff` (charged its price unless told)."""
    result = price_session(tariff, session, tz)
    samples = session.samples
    charged = result.total.incl_vat if amount_charged is None else amount_charged
    return build_cdr(CdrInput(
        site=SITE, session_id=fields.get("session_id", "S1"), id_token="TOKEN1",
        source=fields.get("source", "rfid"), offline=False, payment_reference=None,
        tariff=tariff, result=result,
        energy_wh=samples[-1].energy_wh - samples[0].energy_wh, meter_id="M1",
        amount_charged=charged,
        amount_charged_net=result.total.excl_vat if amount_charged is None else charged,
        created_at=result.stop, signed=fields.get("signed")))
