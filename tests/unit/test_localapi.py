"""The local API socket: requests, errors for bad lines, subscribers, slow clients."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest

from terminal.localapi import MAX_LINE_BYTES, QUEUE_LIMIT, LocalApi, RequestError


async def echo(request: dict) -> dict:
    if request.get("fail"):
        raise RequestError("fail: asked to fail")
    return {"echo": request.get("value")}


async def broken(request: dict) -> dict:
    raise ZeroDivisionError("bug")


@pytest.fixture
def api_path(tmp_path):
    return tmp_path / "api.sock"


async def started(path) -> LocalApi:
    api = LocalApi(path, 0o660)
    api.route("echo", echo)
    api.route("broken", broken)
    api.snapshot = lambda: {"phase": "Available"}
    await api.start()
    return api


async def ask(path, *lines: bytes) -> list[dict]:
    reader, writer = await asyncio.open_unix_connection(str(path))
    replies = []
    for line in lines:
        writer.write(line)
        await writer.drain()
        replies.append(json.loads(await reader.readline()))
    writer.close()
    return replies


def test_requests_and_errors(api_path):
    async def scenario():
        api = await started(api_path)
        try:
            assert stat.S_IMODE(os.stat(api_path).st_mode) == 0o660
            return await ask(
                api_path,
                b'{"op": "echo", "id": 7, "value": 1}\n',
                b"{not json\n",
                b"[1, 2]\n",
                b'{"op": "nope"}\n',
                b'{"op": "echo", "fail": true}\n',
                b'{"op": "broken"}\n',
                b'{"op": "echo", "value": "still here"}\n',
            )
        finally:
            await api.close()

    replies = asyncio.run(scenario())
    assert replies[0] == {"id": 7, "ok": True, "op": "echo", "echo": 1}
    assert replies[1]["ok"] is False and "not a JSON object" in replies[1]["error"]
    assert replies[2]["error"] == "a request must be a JSON object with an 'op' field"
    assert replies[3]["error"] == "unknown op 'nope'; known: broken, echo, subscribe"
    assert replies[4] == {"ok": False, "op": "echo", "error": "fail: asked to fail"}
    assert replies[5]["error"] == "internal error: bug"
    assert replies[6]["echo"] == "still here"
    assert not api_path.exists()  # removed on close


def test_too_long_line_is_refused(api_path):
    async def scenario():
        api = await started(api_path)
        try:
            line = b'{"op": "echo", "value": "' + b"x" * MAX_LINE_BYTES + b'"}\n'
            return await ask(api_path, line)
        finally:
            await api.close()

    (reply,) = asyncio.run(scenario())
    assert reply["ok"] is False and "longer than" in reply["error"]


def test_subscribers_get_publishes_and_a_stalled_one_is_dropped(api_path):
    async def scenario():
        api = await started(api_path)
        try:
            fast_r, fast_w = await asyncio.open_unix_connection(str(api_path))
            slow_r, slow_w = await asyncio.open_unix_connection(str(api_path))
            for writer in (fast_w, slow_w):
                writer.write(b'{"op": "subscribe"}\n')
                await writer.drain()
            first = json.loads(await fast_r.readline())
            await slow_r.readline()
            assert api.client_count == 2
            # the slow client stops reading; publishing must never block the daemon
            slow_w.transport.pause_reading()
            big = {"type": "state", "pad": "y" * 50_000}
            for _ in range(QUEUE_LIMIT * 4):
                api.publish(big)
                await asyncio.sleep(0)
                while True:  # the fast client keeps reading
                    try:
                        await asyncio.wait_for(fast_r.readline(), 0.001)
                    except TimeoutError:
                        break
            await asyncio.sleep(0.1)
            return first, api.client_count
        finally:
            await api.close()

    first, remaining = asyncio.run(scenario())
    assert first == {"ok": True, "op": "subscribe", "state": {"phase": "Available"}}
    assert remaining == 1


def test_refuses_to_replace_a_file_that_is_not_a_socket(api_path):
    api_path.write_text("keep me")

    async def scenario():
        await LocalApi(api_path).start()

    with pytest.raises(OSError, match="not a socket"):
        asyncio.run(scenario())
    assert api_path.read_text() == "keep me"
