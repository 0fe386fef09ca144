"""Small checks shared by the tests."""

from __future__ import annotations

from spawnkit.core.procfs import is_alive

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """True if the PID exists and is not a zombie: what "left behind" means for a process."""
    return is_alive(pid)
