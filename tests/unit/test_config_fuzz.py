"""Fuzz `evterm config check`: 5,000 mutated configurations, 0 tracebacks.

Starts from the shipped template (systemd/evterm.toml) and the examples, mutates values
(types, huge and negative numbers, inf/nan, long texts, control characters, paths such
as /proc/self/mem, odd URLs), removes and adds keys and sections, and breaks the file
itself (truncation, bytes that are not UTF-8, random bytes, deep nesting). Every file
goes through `check_file`, the function `evterm config check` runs, in-process. Each
must either pass (exit code 0) or fail with exit code 2 and problems that each name the
mutated key or its section (or the file, for a file that is not UTF-8 or not TOML).
Seeded and bounded: the same 5,000 files every run.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import os
import random
import re
import tomllib
import traceback
from pathlib import Path
from typing import Any

from terminal.config import Config, ConfigError, check_file, parse_config

REPO = Path(__file__).resolve().parents[2]
SEED = 16
VALUE_CASES = 4000
BYTE_CASES = 1000
TARIFF = str(REPO / "examples" / "tariffs" / "de_dc_hpc_demo.json")

SECTIONS = {f.name: f.type for f in dataclasses.fields(Config)}


def _keys() -> dict[str, list[str]]:
    from typing import get_type_hints

    hints = get_type_hints(Config)
    return {name: [f.name for f in dataclasses.fields(hints[name])] for name in SECTIONS}


KEYS = _keys()


def _base_configs() -> list[dict[str, Any]]:
    """The template and the examples, with every value that cannot pass on this machine
    (a file only the field has) dropped, so that a failure is the mutation's."""
    sources = [REPO / "systemd" / "evterm.toml", *sorted((REPO / "examples").glob("*.toml"))]
    bases = []
    for source in sources:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
        data.setdefault("session", {})["tariff_file"] = TARIFF
        for _ in range(5):
            try:
                parse_config(data, str(source))
                break
            except ConfigError as exc:
                for problem in exc.problems:
                    section, key = problem.split(" ")[0].rstrip(":").split(".", 1)
                    data[section].pop(key)
        parse_config(data, str(source))
        bases.append(data)
    return bases


def _special_paths(tmp: Path) -> list[str]:
    loop = tmp / "loop"
    if not loop.is_symlink():
        os.symlink(loop, loop)
    fifo = tmp / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    empty = tmp / "empty.pem"
    empty.write_bytes(b"")
    garbage = tmp / "garbage.pem"
    garbage.write_bytes(bytes(range(256)) * 8)
    deep = tmp / "deep.json"
    deep.write_bytes(b"[" * 100_000)
    big = tmp / "big.json"
    big.write_bytes(b'{"currency": "EUR", "elements": ' + b"9" * 5000 + b"}")
    huge = tmp / "huge.json"
    huge.write_bytes(b" " * (1 << 20) + b"{}")
    return [
        "/proc/self/mem", "/proc/self/environ", "/dev/zero", "/dev/null", "/dev/urandom",
        "/", "/etc", str(tmp), str(loop), str(fifo), str(empty), str(garbage), str(deep),
        str(big), str(huge),
        str(tmp / "absent"), "relative/file", "../../etc/passwd", "~/x", ".",
        "/" + "k" * 300, "/" + "k/" * 2100, "/tmp/" + "x" * 255, "/a\x00b", "/a\nb",
        TARIFF, str(REPO / "systemd" / "evterm.toml"), "/bin/sh",
    ]


URLS = [
    "tcp://[::1:5020", "tcp://[::1]:5020", "tcp://[::1]", "tcp://:502", "tcp://host:0",
    "tcp://host:65536", "tcp://host:-1", "tcp://host:", "tcp://host:abc", "tcp://",
    "tcp://h:502/x", "tcp://user:pw@h:1", "tcp://h:5020#frag", "tcp://h:5020?x=1",
    "tcp://[v1.fe]:1", "tcp://[fe80::1%eth0]:502", "tcp://ho st:1", "tcp://h\uff03x:1",
    "tcp://ｈｏｓｔ:502", "tcp://" + "a" * 300, "tcp://" + "a." * 200 + ":1",
    "tcp://10.0.0.5:5020", "tcp://meter.local", "rtu://", "rtu:///", "rtu://dev/ttyUSB0",
    "rtu:///dev/ttyUSB0?baud=abc", "rtu:///dev/ttyUSB0?baud=9600&baud=x",
    "rtu:///dev/ttyUSB0?baud=" + "9" * 5000, "rtu:///dev/ttyUSB0?parity=",
    "rtu:///dev/ttyUSB0?stopbits=3", "rtu:///dev/ttyUSB0?bytesize=9&x=1",
    "rtu:///dev/ttyUSB0?baud=9600&parity=e&stopbits=2", "rtu:///dev/ttyUSB0#x",
    "http://meter", "file:///etc/passwd", "", " ", "tcp://h:1\x00", "tcp://h:1\n",
    "tcp://\udcff:1", "rtu:///proc/self/mem", "//x", "tcp:x", "TCP://h:1",
]

