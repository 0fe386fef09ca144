"""A command that cannot be executed, said as a container's init says it.

In a container, the engine's init (tini) executes the task's command: one that is not there
ends the container with exit code 127, one that may not be executed with 126, and the init
writes why on the container's stderr. The process and Slurm backends start the command
themselves; they report the same exit codes and the same kind of line, so a task file means
the same thing on every backend (`exit_codes = [127]` in a retry, say).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TypeVar

__all__ = ["cannot_start_line", "start_or_stand_in"]

T = TypeVar("T")


def start_or_stand_in(argv: list[str], start: Callable[[list[str]], T]) -> T:
    """`start(argv)`; when the program itself cannot be executed, `start` of a stand-in that
    says why on stderr and exits as a container's init would. Any other OSError propagates
    (the task could not be started)."""
    try:
        return start(argv)
    except OSError as exc:
        failed = _exec_error(exc, argv[0])
        if failed is None:
            raise
        return start(_stand_in(*failed))


def _exec_error(exc: OSError, program: str) -> tuple[int, str] | None:
    """(exit code, line for stderr) when `exc` says that `program` itself cannot be executed:
    127 not found, 126 not permitted, 1 otherwise (as tini). None when the failure is not the
    command's (no working folder, no memory for a fork): the task could not be started."""
    if exc.filename != program:
        return None
    code = {errno.ENOENT: 127, errno.EACCES: 126}.get(exc.errno or 0, 1)
    return code, cannot_start_line(program, exc.strerror or "")


def cannot_start_line(program: str, why: str) -> str:
    """The line on the task's stderr that says why `program` could not be executed."""
    return f"spawnkit: cannot start {program!r}: {why}"


def _stand_in(code: int, line: str) -> list[str]:
    """A command that writes `line` on stderr and exits with `code`: it runs in the place of
    one that could not be executed, so that the task has a process, an exit and its output."""
    return ["/bin/sh", "-c", 'printf "%s\\n" "$1" >&2; exit "$2"', "sh", line, str(code)]
