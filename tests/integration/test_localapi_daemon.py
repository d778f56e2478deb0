"""The local API of the real daemon process (with the station simulator, hw_mocks.rig):
several subscribers at once get the same pushed states; a subscriber that never reads
is dropped while the others and the session go on; malformed lines are answered with an
error naming the problem and change nothing; the socket file is mode 0660."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hw_mocks.rig import Rig, Subscriber
from tests.integration.peer import NOBODY, run_as

FLOOD_OPS = 1000  # language ops, each pushing a state to every subscriber


@pytest.fixture
def rig() -> Iterator[Rig]:
    folder = Path(tempfile.mkdtemp(prefix="evapi-"))  # short: socket paths < 108 bytes
    try:
        with Rig(folder / "rig", extra={"ui": {
                "app_start_url": "https://pay.example.com/start/{station_id}/{code}",
                "support_phone": "+49 30 1234567"}}) as started:
            started.start_station()
            started.start_daemon()
            yield started
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def pushed(subscriber: Subscriber) -> list[dict[str, Any]]:
    with subscriber._changed:
        return [m for m in subscriber.messages if "type" in m]


def flood(path: str, count: int, readers: list[Subscriber],
          batch: int = 50) -> list[dict[str, Any]]:
    """`count` language ops down one connection, `batch` at a time, each batch once the
    `readers` have received the states of the one before (so only a client that does
    not read falls behind); their replies."""
    replies: list[dict[str, Any]] = []
    marks = [reader.mark() for reader in readers]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        lines = sock.makefile("rb")
        for first in range(0, count, batch):
            ops = range(first, min(first + batch, count))
            sock.sendall(b"".join(json.dumps({"op": "language", "id": i, "language": (
                "de", "fr", "nl", "en")[i % 4]}).encode() + b"\n" for i in ops))
            replies += [json.loads(lines.readline()) for _ in ops]
            for reader, mark in zip(readers, marks, strict=True):
                reader.wait_for(f"the states of {ops.stop} ops", lambda m: True, 10,
                                mark + ops.stop - 1)
        lines.close()
    return replies


def read_until_closed(sock: socket.socket, timeout_s: float) -> int:
    """Bytes the daemon had sent before it closed the connection (RuntimeError when it
    is still open after `timeout_s`)."""
    sock.settimeout(timeout_s)
    total = 0
    try:
        while chunk := sock.recv(1 << 20):
            total += len(chunk)
    except TimeoutError:
        raise RuntimeError(f"still connected after {timeout_s} s ({total} bytes)") from None
    return total


def test_subscribers_get_the_same_states_and_one_that_never_reads_is_dropped(rig: Rig):
    subscribers = [Subscriber(rig.socket_path) for _ in range(3)]
    never_reads = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    never_reads.connect(rig.socket_path)
    never_reads.sendall(b'{"op": "subscribe"}\n')
    try:
        assert rig.api("start", id_token="TOKEN-A")["ok"]
        rig.ev("plug")
        rig.wait_phase("Charging", timeout_s=15)
        energy_before = Decimal(rig.state()["energy_wh"])

        started_s = time.monotonic()
        replies = flood(rig.socket_path, FLOOD_OPS, subscribers)
        flood_s = time.monotonic() - started_s
        assert [r["id"] for r in replies] == list(range(FLOOD_OPS))
        assert all(r["ok"] and r["state"]["language"] == r["language"] for r in replies)

        # the one that never read is disconnected: what was buffered, then end of stream
        assert read_until_closed(never_reads, 10) > 0
        asked_s = time.monotonic()
        state = rig.state()
        status_s = time.monotonic() - asked_s
        assert status_s < 0.5, status_s
        assert state["phase"] == "Charging" and state["language"] == "en"
        rig.wait_for("energy to keep flowing",
                     lambda: Decimal(rig.state()["energy_wh"]) > energy_before + 100, 10)
        latest = Decimal(rig.state()["energy_wh"])
        for subscriber in subscribers:  # they still get pushes
            mark = subscriber.mark()
            subscriber.wait_for("a state after the drop", lambda m: m.get("type") == "state"
                                and Decimal(m["state"]["energy_wh"]) > latest, 10, mark)

        # the three saw one and the same sequence of pushed messages
        seen = [pushed(s) for s in subscribers]
        last_first = max(seen, key=lambda m: m[0]["state"]["now"] if "state" in m[0] else "")
        first = last_first[0]
        starts = [messages.index(first) for messages in seen]
        length = min(len(messages) - i for messages, i in zip(seen, starts, strict=True))
        assert length > FLOOD_OPS, length
        windows = [messages[i:i + length] for messages, i in zip(seen, starts, strict=True)]
        assert windows[0] == windows[1] == windows[2]
        languages = [m["state"]["language"] for m in windows[0] if m["type"] == "state"]
        assert languages.count("nl") >= FLOOD_OPS // 4
        state = windows[0][-1]["state"]
        assert state["support_phone"] == "+49 30 1234567"
        assert state["app_start"]["url"].endswith(f"/DE*EVT*E0001*1/{state['app_start']['code']}")
        assert state["elapsed_s"] >= 0 and state["session_started_at"] < state["now"]
        print(f"flood of {FLOOD_OPS} ops {flood_s:.2f} s; status {status_s * 1000:.1f} ms")
    finally:
        never_reads.close()
        for subscriber in subscribers:
            subscriber.close()


def journal_counts(rig: Rig) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{rig.database}?mode=ro", uri=True)
    try:
        sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
        audits = conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        return int(sessions), int(audits)
    finally:
        conn.close()


BAD_LINES: list[tuple[bytes, str]] = [
    (b"not json", "not a JSON object"),
    (b"\xff\xfe{}", "not a JSON object"),
    (b"[1, 2]", "must be a JSON object with an 'op' field"),
    (b"null", "must be a JSON object"),
    (b'"status"', "must be a JSON object"),
    (b'{"id": 1}', "unknown op None"),
    (b'{"op": "format_disk"}', "unknown op 'format_disk'; known: ack_receipt, budget, language"),
    (b'{"op": 5}', "unknown op 5"),
    (b'{"op": "language"}', "language: expected one of en, de, fr, nl"),
    (b'{"op": "language", "language": 5}', "language: expected one of"),
    (b'{"op": "language", "language": ["de"]}', "language: expected one of"),
    (b'{"op": "language", "language": "xx"}', "language: expected one of"),
    (b'{"op": "ack_receipt"}', "session_id: expected"),
    (b'{"op": "ack_receipt", "session_id": 5}', "session_id: expected"),
    (b'{"op": "ack_receipt", "session_id": "nope"}', "session_id: 'nope' is not the receipt"),
    (b'{"op": "start"}', "id_token: expected"),
    (b'{"op": "start", "id_token": 5}', "id_token: expected"),
    (b'{"op": "start", "id_token": "' + b"x" * 65 + b'"}', "id_token: expected"),
    (b'{"op": "start", "id_token": "A", "source": "moon"}', "source: expected"),
    (b'{"op": "start", "id_token": "A", "cost_cap": 1.5}', "cost_cap: expected"),
    (b'{"op": "start", "id_token": "A", "cost_cap": "lots"}', "cost_cap: expected"),
    (b'{"op": "start", "id_token": "A", "energy_cap_wh": "-1"}', "energy_cap_wh: expected"),
    (b'{"op": "stop", "reason": 5}', "reason: expected one of Local, Remote, Technician"),
    (b'{"op": "stop", "id_token": 5}', "id_token: expected a string"),
    (b'{"op": "report_problem", "text": 5}', "text: expected"),
    # hostile lines (issue 16): each gets one answer naming the problem, nothing breaks
    (b'{"op": "start", "id_token": "\\ud800"}', "id_token: not valid Unicode text"),
    (b'{"op": "start", "id_token": "A\\u0007B"}', "id_token: expected a non-empty printable"),
    (b"[" * 5000 + b"]" * 5000, "line: nested deeper than 8 levels"),
    (b'{"op": "status", "n": ' + b"9" * 5000 + b"}", "line: an integer of 5000 digits"),
    (b'{"op": "stop", "reason": {}}', "reason: expected one of Local, Remote, Technician"),
    (b'{"op": "stop", "id": {"a": 1}}', "id: expected a string"),
    (b'{"op": "start", "id_token": "A", "cost_cap": "1e999999999"}', "cost_cap: expected"),
    (b'{"op": "start", "id_token": "A", "cost_cap": "1e26"}', "cost_cap: expected"),
]


def test_malformed_lines_are_refused_naming_the_problem_and_change_nothing(rig: Rig):
    mode = stat.S_IMODE(os.stat(rig.socket_path).st_mode)
    assert mode == 0o660, oct(mode)
    before = journal_counts(rig)
    state_before = rig.state()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(rig.socket_path)
        lines = sock.makefile("rb")
        for line, problem in BAD_LINES:  # one connection: each refusal leaves it usable
            sock.sendall(line + b"\n")
            reply = json.loads(lines.readline())
            assert reply["ok"] is False and problem in reply["error"], (line, reply)
        sock.sendall(b'{"op": "language", "id": "x7", "language": "de "}\n')
        reply = json.loads(lines.readline())
        assert (reply["id"], reply["ok"], reply["op"]) == ("x7", False, "language")
        sock.sendall(b'{"op": "status", "id": 1}\n')
        assert json.loads(lines.readline())["ok"] is True
        # a line over 64 KiB: refused, then the connection is closed
        sock.sendall(b'{"op": "status", "pad": "' + b"x" * 70_000 + b'"}\n')
        reply = json.loads(lines.readline())
        assert reply == {"ok": False, "error": "line longer than 65536 bytes"}
        assert lines.readline() == b""
        lines.close()
    after = rig.state()
    assert journal_counts(rig) == before
    for key in ("phase", "session_id", "language", "receipt_pending", "app_start",
                "accepting_sessions"):
        assert after[key] == state_before[key], key
    assert after["accepting_sessions"] is True  # a bad value never marks the journal failed
    assert rig.api("language", language="nl")["state"]["language"] == "nl"  # still serving


# ---- who may do what, and the files' modes --------------------------------------------------


def as_user(uid: int, path: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The replies to `requests` sent over one connection by a peer running as `uid`."""

    def send() -> list[dict[str, Any]]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(path)
            lines = sock.makefile("rb")
            out = []
            for message in requests:
                sock.sendall((json.dumps(message) + "\n").encode())
                out.append(json.loads(lines.readline()))
            return out

    replies = run_as(uid, send)
    assert isinstance(replies, list), replies
    return replies


