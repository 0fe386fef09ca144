"""Small checks shared by the tests."""

from __future__ import annotations

import contextlib
from pathlib import Path

from spawnkit.core.procfs import is_alive

__all__ = ["fill_disk", "pid_alive", "processes_with"]


def pid_alive(pid: int) -> bool:
    """True if the PID exists and is not a zombie: what "left behind" means for a process."""
    return is_alive(pid)


def processes_with(*words: str) -> list[int]:
    """PIDs of this host's live processes whose command line holds each of `words` (as
    whole arguments)."""
    wanted = {w.encode() for w in words}
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = set((entry / "cmdline").read_bytes().split(b"\0"))
        except OSError:
            continue
        if wanted <= argv and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def fill_disk(folder: Path) -> Path:
    """Write a file in `folder` until its file system refuses more; the file's path (remove
    it to give the room back)."""
    filler = folder / "filler"
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        while True:
            fh.write(b"x" * 65536)
            fh.flush()
    return filler
