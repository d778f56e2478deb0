"""Benchmark of the touchscreen app (`evterm ui`) against the whole terminal; one JSON object.

The demo stack (hw_mocks/demo_stack.py: mosquitto, pcscd + vpcd, backend simulator,
station simulator, daemon) with the UI at 800x480 on a private Xvfb (Mesa llvmpipe:
software rendering on this machine's CPU, no GPU). Figures:

- `first_frame_s`: `evterm ui` spawned -> its first frame drawn (the UI's own clock from
  its process start, and from this process: spawn -> the control socket reports a
  first frame). Target < 4 s.
- `rss_mb`: the UI process's resident memory, idle after start and at the end of a
  charging session. Target < 150 MB. `of_which_software_gl`: Mesa's llvmpipe (libLLVM,
  swrast) in it, which a board with a GPU driver does not load.
- `press_to_frame_ms`: a button pressed (the language buttons, as a driver's touch
  through Kivy's press dispatch) -> the next frame drawn with the change. Target
  < 100 ms.
- `frame_ms_while_charging`: while the daemon pushes a state each second of a charging
  session (real time, clock speed 1): `draw_ms`, the time to draw one frame (on_draw to
  the buffer swap), and `update_ms`, the time to turn a state into widget texts
  (build_view and copying it onto the widgets). Kivy draws only when something changed,
  so the interval between frames says nothing of the cost.

    .venv/bin/python bench/bench_ui.py [--presses 60] [--charging-s 20]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stats import percentile, summary

from hw_mocks.demo_stack import DemoStack

TARGET_FIRST_FRAME_S = 4.0
TARGET_RSS_MB = 150.0
TARGET_PRESS_MS = 100.0
LANGUAGES = ("de", "fr", "nl", "en")




def software_gl_rss_mb(pid: int) -> float:
    """Resident memory of Mesa's software renderer (llvmpipe: libLLVM + swrast) in the
    process: what a board with a GPU driver does not carry."""
    total_kb, current = 0, ""
    with open(f"/proc/{pid}/smaps", encoding="utf-8") as smaps:
        for line in smaps:
            if line[0] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                parts = line.split()
                current = parts[5] if len(parts) > 5 else ""
            elif line.startswith("Rss:") and ("libLLVM" in current or "swrast" in current):
                total_kb += int(line.split()[1])
    return total_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=60)
    parser.add_argument("--charging-s", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evbu-") as tmp:
        stack = DemoStack(Path(tmp), speed=1.0, ui_size="800x480", with_ui=False)
        try:
            stack.start()
            spawn_s = time.monotonic()
            ui = stack.start_ui()
            stats = ui.stats()
            while stats.get("first_frame_s") is None:
                time.sleep(0.05)
                stats = ui.stats()
            spawn_to_first_frame_s = time.monotonic() - spawn_s
            time.sleep(1.0)
            rss_idle_mb = ui.stats()["rss_kb"] / 1024
            for i in range(args.presses):
                language = LANGUAGES[i % len(LANGUAGES)]
                ui.press(f"lang_{language}")
                ui.wait_for(f"language {language}", lambda d, lang=language:
                            d["language"] == lang)
            press_ms = ui.stats()["press_to_frame_ms"][-args.presses:]
            stack.tap("rfid-7")
            stack.plug()
            assert stack.rig is not None
            stack.rig.wait_phase("Charging", timeout_s=20)
            ui.wait_screen("charging")
            time.sleep(args.charging_s)  # the stats keep the last 300 frames
            charging = ui.stats()
            rss_charging_mb = charging["rss_kb"] / 1024
            software_gl_mb = software_gl_rss_mb(ui.pid)
            first_frame_s = float(stats["first_frame_s"])
        finally:
            stack.close()
    result = {
        "benchmark": "ui",
        "python": platform.python_version(),
        "screen": "800x480 on Xvfb (Mesa llvmpipe, software rendering)",
        "first_frame_s": {"ui_clock": round(first_frame_s, 2),
                          "spawn_to_reported": round(spawn_to_first_frame_s, 2),
                          "target_s": TARGET_FIRST_FRAME_S,
                          "pass": max(first_frame_s, spawn_to_first_frame_s)
                          < TARGET_FIRST_FRAME_S},
        "rss_mb": {"idle": round(rss_idle_mb, 1), "charging": round(rss_charging_mb, 1),
                   "of_which_software_gl": round(software_gl_mb, 1),
                   "target_mb": TARGET_RSS_MB,
                   "pass": max(rss_idle_mb, rss_charging_mb) < TARGET_RSS_MB},
        "press_to_frame_ms": {**summary(press_ms), "target_ms": TARGET_PRESS_MS,
                              "pass": percentile(press_ms, 0.95) < TARGET_PRESS_MS},
        "frame_ms_while_charging": {"draw_ms": summary(charging["draw_ms"]),
                                    "update_ms": summary(charging["update_ms"])},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
