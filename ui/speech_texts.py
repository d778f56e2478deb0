"""What the speech output says for each screen, in the screen's language (pure).

Provides `speech_text(model, now_s) -> str` (the screen of `build_view(model, now_s)` as
one spoken text: its words as on screen, the figures in words by ui/speech_words.py),
`speech_key(model, now_s)` (what identifies the screen's state: when it changes, the
speaker says the new text; figures that run on while charging, the elapsed time, the
cost, the idle-fee countdown, are not part of it, so the speech is not restarted every
second: Repeat says them as they are now) and `receipt_speech(model, now_s)` (the full
receipt, read on request).

The company VAT number page says its keys one by one as they are pressed (the letter or
digit, "Delete"), the message after OK, and in full (Repeat, or when it opens) its
title, prompt, the keyboard's layout and the number so far spelled out.

Never spoken: PIN digits (the PIN pad says what to do, not what was typed: `pin_dots`
is left out), card numbers (the payment is its method and card scheme, without the last
4 digits; ui.speech_words.spoken takes out masks and anything that could be a card
number), the signing meter's public key (a long hex text; it is on screen to compare).
The words are the screen texts of ui/locales/*.json plus their `speech_*` keys.

QR codes (non-text content, EN 301 549 5.1.3.6) are announced with where they are and
what they are for (`QR_SPEECH`): the app start on the idle screen, the e-receipt on the
receipt screen, the signed meter data on its page; the announcement takes the place of
the screen's short hint under the code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ui.model import UiModel, View
from ui.screen_state import ScreenState
from ui.screen_texts import PAYMENT_METHODS
from ui.screen_vat import spoken_key
from ui.speech_words import spoken, spoken_amount, spoken_duration, spoken_energy, spoken_power
from ui.values import decimal_of
from ui.vat_entry import VAT_SCREEN
from ui.view import build_view
from ui.widgets import REPORT_CATEGORIES

# the widgets read out per screen, in this order (figures of the charging and receipt
# screens are said from the daemon's values instead, see _figures)
SPOKEN_WIDGETS: Mapping[str, tuple[str, ...]] = {
    "idle": ("idle_title", "idle_connector", "pay_ways", "card_hold", "budget_title",
             "budget_1", "budget_2", "budget_3", "budget_4", "app_hint"),
    "authorising": ("auth_title", "auth_detail", "auth_cap"),
    "charging": ("charging_title", "cap", "stop_hint", "vat_given"),
    "finishing": ("finish_title", "finish_energy", "finish_cost", "idle_fee", "unplug"),
    "receipt": ("receipt_title", "receipt_fault"),
    VAT_SCREEN: ("vat_title", "vat_prompt", "vat_message"),
    "error": ("error_title", "error_detail"),
    "out_of_service": ("oos_title", "oos_detail"),
    "reconnecting": ("reconnect_title", "reconnect_detail"),
    "meter_info": ("mi_title", "mi_meter", "mi_method", "mi_clock", "mi_fault", "mi_hint"),
    "signed_data": ("sd_title", "sd_meter", "sd_start", "sd_end", "sd_fault", "sd_hint"),
    "pin": ("pin_title", "pin_message"),
    "service": ("svc_status",),
}
# what a change of the screen's state is (the rest runs on: energy, cost, minutes left)
KEY_WIDGETS: Mapping[str, tuple[str, ...]] = {
    "idle": ("idle_title", "idle_connector", "price_headline", "card_hold"),
    "authorising": ("auth_title", "auth_detail"),
    "charging": ("charging_title", "stop", "vat_given"),
    VAT_SCREEN: ("vat_title", "vat_typed", "vat_message"),
    "finishing": ("finish_title", "unplug"),
    "receipt": ("receipt_title", "receipt_total", "receipt_fault"),
    "error": ("error_title", "error_detail"),
    "out_of_service": ("oos_title", "oos_detail"),
    "reconnecting": ("reconnect_title",),
    "meter_info": ("mi_title",),
    "signed_data": ("sd_title",),
    "pin": ("pin_title", "pin_message"),
    "service": ("svc_status", "svc_plots_summary"),
}
NEVER_SPOKEN = frozenset({"pin_dots", "mi_key", "mi_key_label"})
# a QR code on screen (view.qr): (the hint it replaces, the speech text announcing it)
QR_SPEECH: Mapping[str, tuple[str, str]] = {
    "idle": ("app_hint", "speech_qr_app"),
    "receipt": ("receipt_hint", "speech_qr_receipt"),
    "signed_data": ("sd_hint", "speech_qr_signed"),
}


def speech_text(model: UiModel, now_s: float, controls: bool = False) -> str:
    """The current screen as spoken text; `controls`: add how to repeat, pause and
    switch speech off (said when speech is switched on)."""
    view = build_view(model, now_s)
    s = ScreenState(model, now_s)
    return text_of(view, s, controls)


def text_of(view: View, s: ScreenState, controls: bool = False) -> str:
    """The spoken text of a built view."""
    language = view.language
    parts: list[str] = []
    if view.timeout_speech and not controls:
        # a time limit is about to end: say that (once: see key_of), not the screen
        return spoken(view.timeout_speech, language)
    if view.offline:
        parts.append(view.texts.get("badge_offline", ""))
    if view.screen == "pin":
        parts.append(s.t("pin_title"))
        parts.append(s.t("speech_pin"))
        parts.append(view.texts.get("pin_message", ""))
    elif view.screen == "service":
        parts.append(s.t("speech_service"))
        parts.append(view.texts.get("svc_status", ""))
        if view.service_tab == "plots":  # "Last 30 days: sessions 42, 512.3 kWh, ..."
            parts.append(view.texts.get("svc_plots_summary", ""))
    elif view.screen == VAT_SCREEN:
        parts += _vat_entry(view, s, controls)
    else:
        widgets = SPOKEN_WIDGETS.get(view.screen, ())
        qr_hint, qr_speech = QR_SPEECH.get(view.screen, ("", ""))
        if not view.qr:
            qr_hint = qr_speech = ""
        parts += [s.t(qr_speech) if name == qr_hint else view.texts.get(name, "")
                  for name in widgets]
        figures = _figures(view, s)
        if qr_speech and qr_hint not in widgets:  # the receipt: before "Read receipt..."
            figures.insert(max(0, len(figures) - 1), s.t(qr_speech))
        parts += figures
    if view.report_open:
        parts += _report(view, s)
    if controls:
        parts.append(s.t("speech_controls"))
    return _join([spoken(part, language) for part in parts if part])


def speech_key(model: UiModel, now_s: float) -> tuple[Any, ...]:
    """The screen's state as the speech sees it: a new key is a new thing to say."""
    view = build_view(model, now_s)
    return key_of(view)