def test_another_user_has_the_driver_role_and_the_daemons_files_are_its_own():
    assert os.geteuid() == 0, "this test needs root to run a peer as another user"
    folder = Path(tempfile.mkdtemp(prefix="evrole-"))  # short: socket paths < 108 bytes
    os.chmod(folder, 0o711)  # nobody may reach the socket (the test is about rights)
    log_file = folder / "evterm.log"
    try:
        with Rig(folder / "rig", extra={
                "localapi": {"socket_mode": "0666", "dev_free_start": False},
                "service": {"log_file": str(log_file)}}) as rig:
            os.chmod(rig.folder, 0o711)
            rig.start_station()
            rig.start_daemon()
            # the files: the daemon's user alone (umask 077, state folder 0700)
            state = Path(rig.folder / "state")
            rig.wait_for("the journal's WAL", (state / "evterm.db-wal").exists)
            assert stat.S_IMODE(state.stat().st_mode) == 0o700
            files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir()}
            assert {"evterm.db", "evterm.db-wal"} <= set(files), files
            assert all(mode == 0o600 for mode in files.values()), files
            assert stat.S_IMODE(log_file.stat().st_mode) == 0o600
            assert "daemon ready" in log_file.read_text(encoding="utf-8")

            # root has the service role, but no free start without dev_free_start
            free = rig.api("start", id_token="ANY-TOKEN")
            assert free["ok"] is False and free["error"].startswith("token: log in first")

            # another user (the screen's role): no start, no listing, no other stop
            replies = as_user(NOBODY, rig.socket_path, [
                {"op": "start", "id_token": "ANY-TOKEN"},
                {"op": "sessions"},
                {"op": "stop", "reason": "Technician"},
                {"op": "status"},
            ])
            start, listing, stop, status = replies
            for reply, op in ((start, "start"), (listing, "sessions")):
                assert reply["ok"] is False and reply["error"].startswith(
                    f"op: {op} needs the service role"), reply
            assert stop["ok"] is False and stop["error"].startswith("reason:"), stop
            assert status["ok"] is True and status["state"]["session_id"] is None
            assert rig.state()["phase"] == "Available"  # nothing was started

            # `evterm session start` sends the token `evterm service login` kept
            runtime = folder / "runtime"
            runtime.mkdir()
            cli = [sys.executable, "-m", "terminal.cli", "session", "--socket",
                   rig.socket_path, "start", "--id-token", "CLI-CARD"]
            env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
            none = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=30)
            assert (none.returncode, none.stderr.strip()) == (
                1, "evterm session start: token: log in first (service_login)")
            (runtime / "evterm-service-token").write_text("made-up", encoding="ascii")
            stale = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=30)
            assert stale.returncode == 1 and "token: unknown or expired" in stale.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)
