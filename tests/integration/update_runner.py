"""`evterm update run` on a test board (tests/integration/update_rig.py), the real one
(the real `fetch_release`), with kill points: the first entry of the JSON list in
--kill-file, `[checkpoint, mode]`, is taken (and removed from the file) when the updater
reaches that checkpoint (terminal.update.updater.CHECKPOINT); mode `updater` kills this
process (kill -9), `power` its whole process group (the supervisor, the daemon: a power
loss).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path


def kill_point(kill_file: Path):  # type: ignore[no-untyped-def]
    def checkpoint(name: str) -> None:
        try:
            entries = json.loads(kill_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        if not entries or entries[0][0] != name:
            return
        mode = entries[0][1]
        kill_file.write_text(json.dumps(entries[1:]), encoding="utf-8")
        print(f"killed at {name} ({mode})", flush=True)
        if mode == "power":
            os.killpg(os.getpgid(0), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
    return checkpoint


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--kill-file", required=True)
    args = parser.parse_args()
    from terminal.cli import main as evterm
    from terminal.update import updater

    updater.CHECKPOINT = kill_point(Path(args.kill_file))
    return evterm(["--log-level", "INFO", "update", "--config", args.config, "run"])


if __name__ == "__main__":
    sys.exit(main())
