"""The mark a backend's backstop leaves in a task's output folder when it stopped the task at
its deadline because no runner was left to (the process backend's task supervisor, the
container watchdog): the runner that takes the job over (`spawnkit resume`) reads it and
reports the task timed out, not killed by a signal nobody explains.

Imports nothing of spawnkit but core.paths: the helpers that write it start fast.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from spawnkit.core.paths import write_atomic

__all__ = ["TIMED_OUT", "clear_timed_out", "mark_timed_out", "timed_out_reason"]

#: The file in a task's output folder: the timeout it was stopped at, in seconds.
TIMED_OUT = "timed-out"


def mark_timed_out(out_dir: Path, timeout: float) -> None:
    """Say so before the stop (a helper killed in between leaves the mark, not a stop that
    nothing explains); best effort, a full disk only loses the words."""
    with contextlib.suppress(OSError):
        write_atomic(out_dir / TIMED_OUT, f"{timeout:g}\n".encode(), make_folder=False)


def clear_timed_out(out_dir: Path) -> None:
    """The task had ended by itself when the stop came: its own exit stands."""
    with contextlib.suppress(OSError):
        (out_dir / TIMED_OUT).unlink(missing_ok=True)


def timed_out_reason(out_dir: Path, stopped_by: str) -> str | None:
    """The reason of a `timed_out` result for a task whose folder holds the mark (None when it
    does not), `stopped_by` naming what stopped it ("the task supervisor")."""
    try:
        timeout = float((out_dir / TIMED_OUT).read_text())
    except (OSError, ValueError):
        return None
    return f"timed out after {timeout:g} s (stopped by {stopped_by}: no runner was watching)"
