"""Texts for drivers: a short sentence a person understands for a decline reason or an
authorisation result, in every language the terminal speaks (en, de, fr, nl).

Provides `LANGUAGES`, `DRIVER_MESSAGE_CODES` (every code `driver_message` knows) and
`driver_message(code, language)`. Pure data, standard library only: the daemon
(terminal/identification/taps.py, the `tap` event's `message`) and the touchscreen (ui/, which
translates a tap's `reason`) both import it. Unknown codes get the generic "card not
accepted here"; unknown languages get English; nothing raises.
"""

from __future__ import annotations

from collections.abc import Mapping

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

DRIVER_MESSAGE_CODES = tuple(sorted({*_MESSAGES, *_ALIASES}))


def driver_message(code: str, language: str = "en") -> str:
    """Short driver text for a decline reason (do_not_honor, insufficient_funds,
    expired_card, card_not_supported, ...) or an authorisation result (an AuthStatus
    name or an AuthDecision reason code). Unknown codes get the generic "card not
    accepted here"; unknown languages get English."""
    key = code.lower()
    key = _ALIASES.get(key, key)
    texts = _MESSAGES.get(key, _MESSAGES["not_accepted"])
    return texts.get(language, texts["en"])
