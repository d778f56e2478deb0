"""`evterm card read` as its own process against a private pcscd, cards tapped by
`evterm sim tap`; and the pure parts of terminal/card_cli.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from drivers.readers.emv import EmvRead, TerminalParams
from drivers.readers.events import EmvTap, RfidTap, TapFailed
from drivers.readers.pcsc import terminal_params
from hw_mocks.cards import RFID_UIDS, TEST_PANS
from hw_mocks.pcscd import PcscdHandle
from terminal.card_cli import describe, expiry_ok
from terminal.kernel.cards import CardData, mask_pan
from terminal.payment.crypto import TokenKey, tokenize
from tests.integration.conftest import TapProcess

ROOT = Path(__file__).resolve().parents[2]
TARIFF = ROOT / "examples" / "tariffs" / "de_dc_hpc_demo.json"
KEY_HEX = "00112233445566778899aabbccddeeff" * 2
Tap = Callable[..., TapProcess]


def write_config(folder: Path, *, socket_path: str = "", key_id: str = "",
                 pcsc_readers: str = "", accepted_schemes: str = "") -> str:
    lines = ["[station]", 'id = "DE*EVT*E0001*1"', 'operator = "test operator"',
             "[session]", f'tariff_file = "{TARIFF}"',
             "[readers]", f'pcsc_socket = "{socket_path}"', f'pcsc_readers = "{pcsc_readers}"',
             "[payment]", 'country_code = "276"', 'preauth_amount = "50.00"']
    if accepted_schemes:
        lines.append(f'accepted_schemes = "{accepted_schemes}"')
    if key_id:
        key_file = folder / "token.key"
        key_file.write_text(KEY_HEX + "\n")
        lines += [f'token_key_file = "{key_file}"', f'token_key_id = "{key_id}"']
    path = folder / "evterm.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def card_read(*args: str, env: dict[str, str] | None = None,
              timeout_s: float = 15.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "terminal.cli", "card", "read", *args],
        capture_output=True, text=True, timeout=timeout_s,
        env=env if env is not None else dict(os.environ),
    )


def read_with_tap(tap: Tap, card: str, *args: str, env: dict[str, str] | None = None,
                  **tap_options: object) -> subprocess.CompletedProcess[str]:
    """`evterm card read` started first, the card tapped while it waits."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "terminal.cli", "card", "read", "--timeout", "8", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=env if env is not None else dict(os.environ),
    )
    time.sleep(0.6)  # the reader is watched
    held = tap(card, **{"hold_s": 1.0, **tap_options})
    out, err = proc.communicate(timeout=15)
    held.wait_left()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def assert_no_pan(result: subprocess.CompletedProcess[str]) -> None:
    for pan in TEST_PANS.values():
        assert pan not in result.stdout and pan not in result.stderr


def one_json(result: subprocess.CompletedProcess[str]) -> dict:
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    return json.loads(lines[0])


def test_rfid_card_prints_uid(pcscd: PcscdHandle, tap: Tap) -> None:
    result = read_with_tap(tap, "rfid-7")
    assert result.returncode == 0, result.stderr
    assert one_json(result) == {"type": "rfid", "uid": RFID_UIDS["rfid-7"],
                                "reader": pcscd.reader_names[0]}


def test_payment_card_prints_token_never_pan(pcscd: PcscdHandle, tap: Tap,
                                             tmp_path: Path) -> None:
    config = write_config(tmp_path, key_id="k7")
    result = read_with_tap(tap, "mastercard", "--config", config)
    assert result.returncode == 0, result.stderr
    data = one_json(result)
    pan = TEST_PANS["mastercard"]
    key = TokenKey("k7", bytes.fromhex(KEY_HEX))
    assert data == {
        "type": "emv",
        "token": tokenize(CardData(pan), key),
        "token_key_id": "k7",
        "masked_pan": mask_pan(pan),
        "scheme": "mastercard",
        "aid": "A0000000041010",
        "label": data["label"],
        "expiry_ok": True,
        "reader": pcscd.reader_names[0],
    }
    assert re.fullmatch(r"k7\.[0-9a-f]{40}", data["token"])
    assert_no_pan(result)


def test_payment_card_without_key_has_null_token(pcscd: PcscdHandle, tap: Tap,
                                                 tmp_path: Path) -> None:
    result = read_with_tap(tap, "visa-expired", "--config", write_config(tmp_path))
    assert result.returncode == 0, result.stderr
    data = one_json(result)
    assert (data["type"], data["token"], data["token_key_id"]) == ("emv", None, None)
    assert data["masked_pan"] == mask_pan(TEST_PANS["visa-expired"])
    assert data["expiry_ok"] is False
    assert_no_pan(result)


def test_config_socket_and_reader_filter(pcscd: PcscdHandle, tap: Tap,
                                         tmp_path: Path) -> None:
    """[readers] pcsc_socket reaches pcscd without the environment variable;
    pcsc_readers picks the second slot."""
    env = {k: v for k, v in os.environ.items() if k != "PCSCLITE_CSOCK_NAME"}
    config = write_config(tmp_path, socket_path=pcscd.socket_path,
                          pcsc_readers=pcscd.reader_names[1][-5:])
    result = read_with_tap(tap, "rfid-4", "--config", config, env=env, reader=1)
    assert result.returncode == 0, result.stderr
    assert one_json(result)["reader"] == pcscd.reader_names[1]


