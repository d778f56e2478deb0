"""The ZVT code tables: result codes (BMP 27, the spec's error messages), intermediate
statuses (04 FF), terminal status codes (status enquiry), ZVT card-type ids (BMP 8A) and
the config byte of Registration.

References read (no code copied): ZVT-Protokoll PA00P015 chapters "Error-Messages",
"Intermediate status", "Terminal Status Codes", "List of ZVT-card-type IDs";
Portalum/Portalum.Zvt src/Portalum.Zvt/Repositories/EnglishErrorMessageRepository.cs and
EnglishIntermediateStatusRepository.cs (the same texts).
"""

from __future__ import annotations

APPROVED = 0x00
DECLINED = 0x05  # the issuer's "do not honour", passed through by the terminal
CARD_NOT_READABLE = 0x64
ABORTED = 0x6C
PROTOCOL_ERROR = 0x9A
PLEASE_WAIT = 0x9C
ALREADY_REVERSED = 0xB4
REVERSAL_NOT_POSSIBLE = 0xB5
PREAUTH_AMOUNT_WRONG = 0xB7
PREAUTH_ERROR = 0xB8
SYSTEM_ERROR = 0xFF

RESULT_TEXTS: dict[int, str] = {
    0x00: "approved (no error)",
    0x05: "declined by the card issuer (do not honour)",
    0x64: "card not readable (LRC-/parity-error)",
    0x65: "card-data not present (neither track-data nor chip found)",
    0x66: "processing-error (also for problems with card-reader mechanism)",
    0x67: "function not permitted for ec- and Maestro-cards",
    0x68: "function not permitted for credit- and tank-cards",
    0x6A: "turnover-file full",
    0x6B: "function deactivated (PT not registered)",
    0x6C: "abort via timeout or abort-key",
    0x6E: "card in blocked-list",
    0x6F: "wrong currency",
    0x71: "credit not sufficient (chip-card)",
    0x72: "chip error",
    0x73: "card-data incorrect (e.g. country-key check, checksum-error)",
    0x77: "end-of-day batch not possible",
    0x78: "card expired",
    0x79: "card not yet valid",
    0x7A: "card unknown",
    0x7B: "fallback to magnetic stripe for girocard not possible",
    0x7C: "fallback to magnetic stripe not possible",
    0x7D: "communication error (communication module does not answer or is not present)",
    0x83: "function not possible",
    0x85: "key missing",
    0x89: "PIN-pad defective",
    0x9A: "ZVT protocol error (e.g. parsing error, mandatory message element missing)",
    0x9B: "error from dial-up/communication fault",
    0x9C: "please wait (repeat the request later)",
    0xA0: "receiver not ready",
    0xA1: "remote station does not respond",
    0xA3: "no connection",
    0xB1: "memory full",
    0xB2: "merchant-journal full",
    0xB4: "already reversed",
    0xB5: "reversal not possible",
    0xB7: "pre-authorisation incorrect (amount too high) or amount wrong",
    0xB8: "error pre-authorisation",
    0xBF: "voltage supply too low (external power supply)",
    0xC0: "card locking mechanism defective",
    0xC1: "merchant-card locked",
    0xC2: "diagnosis required",
    0xC3: "maximum amount exceeded",
    0xC4: "card-profile invalid",
    0xC5: "payment method not supported",
    0xC6: "currency not applicable",
    0xC8: "amount too small",
    0xC9: "max. transaction-amount too small",
    0xCB: "function only allowed in EURO",
    0xCC: "printer not ready",
    0xCD: "cashback not possible",
    0xD2: "function not permitted for service-cards/bank-customer-cards",
    0xDC: "card inserted",
    0xDD: "error during card-eject",
    0xDE: "error during card-insertion",
    0xE0: "remote-maintenance activated",
    0xE2: "card-reader does not answer / card-reader defective",
    0xE3: "shutter closed",
    0xE4: "terminal activation required",
    0xEA: "card-code not permitted",
    0xEC: "PIN-processing not possible",
    0xED: "PIN-pad defective",
    0xF0: "open end-of-day batch present",
    0xF1: "ec-cash/Maestro offline error",
    0xFA: "error transmitting offline-transactions (clearing error)",
    0xFB: "turnover data-set defective",
    0xFC: "necessary device not present or defective",
    0xFE: "register unknown",
    0xFF: "system error (other/unknown error)",
}


def result_text(code: int) -> str:
    """The spec's text of a result code; 01-63 are the authorisation host's codes."""
    if code in RESULT_TEXTS:
        return RESULT_TEXTS[code]
    if 0x01 <= code <= 0x63:
        return f"declined by the authorisation system (host code {code:02X})"
    return f"unknown result code {code:02X}"


INTERMEDIATE_TEXTS: dict[int, str] = {
    0x00: "PT is waiting for amount-confirmation",
    0x01: "please watch PIN-pad",
    0x03: "not accepted",
    0x04: "PT is waiting for response from FEP",
    0x05: "PT is sending auto-reversal",
    0x0A: "insert card",
    0x0B: "please remove card",
    0x0C: "card not readable",
    0x0D: "processing error",
    0x0E: "please wait",
    0x13: "payment not possible",
    0x15: "incorrect PIN",
    0x17: "please wait",
    0x1D: "declined",
    0xFF: "no appropriate ZVT status code matches the status",
}

INSERT_CARD = 0x0A
REMOVE_CARD = 0x0B
WAIT_FOR_HOST = 0x04
WAIT = 0x17


def intermediate_text(code: int) -> str:
    return INTERMEDIATE_TEXTS.get(code, f"intermediate status {code:02X}")


TERMINAL_STATUS_TEXTS: dict[int, str] = {
    0x00: "PT ready",
    0x51: "initialisation required",
    0x62: "date/time incorrect",
    0x9A: "ZVT protocol error",
    0xA0: "receiver not ready",
    0xB1: "memory full",
    0xD2: "connection to the host failed",
    0xDF: "out-of-order",
    0xF0: "open end-of-day batch present",
}


def terminal_status_text(code: int) -> str:
    return TERMINAL_STATUS_TEXTS.get(code, f"terminal status {code:02X}")


CARD_TYPES: dict[int, str] = {
    0x05: "girocard",
    0x06: "Mastercard",
    0x08: "American Express",
    0x0A: "Visa",
    0x0C: "Diners",
    0x0E: "JCB",
    0x0D: "V PAY",
    0x2E: "Maestro",
}


def card_type_name(card_type: int | None) -> str | None:
    if card_type is None:
        return None
    return CARD_TYPES.get(card_type, f"card type {card_type}")


# Registration config byte bits (06 00)
RECEIPTS_BY_ECR = 0x02
ADMIN_RECEIPTS_BY_ECR = 0x04
INTERMEDIATE_STATUS = 0x08
NO_AMOUNT_INPUT_ON_PT = 0x10
NO_ADMIN_ON_PT = 0x20
PRINT_TEXT_BLOCK = 0x80
DEFAULT_CONFIG = (RECEIPTS_BY_ECR | ADMIN_RECEIPTS_BY_ECR | INTERMEDIATE_STATUS
                  | NO_AMOUNT_INPUT_ON_PT | NO_ADMIN_ON_PT)
