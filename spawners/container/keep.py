"""Which ended containers stay (`--keep-containers`, `--keep-failed`), and the note that says
so in results.json, with the command that looks inside."""

from __future__ import annotations

import shlex
from pathlib import Path

from spawnkit.core.spawner import SpawnerOptions
from spawnkit.core.task.outcome import ExitResult

__all__ = ["keeps", "kept_note"]


def keeps(options: SpawnerOptions, exit: ExitResult, *, stopped: bool) -> bool:
    """Whether a task's ended container stays: every one with --keep-containers; with
    --keep-failed, one whose task did not pass. That is known from its exit alone, but for a
    task spawnkit stopped (`stopped`: a timeout, --failfast, a stop; or the container
    watchdog's timeout, `exit.timed_out`), which never passes even when it exits 0 on its
    TERM."""
    if options.keep_containers:
        return True
    return options.keep_failed and (stopped or exit.timed_out is not None
                                    or not exit.successful)


def kept_note(container_id: str, job_dir: Path, task_id: str) -> str:
    """The task's note: which container stays, and how to look inside it."""
    return (f"container {container_id[:12]} kept: "
            f"spawnkit shell {shlex.quote(str(job_dir))} {shlex.quote(task_id)}")
