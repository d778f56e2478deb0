"""The touchscreen app under Xvfb against the whole terminal (hw_mocks/demo_stack.py: real
mosquitto, pcscd + vpcd with cards tapped by `evterm sim tap`, the backend simulator,
the station simulator and the daemon). Each test walks part of the demo's scenario
(hw_mocks/demo_scenario.py), photographs each screen in en/de/fr/nl at 800x480 and
asserts on what the widgets show: the same prices, energies, amounts and receipt lines
the daemon computed, in the language's format."""

from __future__ import annotations

import re
import struct
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

from hw_mocks.demo_scenario import LANGUAGES
from terminal.kernel.driver_texts import driver_message
from ui.i18n import tr
from ui.view import keep_units

DECIMAL_SEP = {"en": ".", "de": ",", "fr": ",", "nl": ","}


def png_facts(path: str | Path) -> tuple[int, int, int]:
    """(width, height, distinct byte values in the pixel data) of a PNG."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def number_in(text: str, language: str) -> Decimal:
    """The first number in a text shown in `language` ('12,346 kWh' -> 12.346)."""
    sep = DECIMAL_SEP[language]
    match = re.search(r"\d[\d.,\u202f\u00a0 ]*", text)
    assert match, f"no number in {text!r}"
    digits = match.group(0).strip().rstrip(".,")
    group = {".": ",", ",": "."}[sep]
    digits = digits.replace(group, "").replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    return Decimal(digits.replace(sep, "."))


def assert_photographed(dumps: dict[str, dict[str, Any]], size: tuple[int, int] = (800, 480)
                        ) -> None:
    assert set(dumps) == set(LANGUAGES)
    for language, dump in dumps.items():
        width, height, variety = png_facts(dump["file"])
        assert (width, height) == size, dump["file"]
        assert variety > 8, f"{dump['file']} looks blank"
        assert dump["language"] == language
        assert all(isinstance(text, str) for text in dump["widgets"].values())


def test_idle_screen_shows_every_price_and_the_ways_to_pay_in_four_languages(scenario):
    dumps = scenario.idle()
    assert_photographed(dumps)
    state = scenario.stack.rig.state()
    for language, dump in dumps.items():
        widgets = dump["widgets"]
        assert dump["screen"] == "idle"
        assert state["station_id"] in widgets["station"]
        assert widgets["operator"] == state["operator"]
        assert "+49 30 1234 5678" in widgets["support"]
        assert widgets["badge_offline"] == ""
        # the full price list, as the daemon words it for this language (a no-break
        # space between a number and its unit: issue 15)
        prices = state["price_list"]["texts"][language]
        assert dump["price_lines"] == [keep_units(line) for line in prices]
        assert widgets["price_headline"] == keep_units(prices[0])
        assert f"0{DECIMAL_SEP[language]}59" in widgets["price_headline"]
        assert any(f"0{DECIMAL_SEP[language]}10" in line for line in dump["price_lines"])
        assert widgets["pay_ways"] and widgets["app_hint"]
        assert dump["qr"] == state["app_start"]["url"]
        assert state["app_start"]["code"] in dump["qr"]
    texts = {lang: dumps[lang]["widgets"]["pay_ways"] for lang in LANGUAGES}
    assert len(set(texts.values())) == 4, texts  # really translated
    for language in LANGUAGES:
        assert f"lang_{language}" in dumps["en"]["buttons"]


def test_charge_card_session_from_approval_to_receipt(scenario):
    seen = scenario.rfid_session()
    session_id = seen["tap"]["session_id"]
    for step in ("approved", "charging", "finishing", "receipt"):
        assert_photographed(seen[step])
    for language, dump in seen["charging"].items():
        widgets = dump["widgets"]
        energy = number_in(widgets["energy"], language)
        assert widgets["energy"].endswith("kWh")
        assert re.search(r"\d[.,]\d{3} kWh$", widgets["energy"]), widgets["energy"]
        assert energy >= Decimal("2.000")
        assert "kW" in widgets["power"] and number_in(widgets["power"], language) > 0
        assert re.fullmatch(r"\d+:\d\d:\d\d", widgets["elapsed"]), widgets["elapsed"]
        assert "EUR" in widgets["cost"] or "€" in widgets["cost"]
        # cost matches the energy at 0.59 EUR/kWh (incl. VAT) within a poll's change
        cost = number_in(widgets["cost"], language)
        assert abs(cost - energy * Decimal("0.59")) < Decimal("1.00"), (cost, energy)
        assert "stop" in dump["buttons"]
        assert widgets["stop_hint"]
    finishing = seen["finishing"]["en"]["widgets"]
    assert finishing["unplug"] and finishing["idle_fee"]
    accruing = seen["idle_fee"]["en"]["widgets"]["idle_fee"]
    # "Charging X EUR + idle fee so far Y EUR": the cost shown is the sum of the two
    charging_part, _, idle_part = accruing.partition(" + idle fee so far ")
    assert number_in(idle_part, "en") > 0, accruing
    shown = number_in(seen["idle_fee"]["en"]["widgets"]["finish_cost"], "en")
    assert shown == number_in(charging_part, "en") + number_in(idle_part, "en"), accruing
    rig = scenario.stack.rig
    for language, dump in seen["receipt"].items():
        text = rig.api("receipt", session_id=session_id, language=language)["text"]
        lines = [line for line in text.splitlines()]
        assert [line.rstrip() for line in dump["receipt_lines"]] == \
            [line.rstrip() for line in lines]
        assert dump["qr"] == f"https://pay.evterm.example/receipt/{session_id}"
        assert "ack" in dump["buttons"]
        # issue 15: total, energy and payment in large type, as on the receipt
        widgets = dump["widgets"]
        shown = [line for line in lines if widgets["receipt_energy"] in line]
        assert shown, (widgets["receipt_energy"], lines)
        assert any(widgets["receipt_total"] in line for line in lines), widgets
        assert widgets["receipt_payment"] and widgets["receipt_fault"] == ""
    assert scenario.ui.dump()["screen"] == "idle"  # the driver pressed Done


def test_a_session_on_the_signing_meter_has_its_ocmf_data_on_the_receipt(scenario):
    """The demo's default meter, the LEM DCBM: the receipt on the screen carries the
    meter's signed end document (both readings) and its public key, the same text the
    daemon journaled; the idle fee, bounded by the meter's signed end at the unplug, is
    billed."""
    from terminal.store import Store

    assert scenario.signing_meter and scenario.stack.meter_model == "lem_dcbm400600"
    seen = scenario.rfid_session()
    assert seen["idle_fee"]  # accrued and shown while parked
    session_id = seen["tap"]["session_id"]
    store = Store.open(scenario.stack.rig.database, create=False)
    try:
        signed = store.signed_values(session_id)
        receipt_json, _ = store.receipt(session_id)
    finally:
        store.close()
    assert [r["kind"] for r in signed] == ["begin", "end"] and not signed[1]["problems"]
    block = receipt_json["signed_meter"]
    assert block["billable_by_energy"] and block["qr"].startswith(signed[1]["ocmf"] + "|")
    assert "PARKING_TIME" in {c["dimension"] for c in receipt_json["charges"]}
    for language, dump in seen["receipt"].items():
        # wrapped over the receipt's lines, a space of the document possibly at a break
        shown = "".join("".join(dump["receipt_lines"]).split())
        assert "".join(signed[1]["ocmf"].split()) in shown, language
        assert signed[1]["public_key"] in shown, language


def test_bank_card_session_shows_the_cap_and_stops_from_the_screen(scenario):
    seen = scenario.card_session()
    session_id = seen["tap"]["session_id"]
    for language, dump in seen["approved"].items():
        shown = " ".join(dump["widgets"].values())
        assert f"50{DECIMAL_SEP[language]}00" in shown, shown
    for language, dump in seen["charging"].items():
        assert f"50{DECIMAL_SEP[language]}00" in dump["widgets"]["cap"]
        assert 0 < dump["progress"] < 1
    store_state = scenario.stack.rig.api("sessions", limit=5)["sessions"]
    closed = next(s for s in store_state if s["id"] == session_id)
    assert closed["stop_reason"] == "Local"  # the Stop button on the screen
    receipt = seen["receipt"]["de"]
    assert any("Bezahlt" in line or "Summe" in line or "Gesamt" in line
               for line in receipt["receipt_lines"]), receipt["receipt_lines"]
    assert any("1111" in line for line in receipt["receipt_lines"])  # last 4 digits only
    assert not any("4111111111111111" in line for line in receipt["receipt_lines"])
    # the demo's signing meter: the receipt's signed meter data page, its QR code the
    # receipt's transparency text unchanged, in every language
    from terminal.store import Store

    store = Store.open(scenario.stack.rig.database, create=False)
    try:
        block = store.receipt(session_id)[0]["signed_meter"]
    finally:
        store.close()
    assert_photographed(seen["signed_data"])
    for language, dump in seen["signed_data"].items():
        assert dump["qr"] == block["qr"], language
        assert number_in(dump["widgets"]["sd_end"].split(":")[-1], language) == \
            Decimal(block["end_wh"]) / 1000


def test_the_signing_meters_info_page_shows_its_serial_and_key(scenario):
    seen = scenario.meter_info()
    assert_photographed(seen)
    metering = scenario.stack.rig.state()["metering"]
    for language, dump in seen.items():
        assert "".join(dump["widgets"]["mi_key"].split()) == metering["public_key"], language
        assert metering["meter_serial"] in dump["widgets"]["mi_meter"]
    assert scenario.ui.dump()["screen"] == "idle"


def test_declined_card_says_why_in_the_drivers_language(scenario):
    seen = scenario.declined_card()
    assert seen["tap"]["result"] == "declined"
    reason = seen["tap"]["reason"]
    assert_photographed(seen["declined"])
    for language, dump in seen["declined"].items():
        shown = " ".join(dump["widgets"].values())
        assert driver_message(reason, language) in shown, (language, shown)
        # issue 15: and what to do next (the demo offers app start)
        assert dump["widgets"]["auth_cap"] == tr("auth_next_card_or_app", language)


def test_offline_badge_and_only_charge_cards_while_the_network_is_down(scenario):
    seen = scenario.offline_period()
    for language, dump in seen["idle"].items():
        assert dump["widgets"]["badge_offline"], language
    assert seen["refused_tap"]["result"] == "declined"
    for language, dump in seen["refused"].items():
        shown = " ".join(dump["widgets"].values())
        assert driver_message("offline_payment", language) in shown, shown
    assert seen["tap"]["result"] == "accepted"
    assert seen["tap"]["decided_by"] in ("local_list", "cache"), seen["tap"]  # not online
    assert seen["charging"]["en"]["widgets"]["badge_offline"]
    assert scenario.ui.dump()["widgets"]["badge_offline"] == ""  # back online
    scenario.stack.wait_delivered()


def test_app_start_with_the_screens_qr_code_and_a_new_code_after(scenario):
    seen = scenario.app_session()
    assert seen["answer"]["ok"] is True
    assert seen["qr_before"] and seen["qr_after"] and seen["qr_before"] != seen["qr_after"]
    # the old code cannot start another session
    stale = scenario.stack.backend.admin(
        "command", station_id="DE*EVT*E0001*1", name="remote_start",
        body={"id_token": "APP-USER-42", "start_code": seen["qr_before"].rsplit("/", 1)[1]}
    )["answer"]
    assert (stale["ok"], stale["field"]) == (False, "start_code"), stale
    receipt = seen["receipt"]["en"]["receipt_lines"]
    assert any(line.startswith("Payment") and line.rstrip().endswith("App") for line in receipt)


def test_problem_report_and_the_ui_survives_a_daemon_restart(scenario):
    report = scenario.report_problem()
    assert_photographed(report["panel"])
    reference = int(re.search(r"\d+", report["result"]["widgets"]["report_result"]).group(0))
    audit = scenario.stack.rig.api("sessions", limit=1)  # the daemon still answers
    assert audit["ok"] and reference > 0
    restart = scenario.daemon_restart()
    assert restart["away"]["widgets"]["reconnect_title"]
    assert restart["away"]["buttons"] == []  # nothing to press while the daemon is away
    assert restart["back"]["screen"] == "idle"
    assert restart["back"]["price_lines"]


def test_meter_fault_mid_session_and_a_charger_fault_between_sessions(scenario):
    seen = scenario.faults()
    assert_photographed(seen["error"])
    assert_photographed(seen["out_of_order"])
    for language, dump in seen["error"].items():
        assert dump["widgets"]["error_title"] and dump["widgets"]["error_detail"], language
    assert "meter" in seen["error"]["en"]["widgets"]["error_detail"]
    assert "zähler" in seen["error"]["de"]["widgets"]["error_detail"]
    receipt = seen["receipt"]["en"]["receipt_lines"]
    assert any("Energy delivered" in line for line in receipt), receipt
    for language, dump in seen["out_of_order"].items():
        assert dump["widgets"]["oos_title"] and dump["widgets"]["oos_detail"], language
    assert "power unit" in seen["out_of_order"]["en"]["widgets"]["oos_detail"]
