"""What the ZVT client hands back: a transaction's result (amount as Decimal, trace and
receipt numbers, card type and name, the masked card number, terminal id, the result
code and the spec's text, the receipt lines), the terminal's status, the registration."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from drivers.zvt.codes import APPROVED, card_type_name, result_text, terminal_status_text
from drivers.zvt.messages import StatusInfo, Totals
from terminal.kernel.money import from_minor_units


@dataclass(frozen=True)
class TransactionResult:
    """One command's outcome. `amount` is what the terminal approved or booked (a
    partial approval is smaller than asked); `masked_pan` only ever masked."""

    command: str
    result_code: int
    currency: str
    amount: Decimal | None = None
    trace_number: int | None = None
    original_trace: int | None = None
    receipt_number: int | None = None
    turnover_number: int | None = None
    card_type: int | None = None
    card_name: str | None = None
    masked_pan: str | None = None
    expiry: str | None = None  # YYMM
    card_sequence: int | None = None
    terminal_id: int | None = None
    aid: str | None = None
    additional_text: str | None = None
    totals: Totals | None = None
    receipt_lines: tuple[str, ...] = ()
    intermediate: tuple[str, ...] = ()

    @property
    def approved(self) -> bool:
        return self.result_code == APPROVED

    @property
    def result_text(self) -> str:
        return result_text(self.result_code)

    @property
    def card_type_name(self) -> str | None:
        return card_type_name(self.card_type)

    def totals_amount(self, group: str) -> Decimal:
        """End-of-day: the turnover of one card group (TOTAL_GROUPS) as Decimal."""
        minor = self.totals.amounts_minor[group] if self.totals else 0
        return from_minor_units(minor, self.currency)


def result_from(command: str, currency: str, info: StatusInfo | None,
                final_code: int | None, lines: list[str],
                intermediate: list[str]) -> TransactionResult:
    """The result of a command from its Status information (if any) and the Abort code
    (06 1E) that ended it (None: it ended with Completion)."""
    code = final_code if final_code is not None else (info.result_code if info else 0)
    if info is None:
        return TransactionResult(command, code, currency, receipt_lines=tuple(lines),
                                 intermediate=tuple(intermediate))
    amount = (from_minor_units(info.amount_minor, currency)
              if info.amount_minor is not None else None)
    return TransactionResult(
        command=command,
        result_code=code,
        currency=currency,
        amount=amount,
        trace_number=info.trace_number,
        original_trace=info.original_trace,
        receipt_number=info.receipt_number,
        turnover_number=info.turnover_number,
        card_type=info.card_type,
        card_name=info.card_name,
        masked_pan=info.masked_pan,
        expiry=info.expiry,
        card_sequence=info.card_sequence,
        terminal_id=info.terminal_id,
        aid=info.aid,
        additional_text=info.additional_text,
        totals=info.totals,
        receipt_lines=tuple(lines),
        intermediate=tuple(intermediate),
    )


@dataclass(frozen=True)
class TerminalStatus:
    """Status enquiry: the terminal status code (00 = ready), its text, the terminal id."""

    status_code: int
    terminal_id: int | None = None

    @property
    def ready(self) -> bool:
        return self.status_code == 0

    @property
    def text(self) -> str:
        return terminal_status_text(self.status_code)


@dataclass(frozen=True)
class Registration:
    """Registration's completion: the terminal's status byte and id."""

    status_byte: int | None
    terminal_id: int | None
