"""The meters' HTTP client (drivers/meter/http_client.py) against canned answers of a
tiny asyncio server in this process: URL checks, answers with a length, chunked or
ending with the connection, the size limit and the failure kinds."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from drivers.meter.http_client import (
    MAX_ANSWER_BYTES,
    HttpAnswer,
    HttpFailure,
    parse_http_url,
    request,
)
from drivers.meter.transport import TransportError
from hw_mocks.ports import free_port


def exchange(raw: bytes, method: str = "GET", body: object = None
             ) -> tuple[HttpAnswer | HttpFailure, bytes]:
    """Serve `raw` to one request; (the answer or the failure, the request's bytes)."""
    seen: list[bytes] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = [int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:")]
        seen.append(head + (await reader.readexactly(length[0]) if length else b""))
        writer.write(raw)
        await writer.drain()
        writer.close()

    async def main() -> HttpAnswer | HttpFailure:
        port = free_port()
        server = await asyncio.start_server(client, "127.0.0.1", port)
        try:
            return await request(parse_http_url(f"http://127.0.0.1:{port}"), method,
                                 "/v1/x", body, timeout_s=2.0)
        except HttpFailure as failure:
            return failure
        finally:
            server.close()

    result = asyncio.run(main())
    return result, seen[0] if seen else b""


def test_an_answer_with_a_length_and_the_request_sent():
    answer, sent = exchange(b"HTTP/1.1 201 Created\r\nContent-Length: 16\r\n\r\n"
                            b'{"kwh": 12.345}\n', "POST", {"running": True})
    assert isinstance(answer, HttpAnswer)
    assert (answer.status, answer.reason) == (201, "Created")
    assert answer.json() == {"kwh": Decimal("12.345")}
    assert sent.startswith(b"POST /v1/x HTTP/1.1\r\n")
    assert b"Connection: close\r\n" in sent and sent.endswith(b'\r\n\r\n{"running":true}')


def test_a_chunked_answer_and_one_ending_with_the_connection():
    chunked, _ = exchange(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"5;x=y\r\nOCMF|\r\n3\r\n{}|\r\n0\r\n\r\n")
    assert isinstance(chunked, HttpAnswer) and chunked.text() == "OCMF|{}|"
    closed, _ = exchange(b"HTTP/1.0 200 OK\r\n\r\n" + b"a" * 100_000)
    assert isinstance(closed, HttpAnswer) and closed.body == b"a" * 100_000


@pytest.mark.parametrize(("raw", "kind", "words"), [
    (b"SSH-2.0-OpenSSH\r\n", "garbled", "not an HTTP answer"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", "garbled", "Content-Length"),
    (b"HTTP/1.1 200 OK\r\n\r\n" + b"a" * (MAX_ANSWER_BYTES + 1), "garbled", "longer than"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "garbled", "chunk size"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "unreachable", "connection lost"),
    (b"", "unreachable", "closed the connection without an answer"),
])
def test_bad_answers_are_typed_failures_naming_the_request(raw, kind, words):
    failure, _ = exchange(raw)
    assert isinstance(failure, HttpFailure)
    assert failure.kind == kind and words in failure.detail and "GET http://127.0.0.1:" \
        in failure.detail


def test_not_utf8_text_is_replaced_or_refused():
    answer = HttpAnswer(200, "OK", b"caf\xe9")
    assert answer.text() == "caf\ufffd"
    with pytest.raises(ValueError):
        answer.text(errors="strict")
    with pytest.raises(ValueError):
        answer.json()


def test_unknown_host_and_nothing_listening_are_unreachable_and_named():
    async def attempt(url: str) -> HttpFailure:
        with pytest.raises(HttpFailure) as caught:
            await request(parse_http_url(url), "GET", "/", timeout_s=5.0)
        return caught.value

    unknown = asyncio.run(attempt("http://no-such-meter.invalid:80"))
    assert unknown.kind == "unreachable" and "host not found" in unknown.detail
    port = free_port()
    refused = asyncio.run(attempt(f"http://127.0.0.1:{port}"))
    assert refused.kind == "unreachable"
    assert f"connection refused (nothing listens on port {port})" in refused.detail


def test_urls_and_options():
    assert parse_http_url("http://meter").port == 80
    endpoint = parse_http_url("http://[::1]:8080?ci=DE*EVT*E1", allowed_options=("ci", "ct"))
    assert (endpoint.host, endpoint.port, endpoint.options) == ("::1", 8080, {"ci": "DE*EVT*E1"})
    assert endpoint.describe() == "http://[::1]:8080"


@pytest.mark.parametrize(("url", "options", "words"), [
    ("https://m:443", (), "unsupported charger URL 'https://m:443': this charger speaks HTTP"),
    ("http://m:0", (), "bad port in charger URL"),
    ("http://m:", (), "bad port in charger URL"),
    ("http://:80", (), "no host in charger URL"),
    ("http://m_!:80", (), "bad host 'm_!' in charger URL"),
    ("http://m:80/api", (), "nothing may follow HOST:PORT"),
    ("http://m:80?ci=x", (), "nothing may follow HOST:PORT"),
    ("http://m:80/api?ci=x", ("ci",), "nothing but options may follow"),
    ("http://m:80?pin=1", ("ci", "ct"), "unknown option 'pin' in charger URL .*allowed: ci, ct"),
    ("http://m:80/" + "a" * 2000, (), "too long or unprintable"),
    ("http://[::1:80", (), "Invalid IPv6 URL"),
])
def test_bad_urls_name_the_device_and_the_problem(url, options, words):
    with pytest.raises(TransportError, match=words):
        parse_http_url(url, "charger", options)
