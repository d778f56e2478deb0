"""ui/qr.py's module matrix and texture bytes (in a child process: importing Kivy must
not touch the test process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hw_mocks.rig import REPO

PAYLOAD = "https://pay.evterm.example/start/DE*EVT*E0001*1/ABCD2345"  # 59 bytes

PROBE = f"""
import json
from ui.qr import QUIET_ZONE_MODULES, luminance_bytes, qr_matrix
matrix = qr_matrix({PAYLOAD!r})
print(json.dumps({{"quiet": QUIET_ZONE_MODULES, "matrix": matrix,
                   "bytes": list(luminance_bytes(matrix))}}))
"""


def test_qr_matrix_has_a_quiet_zone_finders_and_bottom_up_texture_rows():
    env = {**os.environ, "KIVY_NO_ARGS": "1", "KIVY_NO_CONFIG": "1", "KIVY_NO_FILELOG": "1",
           "KIVY_NO_CONSOLELOG": "1", "KIVY_LOG_MODE": "MIXED"}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    matrix, quiet = found["matrix"], found["quiet"]
    side = len(matrix)
    # 59 bytes at error correction M need version 4: 33 modules, plus 4 light on each side
    assert quiet == 4 and side == 33 + 2 * quiet
    assert all(len(row) == side for row in matrix)
    ring = [matrix[i][j] for i in range(side) for j in range(side)
            if min(i, j) < quiet or max(i, j) >= side - quiet]
    assert not any(ring)  # the quiet zone is light
    for top, left in ((quiet, quiet), (quiet, side - quiet - 7), (side - quiet - 7, quiet)):
        finder = [matrix[top + i][left + j] for i in range(7) for j in range(7)]
        outline = [matrix[top + i][left + j] for i in range(7) for j in range(7)
                   if i in (0, 6) or j in (0, 6)]
        assert all(outline) and sum(finder) == 24 + 9  # dark ring, light ring, 3x3 core
    data = found["bytes"]
    assert len(data) == side * side and set(data) == {0, 255}
    # GL textures start at the bottom: the first byte row is the matrix's last row
    assert data[:side] == [0 if dark else 255 for dark in matrix[-1]]
    assert data[-side:] == [0 if dark else 255 for dark in matrix[0]]
