"""Who runs a job: "host:pid:start", so a dead runner is told apart from a reused PID."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["owner_alive", "runner_owner", "stat_fields"]


def stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state is [0], pgrp [2], start [19])."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name may hold spaces and parentheses: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def _start_ticks(pid: int) -> str | None:
    fields = stat_fields(pid)
    return fields[19] if fields and fields[0] not in ("Z", "X") else None


def runner_owner(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or 0}"


def owner_alive(owner: str) -> bool:
    """False only when sure: same host, and that PID is gone or is another process now.

    A runner on another host, or an owner string we cannot read, counts as alive: its
    containers and processes are never ours to take.
    """
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return True
    ticks = _start_ticks(int(pid_text))
    if ticks is None:
        return False
    return not start or start == "0" or ticks == start
