"""`evterm ocmf verify` as its own process on documents of the OCMF meter core: good
ones pass (exit 0), a tampered value or a wrong key fails (exit 1), unreadable input
is named (exit 2, no traceback); OCMF lines, XML, QR text, e-receipt JSON, stdin."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from terminal.signed.transparency import qr_text, transparency_xml
from tests.unit.signed.ocmf_helpers import World, make_sim, session

REPO = Path(__file__).resolve().parents[2]


def verify(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "terminal.cli", "ocmf", "verify", *args],
                          capture_output=True, text=True, timeout=60, cwd=REPO, env=env,
                          input=stdin)
    assert "Traceback" not in done.stderr + done.stdout
    return done


@pytest.fixture(scope="module")
def docs() -> dict[str, str]:
    world = World()
    sim = make_sim(world)
    begin, end = session(sim, world, energy_wh="20000.44")
    other = make_sim(world)
    return {"begin": begin, "end": end, "key": sim.public_key_hex,
            "other_key": other.public_key_hex}


def tamper_end_value(end: str) -> str:
    head, payload, signature = end.split("|")
    return "|".join([head, payload.replace('"RV":1254.568', '"RV":1264.568'), signature])


def test_good_pair_in_a_text_file(tmp_path: Path, docs: dict[str, str]) -> None:
    path = tmp_path / "docs.txt"
    path.write_text(f"{docs['begin']}\n\n{docs['end']}\n", encoding="utf-8")
    done = verify(str(path), "--public-key", docs["key"])
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "line 1: meter LEM-0042, pagination T1" in out
    assert "reading B: 1234.567 kWh at 2026-03-01T12:00:00,250+0000, clock S " \
           "(synchronised)" in out
    assert "reading E: 1254.568 kWh at 2026-03-01T12:20:00,250+0000" in out
    assert out.count("signature: valid") == 2
    assert "transaction (line 1 + line 3): Eichrecht ok, energy 20.001 kWh" in out
    assert out.rstrip().endswith("all checks passed")


def test_one_ocmf_string_as_argument_json(docs: dict[str, str]) -> None:
    done = verify(docs["end"], "--public-key", docs["key"], "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert result["ok"] is True
    (doc,) = result["documents"]
    assert doc["meter_serial"] == "LEM-0042" and doc["signature"] == "valid"
    assert [r["tx"] for r in doc["readings"]] == ["B", "E"]
    assert [r["clock"] for r in doc["readings"]] == ["S", "S"]
    (tx,) = result["transactions"]
    assert tx["eichrecht_errors"] == [] and tx["energy"] == "20.001 kWh"


def test_tampered_value_fails(docs: dict[str, str]) -> None:
    done = verify(tamper_end_value(docs["end"]), "--public-key", docs["key"])
    assert done.returncode == 1
    assert "signature: invalid" in done.stdout
    assert "problem: signature does not verify with the meter's public key" in done.stdout
    assert "a check FAILED" in done.stdout


def test_another_meters_key_fails(docs: dict[str, str]) -> None:
    done = verify(docs["end"], "--public-key", docs["other_key"], "--json")
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["ok"] is False
    assert result["documents"][0]["signature"] == "invalid"


def test_no_key_is_not_a_pass(docs: dict[str, str]) -> None:
    done = verify(docs["end"])
    assert done.returncode == 1
    assert "problem: no public key: pass --public-key HEX" in done.stdout


def test_xml_file_with_its_keys(tmp_path: Path, docs: dict[str, str]) -> None:
    path = tmp_path / "transaction.xml"
    path.write_text(transparency_xml([docs["begin"], docs["end"]], docs["key"]),
                    encoding="utf-8")
    done = verify(str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "transaction (XML value 1 + XML value 2): Eichrecht ok" in done.stdout
    # the key given on the command line wins over the file's, and is named
    done = verify(str(path), "--public-key", docs["other_key"])
    assert done.returncode == 1
    assert "note: the key given differs from the key found with the document" in done.stdout


def test_qr_text_with_the_key_appended(docs: dict[str, str]) -> None:
    done = verify(qr_text(docs["end"], docs["key"]))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "signature: valid" in done.stdout
    assert "transaction (line 1): Eichrecht ok, energy 20.001 kWh" in done.stdout
    forged = qr_text(tamper_end_value(docs["end"]), docs["key"])
    assert verify(forged).returncode == 1


def test_e_receipt_json_from_stdin(docs: dict[str, str]) -> None:
    receipt = {"session_id": "S-1", "total": "7.80",
               "signed": {"ocmf_begin": docs["begin"], "ocmf_end": docs["end"],
                          "public_key": docs["key"]}}
    done = verify("-", stdin=json.dumps(receipt))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "transaction (JSON ocmf_begin + JSON ocmf_end): Eichrecht ok" in done.stdout


def test_error_flag_fails_the_eichrecht_check() -> None:
    world = World()
    sim = make_sim(world)
    sim.set_fault("error_flag", True)
    _, end = session(sim, world)
    done = verify(end, "--public-key", sim.public_key_hex)
    assert done.returncode == 1
    assert "problem: error flag E (energy) set" in done.stdout
    assert "Eichrecht FAILED" in done.stdout and "ERROR_FLAGS" in done.stdout


@pytest.mark.parametrize(
    ("make_input", "message"),
    [
        (lambda tmp: str(tmp / "missing.xml"),
         "missing.xml: no such file, and not an OCMF text"),
        (lambda tmp: "OCMF|{not json|{}", "line 1: unreadable: Invalid payload JSON"),
        (lambda tmp: 'OCMF|{"RD":5}|{"SD":"00"}', "line 1: unreadable: payload of an "
         "unexpected shape"),
        (lambda tmp: _write(tmp / "e.txt", ""), "e.txt is empty"),
        (lambda tmp: _write(tmp / "x.txt", "hello\n"), "line 1: not an OCMF document"),
        (lambda tmp: _write(tmp / "b.xml", "<values><value>"), "not well-formed XML"),
        (lambda tmp: _write(tmp / "r.json", '{"total": "7.80"}'),
         "no OCMF document found in"),
        (lambda tmp: _write(tmp / "bin", b"\xff\xfe\x00"), "bin: not UTF-8 text"),
        (lambda tmp: str(tmp), "not a file"),
    ],
    ids=["missing-file", "bad-json-payload", "odd-payload", "empty", "not-ocmf", "bad-xml",
         "json-without-ocmf", "binary", "directory"],
)
def test_unreadable_input_exits_2(tmp_path: Path, make_input, message: str) -> None:
    done = verify(make_input(tmp_path))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr
    assert done.stderr.startswith("evterm ocmf verify: ")


def test_bad_public_key_exits_2(docs: dict[str, str]) -> None:
    done = verify(docs["end"], "--public-key", "zz-not-a-key")
    assert done.returncode == 2
    assert "--public-key is not an EC public key" in done.stderr


def _write(path: Path, content: str | bytes) -> str:
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)
