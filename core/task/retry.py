"""Retries (a task file's `retry`): whether an ended attempt runs again, and where it is kept.

Every attempt is kept: what it left in the task's folder (output, reports, artifacts) moves to
`attempts/<n>/` before the next one starts, and a `retrying` status entry records how it
ended, for results.json's `attempts` and the JUnit file's flakyFailure/rerunFailure elements
(the elements Maven Surefire writes for a rerun test).
"""

from __future__ import annotations

from typing import Any

from spawnkit.core.results import finished_entry
from spawnkit.core.task.outcome import Cause, Outcome
from spawnkit.core.task.runtime import RuntimeTask

__all__ = ["ATTEMPTS_FOLDER", "attempt_entry", "keep_attempt", "retries"]

#: In a task's folder: one folder per earlier attempt, named by its number (1, 2, ...).
ATTEMPTS_FOLDER = "attempts"


def retries(runtime_task: RuntimeTask, outcome: Outcome, *, stopping: bool) -> bool:
    """Whether the attempt that ended so runs again: its retry policy wants it and the job is
    not stopping (an interrupt or failfast ends what runs; it does not start it again, also
    when a resume carries on the stop of a runner that died within it). A requirement not
    met (a service that ended, found at the start) is met no better the next time."""
    policy = runtime_task.task.retry
    if policy is None or stopping or outcome.cause in (Cause.INTERRUPTED, Cause.REQUIREMENT):
        return False
    exit_code = outcome.exit.exit_code if outcome.exit is not None else None
    return policy.wants(outcome.result.value, exit_code, runtime_task.attempt)


def keep_attempt(runtime_task: RuntimeTask) -> str:
    """Move what the attempt left in the task's folder to `attempts/<n>/`; the folder's path
    relative to the task's folder. Call once the attempt was collected: nothing writes there."""
    folder = f"{ATTEMPTS_FOLDER}/{runtime_task.attempt}"
    out = runtime_task.output_dir
    if out is None or not out.is_dir():
        return folder
    dest = out / folder
    dest.mkdir(parents=True, exist_ok=True)
    for child in list(out.iterdir()):
        if child.name != ATTEMPTS_FOLDER:
            child.rename(dest / child.name)
    return folder


def attempt_entry(runtime_task: RuntimeTask, outcome: Outcome, folder: str) -> dict[str, Any]:
    """The data of a `retrying` status entry: how the attempt ended and where it is kept.
    Under `ended`, not at the top: a top-level `result` is what marks a task finished."""
    ended = finished_entry(runtime_task, outcome)
    # An attempt ends at its entry's time: results.json's attempts have no `ended_at`.
    ended.pop("ended_at", None)
    return {"attempt": runtime_task.attempt, "folder": folder, "ended": ended}
