"""The signing meter on the running app (Xvfb, 800x480) against tests/ui/fake_localapi.py:
the "Meter info" page from the idle screen with the key in full, photographed; the
receipt's "Signed meter data" page photographed, and the QR code in the photograph read
back module by module: it is the standard QR encoding (error correction M, PyPI
`qrcode`) of the daemon's OCMF text, with at least 2 px a module. The layout of both
pages in every language and size: tests/ui/test_ui_layout.py."""

from __future__ import annotations

import struct
import tempfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import qrcode

from tests.ui.fake_localapi import SESSION, FakeLocalApi
from tests.ui.layout_check import widget
from tests.ui.test_ui_scenarios import png_facts
from tests.unit.metering_helpers import METER_SERIAL, OCMF, PUBLIC_KEY

PENDING = {"session_id": SESSION, "until": "2026-12-02T10:35:00Z"}


@pytest.fixture
def fake_api() -> Iterator[FakeLocalApi]:
    folder = tempfile.mkdtemp(prefix="evmtr-")
    api = FakeLocalApi(str(Path(folder) / "local.sock")).start()
    yield api
    api.close()


def png_pixels(path: Path) -> tuple[int, list[bytes]]:
    """(bytes per pixel, rows top to bottom) of an 8-bit RGB/RGBA PNG:
    IDAT inflated and each row's filter undone (PNG spec, section 9)."""
    data = path.read_bytes()
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert depth == 8 and colour in (2, 6), (depth, colour)
    bpp = 3 if colour == 2 else 4
    idat, pos = b"", 8
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + length]
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for x in range(stride):
            left = line[x - bpp] if x >= bpp else 0
            up = previous[x]
            corner = previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + left) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + up) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                pred = left if pa <= pb and pa <= pc else up if pb <= pc else corner
                line[x] = (line[x] + pred) & 0xFF
        rows.append(bytes(line))
        previous = line
    return bpp, rows


def test_meter_info_and_the_signed_data_qr_on_screen(fake_api, ui_process, tmp_path):
    ui = ui_process(SimpleNamespace(socket_path=fake_api.path), size="800x480")
    # ---- Meter info from the idle screen
    idle = ui.wait_for("the meter info button", lambda d: "idle_meter_info" in d["buttons"])
    assert idle["widgets"]["idle_meter_info"] == "Meter info"
    ui.press("idle_meter_info")
    page = ui.wait_screen("meter_info")
    shot = ui.screenshot(tmp_path / "meter_info.png")
    width, height, variety = png_facts(shot)
    assert (width, height) == (800, 480) and variety > 8
    key = page["widgets"]["mi_key"]
    assert key.replace(" ", "").replace("\n", "") == PUBLIC_KEY
    assert all(len(block) == 4 for block in key.split()[:-1])
    assert METER_SERIAL in page["widgets"]["mi_meter"]
    assert "S.A.F.E." in page["widgets"]["mi_hint"]
    layout = ui.dump(layout=True)
    key_label = widget(layout, "mi_key")
    assert len(key_label["lines"]) == key.count("\n") + 1  # no block wrapped apart
    assert key_label["font_size"] >= 18  # 3.8 % of 480 px: about 2.5 mm capitals
    ui.press("mi_back")
    ui.wait_screen("idle")
    # ---- the receipt's signed meter data
    fake_api.reset(receipt_pending=PENDING)
    ui.wait_for("the signed data button", lambda d: "signed_data" in d["buttons"])
    ui.press("signed_data")
    signed = ui.wait_for("the OCMF QR code", lambda d: d["screen"] == "signed_data"
                         and d["qr"] == OCMF)
    assert signed["widgets"]["sd_start"] == "Meter reading at the start: 12,345.678\u00a0kWh"
    assert signed["widgets"]["sd_end"] == "Meter reading at the end: 12,361.553\u00a0kWh"
    layout = ui.dump(layout=True)
    shot = ui.screenshot(tmp_path / "signed_data.png")
    assert_qr_in_photo(shot, widget(layout, "signed_qr"), layout["window"][1])


def assert_qr_in_photo(shot: Path, entry: dict, window_h: float) -> None:
    """Every module of the standard encoding of OCMF, sampled at its centre in the PNG."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4)
    code.add_data(OCMF)
    code.make(fit=True)
    matrix = code.get_matrix()
    side_px = entry["drawn"]
    module_px = side_px / len(matrix)
    assert module_px >= 2, f"{module_px:.2f} px a module: too small to scan from the panel"
    assert module_px == int(module_px)  # whole pixels a module: sharp edges
    module = int(module_px)
    bpp, rows = png_pixels(shot)

    def dark(px: int, py: int) -> bool:
        return rows[py][px * bpp] < 128

    (x, y), (w, h) = entry["pos"], entry["size"]
    left = round(x + w / 2 - side_px / 2)
    top = round(window_h - (y + h / 2 + side_px / 2))  # PNG rows run top to bottom
    # the exact corner: the finder's outer corner dark, the quiet zone left and above light
    corners = [(left + dx, top + dy) for dx in range(-2, 3) for dy in range(-2, 3)
               if dark(left + dx + 4 * module, top + dy + 4 * module)
               and not dark(left + dx + 4 * module - 1, top + dy + 4 * module)
               and not dark(left + dx + 4 * module, top + dy + 4 * module - 1)]
    assert len(corners) == 1, f"the QR code is not where the layout says: {corners}"
    left, top = corners[0]
    wrong = []
    for i, row in enumerate(matrix):
        for j, module_dark in enumerate(row):
            centre = (left + j * module + module // 2, top + i * module + module // 2)
            if dark(*centre) != module_dark:
                wrong.append((i, j))
    assert not wrong, f"{len(wrong)} of {len(matrix) ** 2} modules differ, e.g. {wrong[:5]}"
