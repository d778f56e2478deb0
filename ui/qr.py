"""A Kivy widget that draws a QR code: `QrCode(data="https://...")`.

The module matrix comes from PyPI `qrcode` (error correction M, the standard 4-module
quiet zone); it is uploaded once per payload as a small luminance texture, one texel per
module, and drawn scaled with nearest filtering, so the modules stay sharp at any size.
The code is kept square and centred in the widget. `data = None` (or "") draws nothing.
A payload too long for a QR code logs a warning and draws nothing.
"""

from __future__ import annotations

import qrcode
from kivy.graphics import Color, Rectangle
from kivy.graphics.texture import Texture
from kivy.properties import ObjectProperty
from kivy.uix.widget import Widget
from qrcode.exceptions import DataOverflowError

from terminal.kernel.logsetup import fields, get_logger

log = get_logger("ui.qr")

QUIET_ZONE_MODULES = 4


def qr_matrix(data: str) -> list[list[bool]]:
    """The modules of `data` as rows top to bottom (True = dark), quiet zone included."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M,
                         border=QUIET_ZONE_MODULES, box_size=1)
    code.add_data(data)
    code.make(fit=True)
    return [list(row) for row in code.get_matrix()]


def luminance_bytes(matrix: list[list[bool]]) -> bytes:
    """One byte per module, rows bottom to top (a GL texture starts at the bottom):
    0 for dark, 255 for light."""
    return b"".join(bytes(0 if dark else 255 for dark in row) for row in reversed(matrix))


class QrCode(Widget):
    """`data`: the payload (str) or None. `modules`: side of the matrix drawn (0 when empty)."""

    data = ObjectProperty(None, allownone=True)

    def __init__(self, **kwargs: object) -> None:
        self._texture: Texture | None = None
        self.modules = 0
        super().__init__(**kwargs)
        with self.canvas:
            self._color = Color(1, 1, 1, 1)
            self._rect = Rectangle(size=(0, 0))
        self.bind(pos=self._layout, size=self._layout)
        self.on_data(self, self.data)

    def on_data(self, _widget: object, data: str | None) -> None:
        if not hasattr(self, "_rect"):
            return  # the property is set by the constructor before the canvas exists
        self._texture = None
        self.modules = 0
        if data:
            try:
                matrix = qr_matrix(str(data))
            except (DataOverflowError, ValueError) as exc:
                log.warning("QR payload cannot be encoded",
                            extra=fields(error=exc, chars=len(data)))
                matrix = []
            if matrix:
                side = len(matrix)
                texture = Texture.create(size=(side, side), colorfmt="luminance")
                texture.mag_filter = "nearest"
                texture.min_filter = "nearest"
                texture.blit_buffer(luminance_bytes(matrix), colorfmt="luminance",
                                    bufferfmt="ubyte")
                self._texture = texture
                self.modules = side
        self._rect.texture = self._texture
        self._layout()

    def _layout(self, *_args: object) -> None:
        if self._texture is None:
            self._rect.size = (0, 0)
            return
        # a whole number of pixels per module where the widget allows it: crisp edges
        side = min(self.width, self.height)
        if side >= self.modules:
            side = side - side % self.modules
        self._rect.size = (side, side)
        self._rect.pos = (int(self.center_x - side / 2), int(self.center_y - side / 2))
