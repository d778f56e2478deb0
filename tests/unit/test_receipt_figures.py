"""Every figure a receipt prints recomputes from the figures printed beside it.

The property test prices random tariffs and sessions, renders the receipt in every
language and reads the *text* back: line amounts from the printed quantity and unit
price, the total from the lines and adjustment rows, the amount charged from the total
and the cap rows, per VAT rate the VAT and net from the printed gross, the amount paid
from the amount charged and the refunds, the duration from the printed start and stop.
It uses the label tables only to find the rows, never a figure that is not printed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from terminal.kernel.locales import LOCALES, Locale, get_locale
from terminal.pricing import Sample, SessionInput, price_session
from terminal.pricing.model import Tariff
from terminal.receipt import WIDTH, Receipt, ReceiptFacts, RefundLine, build_receipt, render_text
from terminal.receipt.labels import LABELS
from tests.unit.pricing.helpers import comp, element, tariff

D = Decimal
LANGUAGES = sorted(LOCALES)
RULE = "-" * WIDTH
AMOUNT = r"[+-]?\d[\d.,\u202f]* [A-Z]{3}"
VALUE_ROW = re.compile(rf"^(?P<label>.*?\S) +(?P<value>{AMOUNT})$")


# Reading the text back ---------------------------------------------------------------------


def number(locale: Locale, text: str) -> Decimal:
    return D(text.replace(locale.group_sep, "").replace(locale.decimal_sep, "."))


def money(locale: Locale, text: str) -> Decimal:
    value, _, currency = text.rpartition(" ")
    assert re.fullmatch(r"[A-Z]{3}", currency), text
    return number(locale, value)


def template(fmt: str, **groups: str) -> re.Pattern[str]:
    """A format string with `{name}` fields as a regex with named groups."""
    parts = re.split(r"\{(\w+)\}", fmt)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{groups[part]})"
        for i, part in enumerate(parts)
    )
    return re.compile(f"^{pattern}$")


def percent_pattern(locale: Locale) -> str:
    return re.escape(locale.percent.replace("{n}", "NUMBER")).replace("NUMBER", r"[\d.,]+")


def half_up(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(D(1).scaleb(-places), rounding=ROUND_HALF_UP)


def rows(lines: list[str]) -> list[tuple[str, str | None]]:
    """Logical rows: (label, value) with the value right-aligned on the line or on the
    next line alone; lines indented by two spaces that carry no value continue a text."""
    found: list[tuple[str, str | None]] = []
    for line in lines:
        stripped = line.strip()
        if line.startswith("  ") and re.fullmatch(AMOUNT, stripped) and found:
            assert found[-1][1] is None, (found[-1], line)
            found[-1] = (found[-1][0], stripped)
            continue
        match = VALUE_ROW.match(line)
        if match:
            found.append((match["label"], match["value"]))
        elif line.startswith("  ") and " x " not in line and found and found[-1][1] is None:
            found[-1] = (f"{found[-1][0]} {stripped}", None)
        else:
            found.append((line, None))
    return found


def moment(locale: Locale, text: str) -> datetime:
    date_re = template(
        locale.date.replace(":04d", "").replace(":02d", ""), y=r"\d{4}", m=r"\d{2}", d=r"\d{2}"
    )
    day, clock, offset = text.split(" ")
    parts = date_re.match(day)
    assert parts, text
    return datetime.fromisoformat(
        f"{parts['y']}-{parts['m']}-{parts['d']}T{clock}{offset}"
    )


def seconds_of(text: str) -> int:
    hours, minutes, seconds = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + seconds


def read_back(text: str, language: str) -> dict[str, Any]:
    """Re-derive every figure of the text from printed figures; assert they agree."""
    locale = get_locale(language)
    labels = LABELS[language]
    cur = r"[A-Z]{3}"
    pct = percent_pattern(locale)
    amount = AMOUNT
    sections = [s.strip("\n").split("\n") for s in text.split(RULE + "\n")]
    raw = [s.strip("\n") for s in text.split(RULE + "\n")]
    lines, totals, payment = (rows(sections[i]) for i in (2, 3, 5))

    def value(section: list[tuple[str, str | None]], key: str) -> str:
        found = [v for label, v in section if label == labels[key] and v is not None]
        assert len(found) == 1, (key, section)
        return found[0]

    # duration from the printed start and stop
    start_line = [ln for ln in raw[0].split("\n") if ln.startswith(labels["start"] + " ")]
    stop_line = [ln for ln in raw[0].split("\n") if ln.startswith(labels["stop"] + " ")]
    start = moment(locale, start_line[0][len(labels["start"]):].strip())
    stop = moment(locale, stop_line[0][len(labels["stop"]):].strip())
    duration_line = [ln for ln in raw[0].split("\n") if ln.startswith(labels["duration"])]
    duration = seconds_of(duration_line[0][len(labels["duration"]):].strip())
    assert duration == (stop - start).total_seconds(), text

    # energy from the printed readings
    def kwh(key: str) -> Decimal:
        line = next(ln for ln in raw[1].split("\n") if ln.startswith(labels[key] + " "))
        return number(locale, line[len(labels[key]):].strip().removesuffix(" kWh").strip())

    assert kwh("energy") == half_up(kwh("meter_stop") - kwh("meter_start"), 3)

    # lines and adjustments, per VAT group
    any_vat = any(label == labels["amounts_incl_vat"] for label, _ in lines)
    header_re = template(labels["line_vat"], name=".+?", vat=pct)
    no_vat_re = template(labels["line_no_vat"], name=".+?")
    detail_re = re.compile(
        rf"^  (?P<q>.+?) x (?P<p>[\d.,\u202f]+) (?P<cur>{cur})(?:/(?P<per>\S+))?$"
    )
    groups: dict[Decimal | None, Decimal] = {}
    line_sum = D(0)
    adjustment_names = {labels[k] for k in ("rounding", "min_price", "max_price")}

    def group_of(label: str, names: set[str]) -> tuple[bool, Decimal | None]:
        if not any_vat:
            return label in names, None
        match = header_re.match(label)
        if match and match["name"] in names:
            return True, number(locale, re.sub(r"[^\d.,]", "", match["vat"]))
        match = no_vat_re.match(label)
        if match and match["name"] in names:
            return True, None
        return False, None

    current: Decimal | None = None
    printed_lines: list[Decimal] = []
    adjustments = D(0)
    for label, shown in lines:
        if shown is None:
            match = header_re.match(label)
            if match:
                current = number(locale, re.sub(r"[^\d.,]", "", match["vat"]))
            elif no_vat_re.match(label) or label in {
                labels[d] for d in ("ENERGY", "TIME", "PARKING_TIME", "FLAT")
            }:
                current = None
            continue
        detail = detail_re.match(label)
        if detail:
            price = number(locale, detail["p"])
            per = detail["per"]
            if per == "kWh":
                assert detail["q"].endswith(" kWh")
                exact = number(locale, detail["q"].removesuffix(" kWh")) * price
            elif per == locale.minute:
                exact = D(seconds_of(detail["q"])) * price / 60
            elif per == locale.hour:
                exact = D(seconds_of(detail["q"])) * price / 3600
            else:
                assert per is None, label
                exact = number(locale, detail["q"]) * price
            printed = money(locale, shown)
            assert printed == half_up(exact), (label, shown)
            printed_lines.append(printed)
            groups[current] = groups.get(current, D(0)) + printed
            line_sum += printed
            continue
        is_adjustment, group = group_of(label, adjustment_names)
        assert is_adjustment, (label, shown)
        groups[group] = groups.get(group, D(0)) + money(locale, shown)
        adjustments += money(locale, shown)

    total = money(locale, value(totals, "total_incl_vat" if any_vat else "total"))
    assert total == line_sum + adjustments, text

    # the cap
    charged = total
    cap_sum = D(0)
    for label, shown in totals:
        is_cap, group = group_of(label, {labels["cap"], labels["not_charged"]})
        if is_cap and shown is not None:
            groups[group] = groups.get(group, D(0)) + money(locale, shown)
            cap_sum += money(locale, shown)
    if cap_sum:
        charged = money(locale, value(totals, "charged"))
        assert charged == total + cap_sum, text

    # VAT per rate, from the printed gross of the rate
    vat_re = template(labels["vat_incl"], vat=pct, tax=amount, gross=amount)
    no_vat_row = template(labels["no_vat_row"], base=amount)
    vats: list[tuple[Decimal, Decimal, Decimal, Decimal]] = []
    net_total = D(0)
    no_vat: Decimal | None = None
    for index, (label, shown) in enumerate(totals):
        full = label if shown is None else f"{label} {shown}"  # a sentence, not a row
        match = vat_re.match(full)
        if match:
            rate = number(locale, re.sub(r"[^\d.,]", "", match["vat"]))
            tax, gross = money(locale, match["tax"]), money(locale, match["gross"])
            assert tax == half_up(gross * rate / (100 + rate)), label
            assert gross == groups.pop(rate), (label, groups)
            net_label, net_value = totals[index + 1]
            assert net_label == labels["net_row"].format(vat=match["vat"])
            assert net_value is not None
            assert money(locale, net_value) == gross - tax
            vats.append((rate, gross, tax, gross - tax))
            net_total += gross - tax
        match = no_vat_row.match(full)
        if match and any_vat:
            no_vat = money(locale, match["base"])
            assert no_vat == groups.pop(None)
            net_total += no_vat
    if any_vat:
        assert not any(groups.values()), groups  # every group's amount has a VAT row
        assert sum((g for _, g, _, _ in vats), no_vat or D(0)) == charged
        if len(vats) + (no_vat is not None) > 1:
            assert money(locale, value(totals, "net_amount")) == net_total
    else:
        assert "VAT" not in text and "MwSt" not in text

    # refunds and the amount paid
    refund_re = template(labels["refund"], date=r"\S+")
    refunds = [money(locale, v) for k, v in payment if v is not None and refund_re.match(k)]
    paid = charged
    if refunds:
        paid = money(locale, value(payment, "paid_after_refunds"))
        assert paid == charged + sum(refunds, D(0))
    return {
        "duration_s": duration,
        "lines": printed_lines,
        "total": total,
        "charged": charged,
        "vats": vats,
        "no_vat": no_vat,
        "paid": paid,
    }


def check_json(receipt: Receipt, figures: dict[str, Any]) -> None:
    data = receipt.to_json()
    assert D(data["duration_s"]) == figures["duration_s"]
    amounts = [D(line["amount"]) for line in (*data["charges"], *data["fees"])]
    assert amounts == figures["lines"]
    assert D(data["total"]["incl_vat"]) == figures["total"]
    assert D(data["amount_charged"]) == figures["charged"]
    assert [
        (D(v["percent"]), D(v["gross"]), D(v["vat"]), D(v["net"])) for v in data["vat"]
    ] == figures["vats"]
    if figures["no_vat"] is not None:
        assert D(data["no_vat_amount"]) == figures["no_vat"]
    assert D(data["amount_paid"]) == figures["paid"]


# Random tariffs and sessions -----------------------------------------------------------------

VATS = [None, "0", "5.5", "7", "19", "20", "21"]


@st.composite
def tariffs(draw: st.DrawFn) -> Tariff:
    components = []
    for kind, low, high, places in (
        ("ENERGY", 1, 9999, 4),
        ("TIME", 1, 150000, 4),
        ("PARKING_TIME", 1, 150000, 4),
        ("FLAT", 1, 500, 2),
    ):
        if draw(st.booleans()):
            price = D(draw(st.integers(low, high))).scaleb(-places)
            step = draw(st.sampled_from([1, 60, 300, 1000] if kind != "FLAT" else [1]))
            components.append(comp(kind, str(price), draw(st.sampled_from(VATS)), step))
    if not components:
        components.append(comp("ENERGY", "0.45", "19"))
    fields: dict[str, Any] = {}
    rates = {c.get("vat") for c in components}
    # a limit's incl. VAT follows the tariff's rates; a limit with VAT on a tariff that
    # also has components without VAT is left out: a session whose lines are all
    # without VAT would show VAT without a rate (such a result is refused)
    for key in ("min_price", "max_price"):
        if (len(rates) == 1 or None not in rates) and draw(st.integers(0, 2)) == 0:
            rate = max(rates, key=lambda r: r or 0)
            excl = D(draw(st.integers(100, 6000))).scaleb(-2)
            incl = excl if rate is None else half_up(excl * (1 + rate / 100))
            fields[key] = {"excl_vat": str(excl), "incl_vat": str(incl)}
    if "min_price" in fields and "max_price" in fields:
        low, high = sorted([fields["min_price"], fields["max_price"]],
                           key=lambda p: D(p["excl_vat"]))
        fields["min_price"], fields["max_price"] = low, high
    return tariff(element(*components), **fields)


@st.composite
def cases(draw: st.DrawFn) -> tuple[Tariff, ReceiptFacts, SessionInput]:
    t = draw(tariffs())
    start = datetime(2025, 3, 1, 15, 0, tzinfo=UTC) + timedelta(
        seconds=draw(st.integers(0, 86400 * 200)), microseconds=draw(st.integers(0, 999999))
    )
    charge_us = draw(st.integers(1_000_000, 7200_000_000))
    idle_us = draw(st.integers(0, 3600_000_000))
    energy_wh = draw(st.integers(0, 150_000))
    charged_at = start + timedelta(microseconds=charge_us)
    stop = charged_at + timedelta(microseconds=idle_us)
    power = D(energy_wh) * 3600 / (D(charge_us) / 1_000_000) if energy_wh else D(0)
    samples = (
        Sample.of(start, 0, power.quantize(D(1))),
        Sample.of(charged_at, energy_wh, 0),
    )
    meter_start = draw(st.integers(0, 10**9))
    authorised = (
        D(draw(st.integers(100, 10000))).scaleb(-2) if draw(st.booleans()) else None
    )
    facts = ReceiptFacts(
        session_id="S-1", operator="EVTerm Charging GmbH", station_id="DE*EVT*E0001*1",
        timezone=draw(st.sampled_from(["Europe/Berlin", "UTC", "Europe/Paris"])),
        started_at=start, stopped_at=stop, meter_serial="DCM1-1",
        meter_start_wh=D(meter_start), meter_stop_wh=D(meter_start + energy_wh),
        stop_reason="Local", payment_method="card", card_scheme="Visa", card_last4="0119",
        payment_reference="PSP-1", authorised_amount=authorised,
    )
    return t, facts, SessionInput(start, stop, samples, D(0))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases(), st.integers(0, 100))
def test_every_printed_figure_recomputes_from_the_printed_figures(
    case: tuple[Tariff, ReceiptFacts, SessionInput], refund_percent: int
) -> None:
    check_receipt(*case, refund_percent, record=True)


def check_receipt(t: Tariff, facts: ReceiptFacts, session: SessionInput,
                  refund_percent: int = 0, *, record: bool = False) -> None:
    """The receipt of `session` rendered in every language reads back to its own figures."""
    result = price_session(t, session, facts.timezone)
    receipt = build_receipt(facts, t, result)
    if refund_percent and receipt.amount_charged > 0:
        refund = half_up(receipt.amount_charged * refund_percent / 100)
        if refund > 0:
            at = facts.stopped_at + timedelta(days=1)
            facts = ReceiptFacts(**{**facts.__dict__, "refunds": (RefundLine("R-1", refund, at),)})
            receipt = build_receipt(facts, t, result)
    if record:  # hypothesis statistics, inside a property test only
        event(f"VAT groups: {len(receipt.vat_rates) + (receipt.amounts.no_vat is not None)}")
        event(f"adjustment: {receipt.adjustment_reason}")
        event(f"capped: {receipt.charge_capped}, refunded: {bool(receipt.amount_refunded)}")
    for language in LANGUAGES:
        text = render_text(receipt, language)
        assert all(len(line) <= WIDTH for line in text.splitlines()), text
        figures = read_back(text, language)
        check_json(receipt, figures)


def test_a_rounding_row_never_takes_a_vat_group_below_zero() -> None:
    """Found by the property test: three rates, the idle line prices to 0.00 at the
    highest rate and the rounding row is negative; it used to fall on that empty group
    and the receipt could not be built."""
    t = tariff(element(comp("TIME", "0.0420", vat=20), comp("PARKING_TIME", "0.0001", vat=21),
                       comp("FLAT", "0.01", vat=19)))
    start = datetime(2025, 3, 1, 15, 0, tzinfo=UTC)
    stop = start + timedelta(minutes=15, seconds=35, microseconds=711886)
    facts = ReceiptFacts(
        session_id="S-1", operator="EVTerm Charging GmbH", station_id="DE*EVT*E0001*1",
        timezone="Europe/Berlin", started_at=start, stopped_at=stop, meter_serial="DCM1-1",
        meter_start_wh=Decimal(0), meter_stop_wh=Decimal(1), stop_reason="Local",
        payment_method="card", card_scheme="Visa", card_last4="0119",
        payment_reference="PSP-1", authorised_amount=None)
    session = SessionInput(start=start, stop=stop, samples=(
        Sample(start, Decimal(0), Decimal(4), Decimal(0)),
        Sample(stop - timedelta(microseconds=1), Decimal(1), Decimal(0), Decimal(0))),
        charging_threshold_w=Decimal(0))
    check_receipt(t, facts, session)


# The examples of the issue ---------------------------------------------------------------------


def test_duration_is_the_difference_of_the_printed_times() -> None:
    # 16:46:23.4 to 16:56:27.9 is printed as 16:46:23 and 16:56:27: 0:10:04, not the
    # 604.5 s of the exact difference rounded (0:10:05).
    start = datetime(2025, 3, 1, 15, 46, 23, 400000, tzinfo=UTC)
    stop = datetime(2025, 3, 1, 15, 56, 27, 900000, tzinfo=UTC)
    t = tariff(element(comp("ENERGY", "0.50", 19)))
    samples = (Sample.of(start, 0, 30000), Sample.of(stop, 5000, 0))
    result = price_session(t, SessionInput(start, stop, samples, D(0)), "Europe/Berlin")
    receipt = build_receipt(
        ReceiptFacts(
            session_id="S-1", operator="EVTerm Charging GmbH", station_id="DE*EVT*E0001*1",
            timezone="Europe/Berlin", started_at=start, stopped_at=stop, meter_serial=None,
            meter_start_wh=D(0), meter_stop_wh=D(5000), stop_reason="Local",
            payment_method="rfid",
        ),
        t,
        result,
    )
    lines = receipt.to_text().splitlines()
    assert "Start           2025-03-01 16:46:23 +01:00" in lines
    assert "Stop            2025-03-01 16:56:27 +01:00" in lines
    assert "Duration                           0:10:04" in lines
    assert receipt.to_json()["duration_s"] == "604"


def test_vat_row_is_the_vat_contained_in_the_gross_amount() -> None:
    # 0.59 EUR/kWh incl. 19 % VAT on the price list; 13.475 kWh cost 7.95 EUR gross.
    # The VAT in it is 7.95 x 19 / 119 = 1.2693 -> 1.27 and the net 6.68; never
    # "VAT 19% of 7.95" with an amount that is not 19 % of 7.95.
    t = tariff(element(comp("ENERGY", "0.4958", 19)))
    start = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    stop = start + timedelta(minutes=10)
    samples = (Sample.of(start, 0, 80000), Sample.of(stop, 13475, 0))
    result = price_session(t, SessionInput(start, stop, samples, D(0)), "UTC")
    receipt = build_receipt(
        ReceiptFacts(
            session_id="S-1", operator="EVTerm Charging GmbH", station_id="DE*EVT*E0001*1",
            timezone="UTC", started_at=start, stopped_at=stop, meter_serial=None,
            meter_start_wh=D(0), meter_stop_wh=D(13475), stop_reason="Local",
            payment_method="rfid",
        ),
        t,
        result,
        "de",
    )
    lines = receipt.to_text().splitlines()
    assert "  13,475 kWh x 0,59 EUR/kWh       7,95 EUR" in lines
    assert "Gesamt inkl. MwSt.                7,95 EUR" in lines
    assert "inkl. 19 % MwSt. 1,27 EUR von 7,95 EUR" in lines
    assert "Netto (19 % MwSt.)                6,68 EUR" in lines
    for language in LANGUAGES:
        read_back(render_text(receipt, language), language)