TEXTS = [
    "", " ", "x", "a" * 300, "a" * 5000, "x" * 4096, "x" * 4097, "\x00", "a\tb", "line\nbreak",
    "\u200b", "\u2028", "é", "€", "日本", "\U0001f600", "{code}", "{", "}", "{0}", "{x!r}",
    "https://x/{station_id}/{code}", "https://x/{station_id:>999999999}",
    "https://x/{session_id:{station_id}}", "https://x/{station_id.__class__}",
    "https://x/{station_id[0]}", "ftp://x", "1e999999999", "-1", "0", "0.00", "NaN", "Infinity",
    "1e26", "50.00", "abc", "276", "27", "2760", "visa", "visa, diners", ",", "0660", "9999",
    "0o660", "DEBUG", "Europe/Berlin", "Mars/Olympus", "../../etc/passwd", "Europe",
    "zone.tab", "UTC", "eastron_sdm630", "acrel_djsf1352", "abb_b23", "EASTRON_SDM630",
    "eastron_sdm630.toml", "models/eastron_sdm630", "modbus_coil", "mqtt", "none", "loopback",
    "k1", "k" * 17, "127.0.0.1", "::1", "localhost", "broker.example.com", "-bad-", "a..b",
]

NUMBERS: list[Any] = [
    0, 1, -1, 2, 5, 60, 247, 248, 65535, 65536, 2**31, 2**63, -(2**63), 10**30, 10**400,
    -(10**400), 0.0, -0.0, 0.05, 0.5, 1.5, 1e308, -1e308, 5e-324, float("inf"),
    float("-inf"), float("nan"), True, False,
]

class Raw(str):
    """A TOML literal written as it is (what a Python value cannot say)."""


OTHERS: list[Any] = [
    Raw("9" * 5000), Raw("1" + "0" * 5000 + ".0"), Raw("0x" + "f" * 5000), Raw("-0o777"),
    Raw("1979-05-27T07:32:00Z"), Raw("'''multi\\nline'''"), Raw("'literal'"), Raw("1_000"),
    Raw("+inf"), Raw("-nan"), Raw("0b" + "1" * 300),
    [], [1, 2], ["a"], [[[]]], {}, {"a": 1}, {"nested": {"deep": [1]}},
    datetime.datetime(2026, 12, 2, 21, 0, tzinfo=datetime.UTC),
    datetime.date(9999, 12, 31), datetime.time(23, 59),
]


