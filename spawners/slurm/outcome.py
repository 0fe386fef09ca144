"""How a task's Slurm job ended, as an `ExitResult`.

The node program's record (`exit-status`: the command's raw wait status) is exact and comes
first; Slurm's state adds what only it knows (OUT_OF_MEMORY). Without the record, Slurm's
words decide: the batch script's wait status when it names a signal (the engine says so),
OOM, or an error in Slurm's words (NODE_FAIL, the --time backstop, a job that could not
start, a job the controller no longer knows). A signal is never guessed from an exit code.
"""

from __future__ import annotations

import asyncio
import os
import signal as _signal
import time
from dataclasses import dataclass
from pathlib import Path

from spawnkit.core.task.outcome import ExitResult
from spawnkit.spawners.slurm.commands import one_line
from spawnkit.spawners.slurm.node import BEGAN
from spawnkit.spawners.slurm.script import EXIT_STATUS, SLURM_LOG
from spawnkit.spawners.slurm.state import JobState, wait_status_words

__all__ = [
    "NODE_PREFIX",
    "Ending",
    "appears",
    "cancelled_outside",
    "exit_of",
    "log_words",
    "node_said",
    "read_began",
    "read_status",
    "recorded",
]

_SIGNALS = frozenset(int(s) for s in _signal.Signals)
#: How the node program's own lines start in Slurm's output file (spawners/slurm/node.py).
NODE_PREFIX = "spawnkit: "


@dataclass(frozen=True)
class Ending:
    """What the runner knows of one job's end besides Slurm's state."""

    job_id: str
    out_dir: Path
    #: spawnkit told it to stop (TERM, KILL, or an outright cancel).
    stopped: bool = False
    #: spawnkit cancelled it outright (`scancel`), after tagging its comment.
    cancelled: bool = False
    #: The container wrapper found the engine reporting an OOM kill.
    container_oom: bool = False
    #: Slurm's output file is in the task's folder: the job got as far as its node.
    launched: bool = True
    #: The node program said why it recorded no exit (its "spawnkit:" lines).
    node_said: bool = False


def log_words(out_dir: Path, name: str) -> str | None:
    """Why the node program or the output helper failed, from Slurm's output file: their
    own lines (slurmstepd's are kept only when nothing else is there)."""
    try:
        lines = [line.strip() for line in (out_dir / name).read_text(errors="replace")
                 .splitlines() if line.strip()]
    except OSError:
        return None
    said = [line.removeprefix(NODE_PREFIX) for line in lines if line.startswith(NODE_PREFIX)]
    ours = [line for line in lines if not line.startswith("slurmstepd")]
    chosen = said or ours[-3:] or lines[-2:]
    return one_line(" ".join(chosen)) if chosen else None


def _engine_signal(state: JobState) -> int | None:
    """The signal that ended the batch script, as Slurm says. Slurm also puts codes of its
    own there (53: the job could not launch), which are no signal."""
    status = state.wait_status
    if status is None or not os.WIFSIGNALED(status):
        return None
    number = os.WTERMSIG(status)
    return number if number in _SIGNALS else None


def cancelled_outside(state: JobState | None, ending: Ending) -> bool:
    """CANCELLED, and not by spawnkit: by scancel or an administrator (Slurm keeps no name:
    our own cancels tag the comment first)."""
    return (state is not None and state.state == "CANCELLED" and not ending.cancelled
            and ";cancel=" not in state.comment)