def test_unreadable_card_exit_1(pcscd: PcscdHandle, tap: Tap) -> None:
    result = read_with_tap(tap, "broken-tlv")
    assert result.returncode == 1, result.stderr
    assert one_json(result) == {"error": "card could not be read", "code": "unreadable",
                                "tap_again": True, "reader": pcscd.reader_names[0]}
    assert_no_pan(result)


def test_amex_is_masked_to_first_six_and_last_four(pcscd: PcscdHandle, tap: Tap) -> None:
    result = read_with_tap(tap, "amex")
    assert result.returncode == 0, result.stderr
    data = one_json(result)
    assert (data["scheme"], data["masked_pan"]) == ("amex", "378282*****0005")
    assert_no_pan(result)


def test_girocard_reads_when_accepted_and_is_refused_by_default(
        pcscd: PcscdHandle, tap: Tap, tmp_path: Path) -> None:
    config = write_config(tmp_path, accepted_schemes="girocard, maestro")
    result = read_with_tap(tap, "girocard", "--config", config)
    assert result.returncode == 0, result.stderr
    data = one_json(result)
    assert (data["scheme"], data["aid"], data["masked_pan"]) == (
        "girocard", "A0000003591010028001", "400000******0016")
    assert_no_pan(result)
    time.sleep(0.5)
    refused = read_with_tap(tap, "girocard")  # the built-in default: girocard not accepted
    assert refused.returncode == 1, refused.stderr
    assert one_json(refused) == {"error": "payment card of a scheme not accepted here",
                                 "code": "not_accepted", "tap_again": False,
                                 "reader": pcscd.reader_names[0]}
    assert_no_pan(refused)


def test_phone_asking_for_confirmation_says_see_phone(pcscd: PcscdHandle, tap: Tap) -> None:
    result = read_with_tap(tap, "phone-6986")
    assert result.returncode == 1, result.stderr
    assert one_json(result) == {"error": "see phone for instructions - tap again",
                                "code": "see_phone", "tap_again": True,
                                "reader": pcscd.reader_names[0]}
    assert_no_pan(result)


def test_card_removed_exit_1(pcscd: PcscdHandle, tap: Tap) -> None:
    result = read_with_tap(tap, "visa", remove_after_apdus=2, hold_s=3.0)
    assert result.returncode == 1, result.stderr
    assert one_json(result)["error"] == "card removed too early - tap again"


def test_no_card_exit_2(pcscd: PcscdHandle) -> None:
    result = card_read("--timeout", "1")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == ["evterm card read: no card within 1 s"]


def test_no_matching_reader_exit_2(pcscd: PcscdHandle) -> None:
    result = card_read("--timeout", "5", "--reader", "no such reader")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "evterm card read: no PC/SC reader matching 'no such reader' found"]


def test_no_pcscd_exit_2(tmp_path: Path) -> None:
    missing = str(tmp_path / "pcscd.comm")
    result = card_read("--timeout", "5", env={**os.environ, "PCSCLITE_CSOCK_NAME": missing})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"evterm card read: no PC/SC service: pcscd not reachable at {missing}"), lines


def test_bad_config_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[payment]\ncountry_code = "DE"\n')
    result = card_read("--config", str(config))
    assert result.returncode == 2
    assert "country_code" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_terminal_params_from_currency() -> None:
    assert terminal_params("276", "EUR", Decimal("50.00")) == TerminalParams("276", "978", 5000)
    assert terminal_params("826", "GBP", Decimal("20")) == TerminalParams("826", "826", 2000)
    assert terminal_params("756", "CHF", Decimal("0.5")).currency_code == "756"
    assert terminal_params("276", "EUR", Decimal("1"), ("girocard",)).accepted_schemes == (
        "girocard",)
    with pytest.raises(ValueError, match="XAU"):
        terminal_params("276", "XAU", Decimal("1"))


def test_expiry_and_describe() -> None:
    today = date(2026, 11, 21)
    assert expiry_ok("2611", today) is True
    assert expiry_ok("2610", today) is False
    assert expiry_ok("3001", today) is True
    assert expiry_ok(None, today) is None
    pan = TEST_PANS["visa"]
    read = EmvRead(CardData(pan, "2812"), "A0000000031010", "visa", "VISA CREDIT")
    data, code = describe(EmvTap("r", read), None, today)
    assert code == 0 and pan not in json.dumps(data)
    assert data["masked_pan"] == mask_pan(pan) and data["token"] is None
    assert describe(RfidTap("r", "1A2B3C4D"), None, today) == (
        {"type": "rfid", "uid": "1A2B3C4D", "reader": "r"}, 0)
    assert describe(TapFailed("r", "card could not be read", False), None, today) == (
        {"error": "card could not be read", "code": "unreadable", "tap_again": False,
         "reader": "r"}, 1)