def key_of(view: View) -> tuple[Any, ...]:
    texts = tuple(view.texts.get(name, "") for name in KEY_WIDGETS.get(view.screen, ()))
    report = (view.report_open, view.texts.get("report_result", "")) if view.report_open \
        else (False, "")
    warned = bool(view.timeout_speech)  # the warning appears: said once, not each second
    return (view.screen, view.language, view.offline, view.tone, texts, report, warned)


def receipt_speech(model: UiModel, now_s: float) -> str:
    """The whole receipt as printed, line by line, in words; '' without a receipt."""
    s = ScreenState(model, now_s)
    receipt = s.receipt()
    if receipt is None:
        return ""
    lines = str(receipt.get("text") or "").splitlines()
    said = [spoken(" ".join(line.split()), s.language) for line in lines]
    return _join([line for line in said if line.strip(" -=*.:")])


def _figures(view: View, s: ScreenState) -> list[str]:
    """Prices, energy, cost and payment from the daemon's values, in words."""
    language = view.language
    if view.screen == "idle":
        prices = "; ".join(view.price_lines) or view.texts.get("price_headline", "")
        return [s.t("speech_prices", prices=prices)] if prices else []
    if view.screen == "charging":
        elapsed = s.state.get("elapsed_s")
        parts = [s.t("speech_energy", energy=spoken_energy(s.energy_wh(), language)),
                 s.t("speech_cost", amount=spoken_amount(s.cost_incl_vat(), s.currency(),
                                                         language))]
        parts += [s.t("price_now", price=line) for line in s.price_now()]
        power = decimal_of(s.state.get("power_w"))
        if power is not None:
            parts.append(s.t("speech_power", power=spoken_power(power, language)))
        if isinstance(elapsed, int | float):
            parts.append(s.t("speech_elapsed", duration=spoken_duration(int(elapsed),
                                                                        language)))
        return parts
    if view.screen == "receipt":
        return _receipt_summary(s)
    return []


