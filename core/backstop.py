"""The marks in a task's output folder between a backend's backstop (the process backend's
task supervisor, the container watchdog) and runners: `timed-out`, left when the backstop
stopped the task at its deadline because no runner was left to (the runner that takes the
job over, `spawnkit resume`, reads it and reports the task timed out, not killed by a signal
nobody explains); `kill-at`, left by a resume that stops a task it took over, for the
backstop that still has the task to KILL it should that resume die within the grace.

Imports nothing of spawnkit but core.paths: the helpers that write it start fast.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from spawnkit.core.paths import write_atomic

__all__ = ["KILL_AT", "TIMED_OUT", "clear_timed_out", "kill_due", "mark_kill_at",
           "mark_timed_out", "timed_out_reason"]

#: The file in a task's output folder: the timeout it was stopped at, in seconds.
TIMED_OUT = "timed-out"
#: The file in a task's output folder: when (epoch seconds) its KILL is due.
KILL_AT = "kill-at"


def mark_kill_at(out_dir: Path, when: float) -> None:
    """A stop began: the task's KILL is due at `when` (best effort)."""
    with contextlib.suppress(OSError):
        write_atomic(out_dir / KILL_AT, f"{when:.3f}\n".encode(), make_folder=False)


def kill_due(out_dir: Path, now: float) -> bool:
    """Whether a stop a runner began is past its grace (`now`: epoch seconds)."""
    try:
        return now >= float((out_dir / KILL_AT).read_text())
    except (OSError, ValueError):
        return False


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
