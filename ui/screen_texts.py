"""The words on each of the driver's screens, by widget id, in the screen's language.

One function per screen: `top_bar`, `idle`, `authorising` (and its `tone`),
`charging` (with the unit prices in force and an idle fee ahead), `finishing` (the
cost and, once an idle fee accrues, its charging and idle parts), `receipt`, `error`,
`out_of_service`, `reconnecting`, and the report panel (`report`); the two meter
pages are in ui/meter_screens.py. Each takes the
`ScreenState` of this build; those that fill more than texts (price and receipt lines,
QR payload, cap progress) put it into `extra`, the View's other fields. Prices, costs
and energy are formatted like the printed receipt (ui/i18n.py); card outcomes come from
terminal.kernel.driver_texts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from terminal.kernel.driver_texts import driver_message
from terminal.kernel.formatting import format_duration
from ui.i18n import amount, energy, format_power, language_name
from ui.screen_state import Feedback, ScreenState
from ui.values import decimal_of, time_of
from ui.widgets import LANGUAGE_BUTTONS, REPORT_CATEGORIES

_TONE_OF_RESULT = {"accepted": "ok", "declined": "refused", "error": "refused",
                   "tap_again": "attention", "in_use": "attention", "info": "attention",
                   "stopping": "attention"}
AUTH_TITLES: Mapping[str, str] = {
    "accepted": "auth_approved", "declined": "auth_declined", "stopping": "auth_stopping",
    "in_use": "auth_in_use", "info": "auth_info", "tap_again": "auth_tap_again",
    "error": "auth_error",
}
FINISH_TITLES: Mapping[str, str] = {
    "StoppedByEV": "finish_full", "CostLimitReached": "finish_limit",
    "EnergyLimitReached": "finish_limit", "Timeout": "finish_timeout",
    "MeterFault": "finish_fault", "ChargerFault": "finish_fault",
}


def top_bar(s: ScreenState) -> dict[str, str]:
    phone = s.state.get("support_phone")
    texts = {
        "station": str(s.state.get("station_id") or ""),
        "operator": str(s.state.get("operator") or ""),
        "badge_offline": s.t("offline_badge") if s.connected and not s.online else "",
        "support": s.t("support", phone=phone) if isinstance(phone, str) and phone else "",
        "report": s.t("report"),
    }
    for button, code in LANGUAGE_BUTTONS.items():
        texts[button] = language_name(code)
    return texts


def idle(s: ScreenState, extra: dict[str, Any]) -> dict[str, str]:
    lines = s.price_lines()
    extra["price_lines"] = lines
    app = s.app_start() if s.online else None
    if app is not None:
        extra["qr"] = str(app["url"])
    ways = []
    if s.state.get("card_payment") and s.online:
        ways.append(s.t("pay_bank_card"))
    ways.append(s.t("pay_charge_card"))
    if app is not None:
        ways.append(s.t("pay_app"))
    joined = ways[0] if len(ways) == 1 else s.t(
        "list_or", first=", ".join(ways[:-1]), last=ways[-1])
    return {
        "idle_title": s.t("idle_title"),
        "idle_connector": s.t("idle_connector_plugged" if s.state.get("plugged")
                              else "idle_connector_free"),
        "price_headline": lines[0] if lines else s.t("price_none"),
        "price_title": s.t("price_title"),
        "pay_ways": s.t("pay_ways", ways=joined),
        "app_hint": s.t("app_hint") if app is not None else "",
        "idle_meter_info": s.t("meter_info"),
    }


def authorising(s: ScreenState, feedback: Feedback) -> dict[str, str]:
    ready = s.t("auth_starting" if s.state.get("plugged") else "auth_plug_in")
    if feedback is not None and feedback[0] == "checking":
        detail = "auth_checking_card" if s.model.card_kind == "card" \
            else "auth_checking_rfid"
        return {"auth_title": s.t("auth_checking"), "auth_detail": s.t(detail),
                "auth_cap": ""}
    if feedback is not None and feedback[1] is not None:
        tap = feedback[1]
        result = tap.get("result")
        if result == "accepted":
            cap = tap.get("cost_cap") or s.state.get("cost_cap")
            return {"auth_title": s.t("auth_approved"), "auth_detail": ready,
                    "auth_cap": _cap_text(s, cap)}
        reason = tap.get("reason")
        return {"auth_title": s.t(AUTH_TITLES.get(str(result), "auth_error")),
                "auth_detail": driver_message(str(reason or "unavailable"), s.language),
                "auth_cap": _next_step(s) if result == "declined" else ""}
    if s.phase == "Authorized":
        return {"auth_title": s.t("auth_approved"), "auth_detail": ready,
                "auth_cap": _cap_text(s, s.state.get("cost_cap"))}
    return {"auth_title": s.t("auth_waiting"), "auth_detail": s.t("auth_checking_rfid"),
            "auth_cap": ""}


def _next_step(s: ScreenState) -> str:
    """What a driver whose card was declined can do now: another card, or the app when
    the idle screen offers its QR code (online, `app_start` configured)."""
    app = s.app_start() if s.online else None
    return s.t("auth_next_card_or_app" if app is not None else "auth_next_card")


def tone(s: ScreenState, feedback: Feedback) -> str:
    if feedback is not None and feedback[1] is not None and feedback[0] != "checking":
        return _TONE_OF_RESULT.get(str(feedback[1].get("result")), "refused")
    if feedback is None and s.phase == "Authorized":
        return "ok"
    return "waiting"


def _cap_text(s: ScreenState, cost_cap: Any) -> str:
    cap = decimal_of(cost_cap)
    if cap is not None:
        return s.t("auth_cap", amount=s.amount(cap))
    energy_cap = decimal_of(s.state.get("energy_cap_wh"))
    if energy_cap is not None:
        return s.t("auth_energy_cap", energy=energy(energy_cap, s.language))
    return ""


def charging(s: ScreenState, extra: dict[str, Any]) -> dict[str, str]:
    title = {"SuspendedEV": "charging_title_ev",
             "SuspendedEVSE": "charging_title_evse"}.get(str(s.phase), "charging_title")
    energy_wh = s.energy_wh()
    cost = s.cost_incl_vat()
    power_w = decimal_of(s.state.get("power_w")) or Decimal(0)
    elapsed_s = s.state.get("elapsed_s")
    elapsed_s = elapsed_s if isinstance(elapsed_s, int | float) else 0
    # the unit prices in force, under the cost's label (as on the price list, incl. VAT)
    cost_label = "\n".join([s.t("cost_label"),
                            *(s.t("price_now", price=line) for line in s.price_now())])
    notes = []
    cost_cap = decimal_of(s.state.get("cost_cap"))
    energy_cap = decimal_of(s.state.get("energy_cap_wh"))
    if cost_cap is not None and cost_cap > 0:
        notes.append(s.t("cap_cost", amount=s.amount(cost_cap)))
        extra["progress"] = _fraction(cost, cost_cap)
    elif energy_cap is not None and energy_cap > 0:
        notes.append(s.t("cap_energy", energy=energy(energy_cap, s.language)))
        extra["progress"] = _fraction(energy_wh, energy_cap)
    if (limit := s.price_limit()) is not None:
        notes.append(s.t(f"price_limit_{limit[:3]}"))
    cap_text = " · ".join(notes)
    stop_hint = s.t("stop_hint")
    if ahead := _idle_ahead(s):
        stop_hint = f"{ahead}. {stop_hint}"
    return {
        "charging_title": s.t(title),
        "energy": energy(energy_wh, s.language),
        "energy_label": s.t("energy_label"),
        "power": format_power(power_w, s.language),
        "power_label": s.t("power_label"),
        "elapsed": format_duration(int(elapsed_s)),
        "elapsed_label": s.t("elapsed_label"),
        "cost": s.amount(cost),
        "cost_label": cost_label,
        "cap": cap_text,
        "stop_hint": stop_hint,
        "stop": s.t("stopping" if s.stopping else "stop"),
        "charging_meter_info": s.t("meter_info"),
    }


def finishing(s: ScreenState) -> dict[str, str]:
    title = FINISH_TITLES.get(str(s.state.get("stop_reason")), "finish_done")
    return {
        "finish_title": s.t(title),
        "finish_energy": s.t("finish_energy", energy=energy(s.energy_wh(), s.language)),
        "finish_cost": s.t("finish_cost", amount=s.amount(s.cost_incl_vat())),
        "idle_fee": _idle_fee(s),
        "unplug": s.t("unplug"),
    }


def _idle_fee(s: ScreenState) -> str:
    """The idle fee under the cost: what the cost is made of once the fee accrues
    (charging part + idle part, the figures the cost is the sum of), or when it starts;
    and the min/max price when that sets the cost instead."""
    limit = s.price_limit()
    note = s.t(f"price_limit_{limit[:3]}") if limit is not None else ""
    idle = s.state.get("idle")
    text = ""
    if isinstance(idle, Mapping) and idle.get("accruing"):
        currency = idle.get("currency") if isinstance(idle.get("currency"), str) \
            else s.currency()
        parts = s.cost_parts()
        if parts is not None:
            text = s.t("cost_parts", charging=amount(parts[0], currency, s.language),
                       idle=amount(parts[1], currency, s.language))
        else:
            accrued = decimal_of(idle.get("accrued")) or Decimal(0)
            text = s.t("idle_fee_so_far", amount=amount(accrued, currency, s.language))
    elif isinstance(idle, Mapping):
        minutes = _minutes_until(s, idle.get("fee_from"))
        text = s.t("idle_fee_in", minutes=minutes) if minutes is not None else ""
    return ". ".join(part for part in (text, note) if part)


def _idle_ahead(s: ScreenState) -> str:
    """While charging: when an idle fee would start once charging has ended."""
    ahead = s.state.get("idle_ahead")
    if not isinstance(ahead, Mapping):
        return ""
    if ahead.get("at_charging_end"):
        return s.t("idle_ahead_now")
    minutes = _minutes_until(s, ahead.get("fee_from"))
    return s.t("idle_ahead_in", minutes=minutes) if minutes is not None else ""


def _minutes_until(s: ScreenState, when: Any) -> int | None:
    at, now = time_of(when), time_of(s.state.get("now"))
    if at is None or now is None:
        return None
    return max(1, math.ceil((at - now).total_seconds() / 60))


def receipt(s: ScreenState, extra: dict[str, Any]) -> dict[str, str]:
    receipt = s.receipt()  # None: another session's, or in the language before: fetching
    if receipt is None:
        hint = "receipt_unavailable" if s.model.receipt_failed else "receipt_loading"
    else:
        extra["receipt_lines"] = tuple(str(receipt.get("text") or "").splitlines())
        body = receipt.get("receipt")
        url = body.get("receipt_url") if isinstance(body, Mapping) else None
        if isinstance(url, str) and url:
            extra["qr"] = url
        hint = "receipt_hint_qr" if "qr" in extra else "receipt_hint"
    texts = {"receipt_title": s.t("receipt_title"), "receipt_hint": s.t(hint),
             "ack": s.t("ack"), "receipt_fault": receipt_fault(s),
             "signed_data": s.t("signed_data")}
    texts |= _receipt_summary(s, receipt)
    return texts


def _receipt_summary(s: ScreenState, receipt: Mapping[str, Any] | None) -> dict[str, str]:
    """Total, energy and payment in large type above the full receipt (the receipt's
    own JSON, formatted like the printed receipt), and the amount charged when it is not
    the total; empty while it is being fetched."""
    keys = ("receipt_total", "receipt_energy", "receipt_payment", "receipt_paid")
    body = receipt.get("receipt") if receipt is not None else None
    if not isinstance(body, Mapping):
        return {key: "" for key in (*keys, *(f"{key}_label" for key in keys))}
    currency = body.get("currency") if isinstance(body.get("currency"), str) else s.currency()
    total = body.get("total")
    total_incl = decimal_of(total.get("incl_vat")) if isinstance(total, Mapping) else None
    energy_wh = decimal_of(body.get("energy_wh"))
    texts = {
        "receipt_total": "" if total_incl is None
        else amount(total_incl, str(currency), s.language),
        "receipt_energy": "" if energy_wh is None else energy(energy_wh, s.language),
        "receipt_payment": _payment(s, body.get("payment")),
        "receipt_paid": "",
    }
    # what was taken from the card or account when it is not the total (a capped
    # charge, a refund): the total alone would not be the truth about the money
    paid = decimal_of(body.get("amount_paid"))
    if paid is not None and total_incl is not None and paid != total_incl:
        texts["receipt_paid"] = amount(paid, str(currency), s.language)
    for key in keys:
        texts[f"{key}_label"] = s.t(f"{key}_label") if texts[key] else ""
    return texts


PAYMENT_METHODS = ("rfid", "app", "card", "local", "remote")
CARD_MASK = "\u2022\u2022\u2022\u2022"  # as on the printed receipt: the last 4 digits only


def _payment(s: ScreenState, payment: Any) -> str:
    """The payment row of the printed receipt: method, card scheme and last 4 digits."""
    if not isinstance(payment, Mapping):
        return ""
    method = str(payment.get("method") or "")
    words = s.t(f"receipt_pay_{method}") if method in PAYMENT_METHODS else method
    scheme, last4 = payment.get("card_scheme"), payment.get("card_last4")
    card = " ".join(part for part in (
        scheme if isinstance(scheme, str) else None,
        f"{CARD_MASK}\u00a0{last4}" if isinstance(last4, str) and len(last4) == 4
        and last4.isdigit() else None) if part)
    if not card:
        return words
    return card if method == "card" else f"{words}, {card}"


def receipt_fault(s: ScreenState) -> str:
    """A fault or a stop of service while a receipt is on screen, at once (the receipt
    stays on screen; the out-of-service screen follows Done)."""
    parts = _faults(s)
    if s.state.get("accepting_sessions") is False and s.maintenance() is None:
        parts.append(s.t("oos_storage"))
    if s.maintenance() is not None:
        parts.append(s.t("oos_maintenance_detail"))
    if not parts:
        return ""
    return " ".join([s.t("receipt_fault"), *parts, s.t("error_other_charger")])


def error(s: ScreenState) -> dict[str, str]:
    parts = _faults(s)
    if not parts:
        parts.append(s.t("error_generic"))
    parts.append(s.t("error_unplug" if s.state.get("plugged") else "error_other_charger"))
    return {"error_title": s.t("error_title"), "error_detail": " ".join(parts)}


def out_of_service(s: ScreenState) -> dict[str, str]:
    parts = []
    maintenance = s.maintenance()
    if maintenance is not None:
        # a generic text in the driver's language: the technician's own words (`reason`)
        # stay in the audit log and the service menu
        parts.append(s.t("oos_maintenance_detail"))
    elif s.state.get("accepting_sessions") is False:
        parts.append(s.t("oos_storage"))
    parts += _faults(s)
    if s.readers_down():
        parts.append(s.t("oos_readers"))
    parts.append(s.t("oos_other_charger"))
    title = "oos_maintenance_title" if maintenance is not None else "oos_title"
    return {"oos_title": s.t(title), "oos_detail": " ".join(parts)}


def _faults(s: ScreenState) -> list[str]:
    """What the meter and the power stage report, in words (empty while healthy)."""
    parts = []
    if s.state.get("meter_fault"):
        parts.append(s.t("error_meter"))
    if s.state.get("charger_fault"):
        parts.append(s.t("error_charger"))
    return parts


def report(s: ScreenState) -> dict[str, str]:
    model = s.model
    texts = {"report_title": s.t("report_title")}
    for category in REPORT_CATEGORIES:
        texts[f"report_{category}"] = s.t(f"report_{category}")
    done = model.report_result in ("sent", "failed")
    texts["report_cancel"] = s.t("report_close" if done else "report_cancel")
    result = ""
    if model.report_result == "sending":
        result = s.t("report_sending")
    elif model.report_result == "sent":
        result = s.t("report_sent", reference=model.report_reference
                     if model.report_reference is not None else "-")
    elif model.report_result == "failed":
        result = s.t("report_failed")
        phone = s.state.get("support_phone")
        if isinstance(phone, str) and phone:
            result = f"{result} {s.t('report_call', phone=phone)}"
    texts["report_result"] = result
    return texts


def reconnecting(s: ScreenState) -> dict[str, str]:
    return {"reconnect_title": s.t("reconnect_title"),
            "reconnect_detail": s.t("reconnect_detail")}


def _fraction(part: Decimal, whole: Decimal) -> float:
    return float(min(Decimal(1), max(Decimal(0), part / whole)))
