"""A local-API peer running as another user: the work runs in a forked child that drops
to `uid` (setgroups, setgid, setuid) before it connects, so the daemon's SO_PEERCRED
sees that user. Needs root; fails loudly without it."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

NOBODY = 65534


def run_as(uid: int, work: Callable[[], Any]) -> Any:
    """`work()`'s JSON-able result, computed in a child process running as `uid`."""
    assert os.geteuid() == 0, "a peer running as another user needs root"
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only system calls and the modules already loaded
        code = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            result: Any = {"result": work()}
            code = 0
        except BaseException as exc:  # reported to the parent
            result = {"child_error": repr(exc)}
        finally:
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(json.dumps(result).encode())
            os._exit(code)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    outcome = json.loads(data)
    assert "result" in outcome, outcome
    return outcome["result"]
