"""Seeded fuzzing of the real daemon's local API: 10,000 hostile lines down one socket,
once from the service role (root) and once from the screen's role (a peer running as
user nobody; roles come from SO_PEERCRED): mutated requests for every op the daemon
routes, non-UTF-8 bytes, truncated JSON, deep nesting, huge numbers, lone surrogates,
control characters, wrong types. Every line gets exactly one answer, the daemon logs no
traceback and answers no "internal error", and afterwards it still records a session: a
bad value is a refused request, never a disabled terminal."""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.rig import Rig
from tests.integration.peer import NOBODY, run_as

SEED = 16_2026
LINES = 10_000  # per role
BATCH = 200

OPS = ["status", "report_problem", "start", "stop", "receipt", "sessions", "language",
       "ack_receipt", "subscribe", "service_login", "service_logout",
       "service_diagnostics", "service_receipt", "service_action", "touch",
       "service_report_daily",
       "service_keep_pin"]
FIELDS = ["id", "id_token", "reason", "session_id", "language", "cost_cap", "energy_cap_wh",
          "technician_id", "pin", "action", "text", "kind", "limit", "category", "lang"]


def hostile_values(rng: random.Random) -> Any:
    """One value of a kind a careless client or an attacker sends."""
    kind = rng.randrange(22)
    if kind == 0:
        return rng.randint(-(10 ** 19), 10 ** 19)
    if kind == 1:
        return rng.choice([1e308, -1e308, 1e-320, 0.1, -0.0, 123456789.123456789])
    if kind == 2:
        return rng.choice(["1e999999999", "NaN", "Infinity", "-1", "0", "1e26", "12.345"])
    if kind == 3:
        return "x" * rng.choice([0, 1, 63, 64, 65, 300, 5000])
    if kind == 4:
        return "".join(chr(rng.choice([0, 7, 10, 13, 27, 0x7F, 0x85, 0x200B, 0x2028,
                                       0xFEFF, 0x1F600])) for _ in range(rng.randint(1, 9)))
    if kind == 5:
        return None
    if kind == 6:
        return rng.choice([True, False])
    if kind == 7:
        return [hostile_values(rng) for _ in range(rng.randint(0, 3))]
    if kind == 8:
        return {rng.choice(FIELDS): hostile_values(rng) for _ in range(rng.randint(0, 3))}
    if kind == 9:
        return rng.choice(OPS)
    if kind == 10:
        return rng.choice(["de", "en", "fr", "nl", "xx", "DE", "", "de-DE"])
    if kind == 11:
        return rng.choice(["rfid:04AABBCCDDEEFF", "rfid:", "visa", "app:1234",
                           "../../etc/passwd", "'; DROP TABLE sessions; --"])
    if kind == 12:
        return rng.randint(0, 50)
    return "".join(chr(rng.randint(0x20, 0x2FF)) for _ in range(rng.randint(0, 20)))


def hostile_line(rng: random.Random) -> bytes:
    """One line (no newline inside, not blank, under the 64 KiB line limit)."""
    kind = rng.randrange(12)
    if kind == 0:  # bytes that are not UTF-8
        body = bytes(rng.randrange(256) for _ in range(rng.randint(1, 60)))
    elif kind == 1:  # nesting far deeper than allowed
        depth = rng.choice([9, 50, 5000, 20000])
        body = (b'{"op":"stop","reason":' + b"[" * depth + b"]" * depth + b"}")
    elif kind == 2:  # integers longer than Python converts by default
        body = b'{"op":"sessions","limit":' + b"9" * rng.choice([21, 4301, 30000]) + b"}"
    elif kind == 3:  # lone surrogates as JSON escapes
        body = rng.choice([b'{"op":"start","id_token":"\\ud800"}',
                           b'{"op":"language","language":"\\udfff"}',
                           b'{"op":"report_problem","text":"a\\ud83d"}',
                           b'{"\\ud800":1,"op":"status"}'])
    elif kind == 4:  # truncated or broken JSON
        good = json.dumps({"op": rng.choice(OPS), "id": rng.randint(0, 99)}).encode()
        body = good[: rng.randint(1, len(good) - 1)]
    elif kind == 5:  # JSON that is not an object
        body = json.dumps(hostile_values(rng), ensure_ascii=rng.random() < 0.5).encode()
    else:  # a request shaped like a real one with hostile fields
        request: dict[str, Any] = {"op": rng.choice(OPS) if rng.random() < 0.9
                                   else hostile_values(rng)}
        for name in rng.sample(FIELDS, rng.randint(0, 5)):
            request[name] = hostile_values(rng)
        body = json.dumps(request, ensure_ascii=rng.random() < 0.5).encode()
    body = body.replace(b"\n", b" ").replace(b"\r", b" ")
    return body if body.strip() else b"?"


