"""Texts for drivers: a short sentence a person understands for a decline reason or an
authorisation result, in every language the terminal speaks (en, de, fr, nl).

Provides `LANGUAGES`, `DRIVER_MESSAGE_CODES` (every code `driver_message` knows),
`driver_message(code, language)` and `scheme_refusal(schemes)`. A code may carry
arguments after a colon: `scheme_not_accepted:visa,mastercard` is "This card type is not
accepted here - accepted: Visa, Mastercard" (`scheme_refusal` builds it; scheme ids that
are not known are left out). Pure data and the kernel's scheme names: the daemon
(terminal/identification/taps.py, the `tap` event's `message`) and the touchscreen (ui/, which
translates a tap's `reason`) both import it. Unknown codes get the generic "card not
accepted here"; unknown languages get English; nothing raises.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from terminal.kernel.cards import SCHEME_NAMES, scheme_name

LANGUAGES = ("en", "de", "fr", "nl")

_MESSAGES: Mapping[str, Mapping[str, str]] = {
    "accepted": {"en": "Accepted", "de": "Akzeptiert", "fr": "Acceptée",
                 "nl": "Geaccepteerd"},
    "technician": {"en": "Technician card", "de": "Technikerkarte", "fr": "Carte technicien",
                   "nl": "Monteurspas"},
    "declined": {"en": "Card declined by your bank", "de": "Karte von Ihrer Bank abgelehnt",
                 "fr": "Carte refusée par votre banque", "nl": "Kaart geweigerd door uw bank"},
    "not_accepted": {"en": "Card not accepted here", "de": "Karte hier nicht akzeptiert",
                     "fr": "Carte non acceptée ici", "nl": "Kaart wordt hier niet geaccepteerd"},
    "offline_payment": {
        "en": "Charger offline - only charge cards work now",
        "de": "Ladestation offline - jetzt funktionieren nur Ladekarten",
        "fr": "Borne hors ligne - seules les cartes de recharge fonctionnent",
        "nl": "Laadpaal offline - alleen laadpassen werken nu",
    },
    "offline": {
        "en": "Charger offline - this card cannot be checked now",
        "de": "Ladestation offline - diese Karte kann jetzt nicht geprüft werden",
        "fr": "Borne hors ligne - cette carte ne peut pas être vérifiée",
        "nl": "Laadpaal offline - deze kaart kan nu niet worden gecontroleerd",
    },
    "payment_unavailable": {
        "en": "Card payment not possible right now, please try again",
        "de": "Kartenzahlung gerade nicht möglich, bitte erneut versuchen",
        "fr": "Paiement par carte impossible pour le moment, veuillez réessayer",
        "nl": "Betalen met kaart is nu niet mogelijk, probeer het opnieuw",
    },
    "blocked": {"en": "This card is blocked", "de": "Diese Karte ist gesperrt",
                "fr": "Cette carte est bloquée", "nl": "Deze kaart is geblokkeerd"},
    "expired": {"en": "This card has expired", "de": "Diese Karte ist abgelaufen",
                "fr": "Cette carte a expiré", "nl": "Deze kaart is verlopen"},
    "unknown": {"en": "Card unknown", "de": "Karte unbekannt", "fr": "Carte inconnue",
                "nl": "Kaart onbekend"},
    "tap_again": {"en": "Card removed too early - please tap again",
                  "de": "Karte zu früh entfernt - bitte erneut auflegen",
                  "fr": "Carte retirée trop tôt - veuillez la présenter à nouveau",
                  "nl": "Kaart te vroeg weggehaald - houd hem opnieuw tegen de lezer"},
    "see_phone": {"en": "See phone for instructions, then tap again",
                  "de": "Bitte Anweisungen auf dem Telefon beachten, dann erneut auflegen",
                  "fr": "Suivez les instructions sur votre téléphone, puis présentez-le "
                        "à nouveau",
                  "nl": "Volg de instructies op uw telefoon en houd hem daarna opnieuw "
                        "tegen de lezer"},
    "scheme_not_accepted": {"en": "This card type is not accepted here",
                            "de": "Diese Kartenart wird hier nicht akzeptiert",
                            "fr": "Ce type de carte n'est pas accepté ici",
                            "nl": "Dit type kaart wordt hier niet geaccepteerd"},
    "read_failed": {"en": "Card could not be read - please tap again",
                    "de": "Karte nicht lesbar - bitte erneut auflegen",
                    "fr": "Carte illisible - veuillez la présenter à nouveau",
                    "nl": "Kaart niet leesbaar - houd hem opnieuw tegen de lezer"},
    "in_use": {"en": "This charger is in use", "de": "Diese Ladestation ist belegt",
               "fr": "Cette borne est occupée", "nl": "Deze laadpaal is in gebruik"},
    "unplug": {"en": "Charging has ended - unplug the vehicle to finish",
               "de": "Laden beendet - zum Abschluss bitte das Fahrzeug abstecken",
               "fr": "Recharge terminée - débranchez le véhicule pour finir",
               "nl": "Laden beëindigd - koppel het voertuig los om af te ronden"},
    "stopped": {"en": "Charging is stopping", "de": "Der Ladevorgang wird beendet",
                "fr": "La recharge s'arrête", "nl": "Het laden wordt gestopt"},
    "technician_stop": {"en": "Stopped by technician card",
                        "de": "Mit Technikerkarte beendet",
                        "fr": "Arrêtée par carte technicien",
                        "nl": "Gestopt met monteurspas"},
    "not_running": {"en": "No charging to stop", "de": "Kein Ladevorgang zu beenden",
                    "fr": "Aucune recharge à arrêter", "nl": "Geen laadsessie om te stoppen"},
    "pay_at_terminal": {"en": "Please pay at the card terminal",
                        "de": "Bitte am Kartenterminal bezahlen",
                        "fr": "Veuillez payer au terminal de paiement",
                        "nl": "Betaal a.u.b. bij de betaalterminal"},
    "unavailable": {"en": "Charger not available right now",
                    "de": "Ladestation gerade nicht verfügbar",
                    "fr": "Borne indisponible pour le moment",
                    "nl": "Laadpaal nu niet beschikbaar"},
}

# Codes that share a text: decline reasons of the payment gateway and OCPP statuses.
_ALIASES = {
    "do_not_honor": "declined",
    "insufficient_funds": "declined",
    "expired_card": "expired",
    "card_not_supported": "not_accepted",
    "invalid": "not_accepted",
    "invalid_envelope": "payment_unavailable",
    "pan_in_clear": "payment_unavailable",
    "gateway_error": "payment_unavailable",
    "terminal_error": "unavailable",
    "tariff_invalid": "unavailable",
}

# The list that follows a code's text when the code carries one (code:arg,arg).
_LISTS: Mapping[str, Mapping[str, str]] = {
    "scheme_not_accepted": {"en": "{text} - accepted: {items}",
                            "de": "{text} - akzeptiert: {items}",
                            "fr": "{text} - acceptées : {items}",
                            "nl": "{text} - geaccepteerd: {items}"},
}

DRIVER_MESSAGE_CODES = tuple(sorted({*_MESSAGES, *_ALIASES}))
SCHEME_REFUSAL = "scheme_not_accepted"


def scheme_refusal(schemes: Iterable[str]) -> str:
    """The reason code of a card of a scheme not accepted here, naming the accepted scheme
    ids: `scheme_not_accepted:visa,mastercard`."""
    return f"{SCHEME_REFUSAL}:{','.join(schemes)}"


def driver_message(code: str, language: str = "en") -> str:
    """Short driver text for a decline reason (do_not_honor, insufficient_funds,
    expired_card, card_not_supported, ...) or an authorisation result (an AuthStatus
    name or an AuthDecision reason code). Unknown codes get the generic "card not
    accepted here"; unknown languages get English."""
    key, _, argument = code.lower().partition(":")
    key = _ALIASES.get(key, key)
    texts = _MESSAGES.get(key, _MESSAGES["not_accepted"])
    text = texts.get(language, texts["en"])
    items = [scheme_name(s) for s in argument.split(",") if s in SCHEME_NAMES]
    if key in _LISTS and items:
        lists = _LISTS[key]
        return lists.get(language, lists["en"]).format(text=text, items=", ".join(items))
    return text
