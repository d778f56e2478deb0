"""`evterm config check` as its own process, for the files that once ended in a traceback:
each exits 2 with one problem naming the key (or the file), and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BASE = b'[station]\nid = "DE*EVT*E0001*1"\noperator = "ACME"\n'


def config_check(path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "terminal.cli", "config", "check", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO, env=env)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (BASE + b'[meter]\nexpected_serial = "\xff\xfe"\n',
         "not UTF-8 text: byte 0xff at line 5 (save the file as UTF-8)"),
        (BASE + b'[meter]\nmodel = "' + b"m" * 300 + b'"\n',
         "meter.model = 'mmmm"),
        (BASE + b'[meter]\nmodel = "/proc/self/mem"\n',
         "meter.model = '/proc/self/mem': the name of a shipped model"),
        (BASE + b'[meter]\nurl = "tcp://[::1:5020"\n',
         "meter.url = 'tcp://[::1:5020': bad meter URL"),
        (BASE + b'[backend]\nkey_file = "/etc/' + b"k" * 300 + b'.key"\n',
         "backend.key_file = '/etc/kkkk"),
        (BASE + b'[charger]\nurl = "modbus://io"\n',
         "charger.url = 'modbus://io': unsupported charger URL"),
    ],
    ids=["non-utf8", "model-300-chars", "model-proc-self-mem", "url-unclosed-ipv6",
         "key-file-too-long", "charger-url"],
)
def test_config_check_process_exits_2_naming_the_key(tmp_path, content, problem):
    path = tmp_path / "evterm.toml"
    path.write_bytes(content)
    done = config_check(path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == f"invalid configuration {path}:"
    assert len(lines) == 2 and lines[1].startswith(f"  - {problem}"), done.stderr
    assert "unsupported meter URL" not in done.stderr


def test_config_check_process_warns_about_mqtt_without_tls_and_exits_0(tmp_path):
    path = tmp_path / "evterm.toml"
    tariff = REPO / "examples" / "tariffs" / "de_dc_hpc_demo.json"
    path.write_bytes(BASE + f'[session]\ntariff_file = "{tariff}"\n'.encode()
                     + b'[backend]\nkind = "mqtt"\nmqtt_host = "broker.example.com"\n')
    done = config_check(path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{path}: configuration valid\n"
    assert done.stderr.startswith("warning: backend.mqtt_tls = false: the link to the broker "
                                  "'broker.example.com' is not encrypted")