def _receipt_summary(s: ScreenState) -> list[str]:
    receipt = s.receipt()
    body = receipt.get("receipt") if receipt is not None else None
    if not isinstance(body, Mapping):
        return [s.t("receipt_unavailable" if s.model.receipt_failed else "receipt_loading")]
    currency = str(body.get("currency")) if isinstance(body.get("currency"), str) \
        else s.currency()
    parts: list[str] = []
    total = body.get("total")
    total_incl = decimal_of(total.get("incl_vat")) if isinstance(total, Mapping) else None
    if total_incl is not None:
        parts.append(s.t("speech_total", amount=spoken_amount(total_incl, currency,
                                                              s.language)))
    energy_wh = decimal_of(body.get("energy_wh"))
    if energy_wh is not None:
        parts.append(s.t("speech_energy", energy=spoken_energy(energy_wh, s.language)))
    paid = decimal_of(body.get("amount_paid"))
    if paid is not None and total_incl is not None and paid != total_incl:
        parts.append(s.t("speech_paid", amount=spoken_amount(paid, currency, s.language)))
    payment = _payment(s, body.get("payment"))
    if payment:
        parts.append(s.t("speech_paid_with", payment=payment))
    parts.append(s.t("speech_receipt_more"))
    return parts


def _payment(s: ScreenState, payment: Any) -> str:
    """The payment method and card scheme; never a digit of the card."""
    if not isinstance(payment, Mapping):
        return ""
    method = str(payment.get("method") or "")
    words = s.t(f"receipt_pay_{method}") if method in PAYMENT_METHODS else ""
    scheme = payment.get("card_scheme")
    scheme = scheme if isinstance(scheme, str) and not any(c.isdigit() for c in scheme) \
        else ""
    return ", ".join(part for part in (words, scheme) if part)


def _vat_entry(view: View, s: ScreenState, controls: bool) -> list[str]:
    """A key just pressed: that key (a letter, a digit, Delete) or, after OK or when the
    number is full, the message; else the page: title, prompt, the keyboard's layout,
    the number typed so far spelled out, the message."""
    vat = s.model.vat
    message = view.texts.get("vat_message", "")
    if vat.last_key and not controls:
        return [message or spoken_key(vat.last_key, s)]
    parts = [view.texts.get(name, "") for name in SPOKEN_WIDGETS[VAT_SCREEN][:2]]
    parts.append(s.t("speech_vat"))
    if vat.typed:
        parts.append(s.t("speech_vat_typed", typed=" ".join(vat.typed)))
    parts.append(message)
    return parts


def _report(view: View, s: ScreenState) -> list[str]:
    parts = [view.texts.get("report_title", "")]
    options = [view.texts.get(f"report_{c}", "") for c in REPORT_CATEGORIES
               if f"report_{c}" in view.buttons]
    if options:
        parts.append(s.t("speech_report_options", options=", ".join(filter(None, options))))
    parts.append(view.texts.get("report_result", ""))
    return parts


def _join(parts: Sequence[str]) -> str:
    """Sentences joined with a full stop where the screen text has none."""
    out = []
    for part in parts:
        part = part.strip()
        if not part:
            continue
        out.append(part if part[-1] in ".!?:…" else f"{part}.")
    return " ".join(out)

