"""Small checks shared by the tests."""

from __future__ import annotations

import contextlib
from pathlib import Path

from spawnkit.core.procfs import is_alive

__all__ = ["fill_disk", "pid_alive"]


def pid_alive(pid: int) -> bool:
    """True if the PID exists and is not a zombie: what "left behind" means for a process."""
    return is_alive(pid)


def fill_disk(folder: Path) -> Path:
    """Write a file in `folder` until its file system refuses more; the file's path (remove
    it to give the room back)."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        while True:
            fh.write(b"x" * 65536)
            fh.flush()
    return filler