def _toml_value(value: Any) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON's escapes are TOML's
    if isinstance(value, datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(value)


def to_toml(data: dict[str, Any]) -> bytes:
    top = [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in data.items()
           if not isinstance(v, dict)]
    lines = [*top]
    for name, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{json.dumps(name)}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")


def _value(rng: random.Random, paths: list[str], key: str = "") -> Any:
    """Any value; for half of the files, one aimed at what the key is (paths for a file
    key, URLs for a URL key)."""
    if rng.random() < 0.5:
        if key.endswith(("_file", "_dir", "_root", "socket", "_path", "device", "model")):
            return rng.choice(paths)
        if key.endswith("url"):
            return rng.choice(URLS)
    pool = rng.choice((TEXTS, NUMBERS, URLS, paths, OTHERS))
    return rng.choice(pool)


def mutate_values(rng: random.Random, base: dict[str, Any], paths: list[str]
                  ) -> tuple[dict[str, Any], set[str]]:
    """A copy of `base` with 1 to 3 changes; the names (section.key or [section]) a
    failure may report."""
    data = json.loads(json.dumps(base))
    named: set[str] = set()
    for _ in range(rng.randint(1, 3)):
        section = rng.choice(list(SECTIONS))
        what = rng.random()
        named.add(f"[{section}]")
        if what < 0.04:
            data.pop(section, None)
            named |= {f"{section}.{key}" for key in KEYS[section]}
        elif what < 0.07:
            data[section] = rng.choice([1, "x", [1], True])
        elif what < 0.10:
            data[rng.choice(["metre", "Station", "x" * 300, "é", "a b"])] = {"k": 1}
            named.add("unknown section")
        else:
            table = data.setdefault(section, {})
            if not isinstance(table, dict):
                continue
            if what < 0.17:
                key = rng.choice(KEYS[section])
                table.pop(key, None)
            elif what < 0.22:
                key = rng.choice(["typo", "poll_interval", "x" * 300, "a b", "é", "1"])
                table[key] = _value(rng, paths)
                named.add(f"{section}.")  # a long or odd name is shown quoted and cut
            else:
                key = rng.choice(KEYS[section])
                table[key] = _value(rng, paths, key)
            named.add(f"{section}.{key}")
    return data, named


def mutate_bytes(rng: random.Random, text: bytes) -> bytes:
    what = rng.randrange(7)
    if what == 0:
        return text[: rng.randrange(len(text))]
    at = rng.randrange(len(text))
    if what == 1:
        return text[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80",
                                       b"\xfe\xff"]) + text[at:]
    if what == 2:
        return text[:at] + bytes(rng.randrange(256) for _ in range(rng.randint(1, 8))) \
            + text[at:]
    if what == 3:
        return text[:at] + rng.choice([b"[", b"]", b"=", b'"', b"\n[x\n", b"\\u", b"'''",
                                       b"[[", b"{", b"\x00"]) + text[at:]
    if what == 4:
        depth = rng.choice([10, 1000, 100_000])
        return text + b"\n[deep]\nx = " + b"[" * depth + b"]" * depth + b"\n"
    if what == 5:
        line = rng.choice(text.splitlines() or [b"x = 1"])
        return text + b"\n" + line + b"\n"  # a duplicate key or table
    return bytes(b ^ 0x20 if rng.random() < 0.02 else b for b in text)


_FILE_LEVEL = ("not UTF-8 text", "not valid TOML")
_NAMES_A_KEY = re.compile(r"\[.+\]: unknown section|\[[a-z]+\] must be a table|[a-z]+\.\S")


def _run(path: Path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = check_file(path, out, err)
    return rc, err.getvalue()


def _problems(path: Path, err: str) -> list[str]:
    head, *lines = err.splitlines()
    assert head == f"invalid configuration {path}:", err
    assert lines and all(line.startswith("  - ") for line in lines), err
    return [line[4:] for line in lines]


def test_5000_mutated_configs_pass_or_name_the_key(tmp_path):
    rng = random.Random(SEED)
    bases = _base_configs()
    assert len(bases) >= 2
    paths = _special_paths(tmp_path)
    path = tmp_path / "evterm.toml"
    crashes: list[str] = []
    counts = {"valid": 0, "invalid": 0, "file": 0}

    def run_one(content: bytes, check_problem: Any) -> None:
        path.write_bytes(content)
        try:
            rc, err = _run(path)
        except Exception:  # a traceback is what this test counts
            crashes.append(f"{content[:300]!r}\n{traceback.format_exc()}")
            return
        if rc == 0:
            counts["valid"] += 1
            return
        assert rc == 2, (rc, err)
        problems = _problems(path, err)
        counts["file" if problems[0].startswith(_FILE_LEVEL) else "invalid"] += 1
        for problem in problems:
            assert check_problem(problem), f"{problem!r} in\n{content[:500]!r}"

    for _ in range(VALUE_CASES):
        data, named = mutate_values(rng, rng.choice(bases), paths)

        def names_a_mutated_key(problem: str, named: set[str] = named) -> bool:
            return problem.startswith((*named, *_FILE_LEVEL)) or (
                "unknown section" in named and "unknown section" in problem) or any(
                # a rule between two keys of a section, naming the mutated one in its text
                problem.startswith(key.partition(".")[0] + ".")
                and f" {key.partition('.')[2]} " in problem for key in named)

        run_one(to_toml(data), names_a_mutated_key)
    for _ in range(BYTE_CASES):
        content = mutate_bytes(rng, to_toml(rng.choice(bases)))
        run_one(content, lambda p: p.startswith(_FILE_LEVEL) or _NAMES_A_KEY.match(p))

    assert not crashes, f"{len(crashes)} tracebacks; the first:\n{crashes[0]}"
    total = VALUE_CASES + BYTE_CASES
    assert sum(counts.values()) == total >= 2000
    # not vacuous: many files fail for their values, some for the file, some pass
    assert counts["invalid"] > total // 3 and counts["file"] > 100 and counts["valid"] > 100, \
        counts
