"""`python -m flows.watchdog PARENT CHILD`: stop process CHILD once PARENT, the process that started it, is gone.

A stage starts one next to its temporary Prefect server, so a stage killed on its own (SIGKILL, the OOM killer)
leaves no server behind. It runs in its own session, so a Ctrl-C to the stage's group does not stop it early,
and it imports nothing heavy.
"""
from __future__ import annotations

import os
import signal
import sys
import time


def alive(pid: int) -> bool:
    """Whether `pid` exists (a zombie counts as gone where /proc says so)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def watch(parent: int, child: int, poll: float = 0.5) -> None:
    """Wait while both live; if the parent went first, terminate the child, and kill it after 5 s."""
    while os.getppid() == parent and alive(child):  # a dead parent's children are handed to another process
        time.sleep(poll)
    if not alive(child):
        return
    os.kill(child, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    if alive(child):
        os.kill(child, signal.SIGKILL)


if __name__ == "__main__":
    watch(int(sys.argv[1]), int(sys.argv[2]))
