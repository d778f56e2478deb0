"""The words of the driver's two meter pages, by widget id, in the screen's language.

- `meter_info(s)`: the "Meter info" page (from the idle and the charging screen when
  the station meters with a signing meter): model and serial, the public key in full
  in blocks of 4 (to compare with the key the operator registered), the signature
  method, the meter clock in words, and that receipts can be checked with the S.A.F.E.
  transparency software;
- `signed_data(s, extra)`: the receipt's signed meter data: the OCMF QR code (its text
  into `extra["qr"]`), the start and end register values in kWh, the meter's serial,
  "scan with the transparency software", and, when the charge cannot be billed by
  energy, the fault in words.

The values come from the snapshot's `metering` and the receipt's `signed_meter`
(ui/metering.py reads them); which page shows and when it closes: ui/view.py.
"""

from __future__ import annotations

from typing import Any

from ui.metering import (
    clock_words,
    key_blocks,
    metering_of,
    register_kwh,
    signed_meter_of,
    text_of,
)
from ui.screen_state import ScreenState


def meter_info(s: ScreenState) -> dict[str, str]:
    metering = metering_of(s.state) or {}
    clock = s.t("mi_clock", clock=clock_words(metering.get("meter_clock"), s.language))
    if metering.get("clock_trusted") is False:
        clock = f"{clock}. {s.t('mi_clock_untrusted')}"
    fault = metering.get("fault")
    return {
        "mi_title": s.t("mi_title"),
        "mi_meter": s.t("mi_meter", model=text_of(metering.get("meter_model")),
                        serial=text_of(metering.get("meter_serial"))),
        "mi_method": s.t("mi_method", method=text_of(metering.get("signing_method"))),
        "mi_clock": clock,
        "mi_hint": s.t("mi_hint"),
        "mi_fault": s.t("mi_fault", fault=text_of(fault)) if fault else "",
        "mi_key_label": s.t("mi_key_label"),
        "mi_key": key_blocks(metering.get("public_key")),
        "mi_back": s.t("back"),
    }


def signed_data(s: ScreenState, extra: dict[str, Any]) -> dict[str, str]:
    signed = signed_meter_of(s.receipt(any_language=True)) or {}
    qr = signed.get("qr")
    if isinstance(qr, str) and qr:
        extra["qr"] = qr
    fault = ""
    if signed.get("billable_by_energy") is False:
        reason = signed.get("fault")
        fault = s.t("sd_not_billable_fault", fault=text_of(reason)) if reason \
            else s.t("sd_not_billable")
    return {
        "sd_title": s.t("sd_title"),
        "sd_start": s.t("sd_start", energy=register_kwh(signed.get("start_wh"), s.language)),
        "sd_end": s.t("sd_end", energy=register_kwh(signed.get("end_wh"), s.language)),
        "sd_meter": s.t("sd_meter", serial=text_of(signed.get("meter_serial"))),
        "sd_hint": s.t("sd_hint" if "qr" in extra else "sd_no_qr"),
        "sd_fault": fault,
        "sd_back": s.t("back"),
    }