def exit_of(
    state: JobState | None, status: int | None, ending: Ending, log: str | None
) -> ExitResult:
    """The exit of a job: `state` as Slurm last reported it (None: it does not know the job),
    `status` the node's record (None: none), `log` the words in Slurm's output file."""
    job = f"Slurm job {ending.job_id}"
    recorded = f" (its command: {wait_status_words(status)})" if status is not None else ""
    name = state.state if state is not None else ""
    # Slurm ended it for reasons of its own: the command's exit is their effect.
    if name == "NODE_FAIL":
        return ExitResult(exit_code=None, error=f"{job} ended {state.words() if state else name}"
                          f": its node failed{recorded}")
    if name == "TIMEOUT":
        return ExitResult(exit_code=None, error=f"{job} ended {state.words() if state else name}"
                          f": Slurm's time limit (a backstop past spawnkit's own timeout, or "
                          f"a site's){recorded}")
    if name in ("BOOT_FAIL", "DEADLINE", "PREEMPTED", "REVOKED"):
        return ExitResult(exit_code=None, error=f"{job} ended {state.words() if state else name}"
                          f"{recorded}")
    if status is not None:
        oom = ending.container_oom or (state is not None and state.state == "OUT_OF_MEMORY")
        note = (f"{job} was cancelled outside spawnkit" if cancelled_outside(state, ending)
                else None)
        if os.WIFSIGNALED(status):
            return ExitResult(exit_code=None, signal=os.WTERMSIG(status), oom=oom, note=note)
        return ExitResult(exit_code=os.waitstatus_to_exitcode(status), oom=oom, note=note)
    if state is None:
        return ExitResult(exit_code=None, error=f"{job} vanished from the controller before its "
                          "exit was recorded (purged, or the controller lost its state)")
    words = state.words()
    if name == "OUT_OF_MEMORY":
        return ExitResult(exit_code=None, oom=True)
    if not ending.launched and name in ("FAILED", "COMPLETED"):
        # slurmstepd could not even open Slurm's output file in the task's folder.
        return ExitResult(exit_code=None, error=(
            f"{job} could not start ({words}): its node cannot write to {ending.out_dir}; "
            "the job folder must be on storage the nodes share"))
    signal = _engine_signal(state)
    if name == "CANCELLED":
        if cancelled_outside(state, ending):
            if signal is not None and state.started and state.node:
                return ExitResult(exit_code=None, signal=signal,
                                  note=f"{job} was cancelled outside spawnkit")
            return ExitResult(exit_code=None, error=f"{job} was cancelled outside spawnkit "
                              f"({words}) before its command ran")
        return ExitResult(exit_code=None, signal=signal)
    if signal is not None:
        # The node program itself was killed (a KILL of its own, the kernel's OOM killer):
        # the engine says by what.
        return ExitResult(exit_code=None, signal=signal)
    if log is not None and ending.node_said:
        return ExitResult(exit_code=None, error=log)  # the node program's own words
    detail = f": {log}" if log else ""
    return ExitResult(exit_code=None, error=f"{job} ended {words} without an exit status of "
                      f"its command{detail}")


# -- the node's record, as a shared folder shows it ---------------------------------------


def read_began(out_dir: Path) -> float | None:
    """When the node began the command (epoch seconds); None when it has not (yet)."""
    try:
        return float((out_dir / BEGAN).read_text())
    except (OSError, ValueError):
        return None


def read_status(out_dir: Path) -> int | None:
    """The command's raw wait status, as the node recorded it; None when it is not there."""
    try:
        return int((out_dir / EXIT_STATUS).read_text())
    except (OSError, ValueError):
        return None


def recorded(state: JobState) -> bool:
    """The node program exited by itself (no signal ended it): it read the exit the helper
    recorded, so the record is there (a shared folder may show it late); but a program a
    signal ended may have recorded nothing."""
    status = state.wait_status
    return status is not None and os.WIFEXITED(status)


def node_said(out_dir: Path) -> bool:
    """The node program said why it recorded no exit (its own lines in Slurm's output)."""
    try:
        text = (out_dir / SLURM_LOG).read_text(errors="replace")
    except OSError:
        return False
    return any(line.startswith(NODE_PREFIX) for line in text.splitlines())


async def appears(path: Path, deadline: float) -> bool:
    """Whether `path` exists, or comes to before `deadline` (monotonic)."""
    while not path.exists():
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.1)
    return True
