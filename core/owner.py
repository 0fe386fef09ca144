"""Who runs a job: "host:pid:start", so a dead runner is told apart from a reused PID."""

from __future__ import annotations

import os
import socket

from spawnkit.core.procfs import start_ticks

__all__ = ["owner_alive", "runner_owner"]


def runner_owner(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{start_ticks(pid) or 0}"


def owner_alive(owner: str) -> bool:
    """False only when sure: same host, and that PID is gone or is another process now.

    A runner on another host, or an owner string we cannot read, counts as alive: its
    containers, processes and jobs are never ours to take.
    """
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    ticks = start_ticks(int(pid_text))
    if ticks is None:
        return False
    return not start or start == "0" or str(ticks) == start
