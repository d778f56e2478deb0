"""Receipt of one charging session: plain text (screen, printer) and JSON (backend, e-receipt).

`build_receipt(facts, tariff, result, language)` turns the `ReceiptFacts` the session
journal holds, the tariff the session was priced with and the final `PricingResult`
into a `Receipt`; `Receipt.to_text()` / `render_text(receipt, language)` give lines of
at most 42 characters, `Receipt.to_json()` schema_version 2 with the same figures.
docs/receipts.md explains every line and the rule every figure follows: it recomputes
from the figures printed beside it (gross lines, VAT contained in each rate's gross).

The modules, each with one job:
- facts: `ReceiptFacts`, `RefundLine`, `ReceiptError` (inputs, checked on creation);
- build: `build_receipt` (facts + tariff + result -> Receipt);
- amounts: the printed lines, adjustment and cap rows per VAT group, `VatRate`;
- model: `Receipt`, its JSON and `render_text` (the order of the lines);
- wording: how each label, sentence and value is said in a language;
- layout: the 42-character column (`WIDTH`, wrapped lines, label/value rows);
- labels: the table of the receipt's words per language (`LABELS`, `STOP_REASONS`).

Guarantees: reproducible (a pure function of its inputs: building it twice from the
database gives byte-identical text and JSON); no card data beyond the last 4 digits;
one energy (a result that disagrees with the meter delta is refused).
"""

from terminal.receipt.amounts import VatRate
from terminal.receipt.build import ENERGY_TOLERANCE_WH, build_receipt
from terminal.receipt.facts import ReceiptError, ReceiptFacts, RefundLine
from terminal.receipt.labels import PAYMENT_METHODS, STOP_REASONS
from terminal.receipt.layout import WIDTH
from terminal.receipt.model import SCHEMA_VERSION, Receipt, render_text
from terminal.receipt.wording import CARD_MASK

__all__ = [
    "CARD_MASK",
    "ENERGY_TOLERANCE_WH",
    "PAYMENT_METHODS",
    "SCHEMA_VERSION",
    "STOP_REASONS",
    "WIDTH",
    "Receipt",
    "ReceiptError",
    "ReceiptFacts",
    "RefundLine",
    "VatRate",
    "build_receipt",
    "render_text",
]
