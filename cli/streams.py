"""The command's own standard streams: there even when a CI step starts it with one closed
(`2>&-`), and never the cause of its exit status when their reader goes away (`| head`).

A closed standard stream's number is the lowest free one: the first file the run opens (the
event loop's epoll) would take it, and the progress meant for stderr would be written into
that file. A reader gone makes each write fail with EPIPE, which click turns into exit 1, the
status of a task that did not pass: what is left to say then goes to /dev/null instead.
"""

from __future__ import annotations

import contextlib
import os
import select
import stat
import sys
from collections.abc import Iterator
from typing import IO

__all__ = ["ensure_standard_streams", "out_of_room", "reader_gone", "silence", "unless_gone"]

_STREAMS = ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w"))


def ensure_standard_streams() -> None:
    """Open /dev/null in the place of a standard stream that is closed."""
    for fd, name, mode in _STREAMS:
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:  # Python found it closed at start-up
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 - for the process


def reader_gone(stream: IO[str]) -> bool:
    """Whether `stream` is a pipe or socket whose reader has closed it (a write would fail
    with EPIPE): Linux flags such a pipe's writing end with POLLERR, a socket with POLLHUP."""
    try:
        poller = select.poll()
        poller.register(stream.fileno(), select.POLLOUT)
        gone = select.POLLERR | select.POLLHUP
        return any(events & gone for _fd, events in poller.poll(0))
    except (OSError, ValueError):
        return False


def out_of_room(stream: IO[str]) -> bool:
    """Whether `stream` takes no more writes: a file on a full file system, or /dev/full."""
    try:
        fd = stream.fileno()
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            room = os.fstatvfs(fd)
            return room.f_bavail == 0 or room.f_bfree == 0
        return stat.S_ISCHR(mode) and os.path.realpath(f"/proc/self/fd/{fd}") == "/dev/full"
    except (OSError, ValueError):
        return False


def silence(stream: IO[str]) -> None:
    """What is still to be written to `stream` (its reader gone) goes to /dev/null."""
    with contextlib.suppress(OSError, ValueError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, stream.fileno())
        os.close(null)


@contextlib.contextmanager
def unless_gone(stream: IO[str]) -> Iterator[None]:
    """Write to `stream` in the block; a reader gone (EPIPE) silences it, no error."""
    try:
        yield
        stream.flush()
    except BrokenPipeError:
        silence(stream)
