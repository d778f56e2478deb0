"""systemd's part on a test board (tests/integration/update_rig.py), as its own process.

- evterm.service: runs ROOT/current/venv/bin/evterm daemon (the release `current` points
  at when it starts), again 0.3 s after it exits for any reason (a restart command sends
  it SIGTERM; its pid is in FOLDER/daemon.pid); its stdout (the ready lines) is appended
  to FOLDER/daemon.out, its stderr to FOLDER/daemon.log;
- evterm-update.service: the updater (update_runner.py) once at the start (the boot),
  again when the daemon leaves a request file (evterm-update.path) and when it was
  killed by a signal (Restart=on-failure); its output in FOLDER/updater.log.
The standard library only: it runs the test venv's interpreter without the checkout on
its path, and no daemon it starts gets PYTHONPATH (the release's own code runs).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("--root", "--config", "--state-dir", "--folder", "--clock-speed",
                 "--clock-anchor"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    folder = Path(args.folder)
    request = Path(args.state_dir) / "update-request.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",
                                                            "EVTERM_TEST_PYTHONPATH")}
    env["EVTERM_CLOCK_SYNCED"] = "1"
    updater_env = {**env, "PYTHONPATH": os.environ["EVTERM_TEST_PYTHONPATH"]}
    daemon: subprocess.Popen[bytes] | None = None
    updater: subprocess.Popen[bytes] | None = None
    run_updater = True  # at boot
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    while not stopping:
        if daemon is None or daemon.poll() is not None:
            if daemon is not None:
                print(f"daemon exited with {daemon.returncode}", flush=True)
                time.sleep(0.3)
            evterm = Path(args.root) / "current" / "venv" / "bin" / "evterm"
            with (folder / "daemon.out").open("ab") as out, \
                    (folder / "daemon.log").open("ab") as err:
                daemon = subprocess.Popen(
                    [str(evterm), "--log-level", "INFO", "daemon", "--config", args.config,
                     "--clock-speed", args.clock_speed, "--clock-anchor", args.clock_anchor],
                    stdout=out, stderr=err, env=env, cwd=folder)
            (folder / "daemon.pid").write_text(str(daemon.pid), encoding="ascii")
            print(f"daemon started from {os.path.realpath(evterm)} pid {daemon.pid}",
                  flush=True)
        if updater is not None and updater.poll() is not None:
            print(f"updater exited with {updater.returncode}", flush=True)
            run_updater = run_updater or updater.returncode < 0
            updater = None
        if updater is None and (run_updater or request.exists()):
            run_updater = False
            with (folder / "updater.log").open("ab") as log:
                updater = subprocess.Popen(
                    [sys.executable, str(Path(__file__).with_name("update_runner.py")),
                     "--config", args.config, "--kill-file", str(folder / "kill_at")],
                    stdout=log, stderr=log, env=updater_env, cwd=folder)
        time.sleep(0.1)
    for child in (updater, daemon):
        if child is not None and child.poll() is None:
            child.terminate()
            child.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
