"""hw_mocks.vpcd (the card side of the vpcd protocol) against a fake vpcd listener in
the test, and the reader configuration hw_mocks.pcscd writes."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from hw_mocks.cards import RFID_ATR, make_card
from hw_mocks.pcscd import reader_conf, reader_names
from hw_mocks.vpcd import (
    CTRL_ATR,
    CTRL_OFF,
    CTRL_ON,
    CTRL_RESET,
    Presentation,
    VpcdError,
    port_for,
    present,
)

GET_UID = bytes.fromhex("FFCA000000")


class FakeVpcd:
    """vpcd's side of one connection: send a message, read the answer."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.conn: socket.socket | None = None

    def accept(self, timeout_s: float = 3.0) -> None:
        self.server.settimeout(timeout_s)
        self.conn, _ = self.server.accept()
        self.conn.settimeout(timeout_s)

    def send(self, payload: bytes, split: bool = False) -> None:
        assert self.conn is not None
        frame = struct.pack(">H", len(payload)) + payload
        if split:  # the length and the payload in separate TCP segments
            self.conn.sendall(frame[:1])
            time.sleep(0.02)
            self.conn.sendall(frame[1:3])
            time.sleep(0.02)
            self.conn.sendall(frame[3:])
        else:
            self.conn.sendall(frame)

    def recv(self) -> bytes:
        assert self.conn is not None
        header = self._exact(2)
        return self._exact(struct.unpack(">H", header)[0])

    def _exact(self, size: int) -> bytes:
        assert self.conn is not None
        data = b""
        while len(data) < size:
            chunk = self.conn.recv(size - len(data))
            if not chunk:
                raise EOFError("card closed the connection")
            data += chunk
        return data

    def closed_by_card(self) -> bool:
        assert self.conn is not None
        return self.conn.recv(1) == b""

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


class Presenter:
    """present() in a thread."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.result: Presentation | BaseException | None = None
        self.connected_s: list[float] = []
        kwargs.setdefault("on_connected", self.connected_s.append)
        self._thread = threading.Thread(target=self._run, args=args, kwargs=kwargs)
        self._thread.start()

    def _run(self, *args: object, **kwargs: object) -> None:
        try:
            self.result = present(*args, **kwargs)  # type: ignore[arg-type]
        except BaseException as exc:
            self.result = exc

    def join(self, timeout_s: float = 5.0) -> Presentation:
        self._thread.join(timeout_s)
        assert isinstance(self.result, Presentation), self.result
        return self.result


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    fake = FakeVpcd()
    yield fake
    fake.close()


class CountingCard:
    """An RFID card that counts resets."""

    def __init__(self) -> None:
        self.inner = make_card("rfid-4")
        self.name, self.atr = self.inner.name, self.inner.atr
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1

    def apdu(self, command: bytes) -> bytes:
        return self.inner.apdu(command)


def test_controls_and_apdus(vpcd: FakeVpcd) -> None:
    card = CountingCard()
    presenter = Presenter(card, "127.0.0.1", vpcd.port, 0.6)
    vpcd.accept()
    vpcd.send(bytes([CTRL_ATR]))
    assert vpcd.recv() == RFID_ATR
    resets = card.resets
    vpcd.send(bytes([CTRL_OFF]))
    vpcd.send(bytes([CTRL_ON]))
    vpcd.send(bytes([CTRL_RESET]))
    vpcd.send(GET_UID, split=True)  # no answer to the three controls before
    assert vpcd.recv() == bytes.fromhex("1A2B3C4D9000")
    assert card.resets == resets + 2
    vpcd.send(bytes.fromhex("00A404000E325041592E5359532E444446303100"))
    assert vpcd.recv() == bytes.fromhex("6A82")
    assert vpcd.closed_by_card()  # hold time over: the card left
    shown = presenter.join()
    assert (shown.apdus, shown.controls, shown.reason) == (2, 4, "hold_elapsed")
    assert presenter.connected_s == [shown.connected_at_monotonic_s]
    assert 0.55 < shown.left_at_monotonic_s - shown.connected_at_monotonic_s < 1.5


@pytest.mark.parametrize("answered", [0, 2])
def test_removed_after_apdus(vpcd: FakeVpcd, answered: int) -> None:
    presenter = Presenter(make_card("rfid-7"), "127.0.0.1", vpcd.port, 5.0,
                          remove_after_apdus=answered)
    vpcd.accept()
    vpcd.send(bytes([CTRL_ATR]))
    assert vpcd.recv() == RFID_ATR
    for _ in range(answered):
        vpcd.send(GET_UID)
        assert vpcd.recv()[-2:] == b"\x90\x00"
    vpcd.send(GET_UID)
    with pytest.raises(EOFError):  # gone without an answer
        vpcd.recv()
    shown = presenter.join()
    assert (shown.apdus, shown.reason) == (answered, "removed_after_apdus")
    assert shown.left_at_monotonic_s - shown.connected_at_monotonic_s < 2.0


def test_reader_closing_ends_presentation(vpcd: FakeVpcd) -> None:
    presenter = Presenter(make_card("rfid-4"), "127.0.0.1", vpcd.port, 5.0)
    vpcd.accept()
    vpcd.send(bytes([CTRL_ATR]))
    vpcd.recv()
    assert vpcd.conn is not None
    vpcd.conn.sendall(b"\x00")  # half a length, then pcscd dies
    vpcd.conn.close()
    shown = presenter.join()
    assert shown.reason == "reader_closed"


def test_connect_retries_until_vpcd_listens() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    presenter = Presenter(make_card("rfid-4"), "127.0.0.1", port, 0.2, connect_timeout_s=3.0)
    time.sleep(0.3)  # nothing listens yet: refused, retried
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", port))
    server.listen(1)
    try:
        server.settimeout(3.0)
        conn, _ = server.accept()
        conn.close()
        assert presenter.join().reason in ("hold_elapsed", "reader_closed")
    finally:
        server.close()


def test_nothing_listening_raises_naming_the_port() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(VpcdError, match=f"127.0.0.1:{port}"):
        present(make_card("rfid-4"), "127.0.0.1", port, 1.0, connect_timeout_s=0.2)


def test_port_for() -> None:
    assert port_for(35963, 0) == 35963
    assert port_for(35963, 3) == 35966
    with pytest.raises(ValueError, match="reader -1"):
        port_for(35963, -1)
    with pytest.raises(ValueError, match="out of range"):
        port_for(65535, 1)


def test_reader_conf_two_slots_per_entry() -> None:
    text = reader_conf(40000, 3)
    assert text.count("FRIENDLYNAME") == 2
    assert "CHANNELID    0x9C40" in text and "CHANNELID    0x9C42" in text
    assert "DEVICENAME   /dev/null:0x9C42" in text
    assert reader_names(3) == ["evterm vpcd 0 00 00", "evterm vpcd 0 00 01",
                               "evterm vpcd 1 00 00", "evterm vpcd 1 00 01"]
    assert reader_names(1) == reader_names(2)
