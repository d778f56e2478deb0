"""The ids of ui/evterm.kv that the view fills, per screen: a table, and nothing else.

`SCREENS` (every screen name), `TOP_BAR` (over every driver screen), `SCREEN_WIDGETS`
(screen -> its labels and buttons), `REPORT_WIDGETS` and `REPORT_CATEGORIES` (the
"report a problem" panel over any screen), `LANGUAGE_BUTTONS` (button -> language) and
`TONES` (how the authorising screen colours its outcome; the text says it too, colour
is never alone). The technician's ids are in ui/service_model.py. ui/app.py checks at
start that evterm.kv has exactly these.
"""

from __future__ import annotations

from collections.abc import Mapping

from ui.i18n import LANGUAGES
from ui.service_model import PIN_WIDGETS, SERVICE_WIDGETS, STAFF_SCREENS
from ui.vat_entry import VAT_OPEN, VAT_SCREEN, VAT_WIDGETS

SCREENS = ("idle", "authorising", "charging", "finishing", "receipt", "error",
           "out_of_service", "reconnecting", "meter_info", "signed_data", VAT_SCREEN,
           *STAFF_SCREENS)

TOP_BAR = ("station", "operator", "badge_offline", "support", "report",
           "lang_en", "lang_de", "lang_fr", "lang_nl")
SCREEN_WIDGETS: Mapping[str, tuple[str, ...]] = {
    "idle": ("idle_title", "idle_connector", "price_headline", "price_title", "pay_ways",
             "app_hint", "idle_meter_info", "a11y_large_text", "a11y_high_contrast",
             "card_hold", "budget_title", "budget_1", "budget_2", "budget_3", "budget_4"),
    "authorising": ("auth_title", "auth_detail", "auth_cap"),
    "charging": ("charging_title", "energy", "energy_label", "power", "power_label",
                 "elapsed", "elapsed_label", "cost", "cost_label", "cap", "stop_hint",
                 "stop", "charging_meter_info", VAT_OPEN, "vat_given"),
    "finishing": ("finish_title", "finish_energy", "finish_cost", "idle_fee", "unplug"),
    "receipt": ("receipt_title", "receipt_hint", "ack", "receipt_fault",
                "receipt_total_label", "receipt_total", "receipt_energy_label",
                "receipt_energy", "receipt_payment_label", "receipt_payment",
                "receipt_paid_label", "receipt_paid", "signed_data"),
    "error": ("error_title", "error_detail"),
    "out_of_service": ("oos_title", "oos_detail"),
    "reconnecting": ("reconnect_title", "reconnect_detail"),
    # the signing meter: its key (from idle and charging), the receipt's signed data
    "meter_info": ("mi_title", "mi_meter", "mi_method", "mi_clock", "mi_hint", "mi_fault",
                   "mi_key_label", "mi_key", "mi_back"),
    "signed_data": ("sd_title", "sd_start", "sd_end", "sd_meter", "sd_hint", "sd_fault",
                    "sd_back"),
    # the company VAT number page over the charging screen (ui/vat_entry.py)
    VAT_SCREEN: VAT_WIDGETS,
    "pin": PIN_WIDGETS,
    "service": SERVICE_WIDGETS,
}
# The "report a problem" panel (over any screen): category buttons and a result line.
REPORT_WIDGETS = ("report_title", "report_payment", "report_charging", "report_screen",
                  "report_damage", "report_other", "report_cancel", "report_result")
REPORT_CATEGORIES = ("payment", "charging", "screen", "damage", "other")

LANGUAGE_BUTTONS: Mapping[str, str] = {f"lang_{code}": code for code in LANGUAGES}
# The meter pages: the buttons that open one (-> its screen) and their Back buttons.
INFO_BUTTONS: Mapping[str, str] = {"idle_meter_info": "meter_info",
                                   "charging_meter_info": "meter_info",
                                   "signed_data": "signed_data"}
INFO_BACK_BUTTONS = ("mi_back", "sd_back")

TONES = ("waiting", "ok", "attention", "refused")