@pytest.fixture
def rig() -> Iterator[Rig]:
    folder = Path(tempfile.mkdtemp(prefix="evfz-"))  # short: socket paths < 108 bytes
    os.chmod(folder, 0o711)  # the driver-role peer (user nobody) may reach the socket
    try:
        with Rig(folder / "rig", extra={"localapi": {"socket_mode": "0666"}}) as started:
            os.chmod(started.folder, 0o711)
            started.start_station()
            started.start_daemon()
            yield started
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def answers(lines: Any, count: int) -> list[dict[str, Any]]:
    """The next `count` answers on the connection (pushed states are skipped)."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        raw = lines.readline()
        if not raw:
            raise AssertionError(f"the daemon closed the connection after {len(got)} of "
                                 f"{count} answers in this batch")
        message = json.loads(raw)
        if "type" not in message:
            got.append(message)
    return got


def send_all(path: str, batches: list[list[bytes]]) -> list[dict[str, Any]]:
    """Every batch down one connection; the answers, in order."""
    replies: list[dict[str, Any]] = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(20)
        sock.connect(path)
        lines = sock.makefile("rb")
        for batch in batches:
            sock.sendall(b"".join(line + b"\n" for line in batch))
            replies += answers(lines, len(batch))
        lines.close()
    return replies


def send_all_as(uid: int, path: str, batches: list[list[bytes]]) -> list[dict[str, Any]]:
    """`send_all` from a peer running as `uid`: its credentials (SO_PEERCRED) give it
    the screen's role."""
    replies = run_as(uid, lambda: send_all(path, batches))
    assert isinstance(replies, list)
    return replies


def hostile_batches(seed: int) -> list[list[bytes]]:
    rng = random.Random(seed)
    return [[hostile_line(rng) for _ in range(BATCH)] for _ in range(LINES // BATCH)]


def assert_every_line_answered(rig: Rig, batches: list[list[bytes]],
                               replies: list[dict[str, Any]]) -> None:
    lines = [line for batch in batches for line in batch]
    assert len(replies) == len(lines) == LINES
    assert rig.daemon is not None and rig.daemon.poll() is None, rig.tail("daemon")
    pairs = list(zip(lines, replies, strict=True))
    internal = [(line[:120], reply) for line, reply in pairs
                if "internal error" in str(reply.get("error", ""))]
    assert internal == []
    unexplained = [(line[:120], reply) for line, reply in pairs
                   if reply.get("ok") is not True and not reply.get("error")]
    assert unexplained == []
    refused = sum(1 for reply in replies if reply.get("ok") is False)
    assert refused > LINES // 2  # most of them are garbage and say so
    log = rig.daemon_log.read_text(encoding="utf-8")
    assert "Traceback" not in log
    assert "journal commit failed" not in log


def assert_still_records_a_session(rig: Rig) -> None:
    """A bad value is a refused request, never a disabled terminal."""
    if rig.state()["phase"] != "Available":
        rig.api("stop", reason="Local")
        if rig.ev("status")["plugged"]:
            rig.ev("unplug")
        rig.wait_phase("Available", timeout_s=30)
    reply = rig.api("start", id_token="TOKEN-FUZZ")
    assert reply["ok"], reply
    rig.wait_phase("Authorized")
    rig.ev("plug")
    rig.wait_phase("Charging", timeout_s=15)
    assert rig.api("stop", reason="Local")["ok"]
    rig.ev("unplug")
    rig.wait_phase("Available", timeout_s=30)
    assert "journal commit failed" not in rig.daemon_log.read_text(encoding="utf-8")


def test_ten_thousand_hostile_lines_from_the_service_role(rig: Rig) -> None:
    batches = hostile_batches(SEED)
    assert_every_line_answered(rig, batches, send_all(rig.socket_path, batches))
    assert_still_records_a_session(rig)


def test_ten_thousand_hostile_lines_from_the_screens_role(rig: Rig) -> None:
    batches = hostile_batches(SEED + 1)
    replies = send_all_as(NOBODY, rig.socket_path, batches)
    assert_every_line_answered(rig, batches, replies)
    assert not [reply for reply in replies
                if reply.get("ok") and reply.get("op") in ("start", "sessions")]
    assert_still_records_a_session(rig)
