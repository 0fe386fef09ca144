"""The one place where a finished task's status, exit and error become its result."""

from __future__ import annotations

import signal as _signal

from spawnkit.core.errors import SpawnerError
from spawnkit.core.task.runtime import ExitResult, RuntimeTask, RuntimeTaskStatus, TaskResult

__all__ = ["describe_error", "describe_exit", "judge", "signal_name"]


def signal_name(number: int) -> str:
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(exit: ExitResult) -> str | None:
    if exit.error:
        return exit.error
    if exit.oom:
        return "killed: out of memory (OOM)"
    if exit.signal is not None:
        return f"killed by signal {exit.signal} ({signal_name(exit.signal)})"
    if exit.exit_code not in (0, None):
        return f"exit code {exit.exit_code}"
    return None


def describe_error(error: BaseException) -> str:
    if isinstance(error, SpawnerError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def judge(
    runtime_task: RuntimeTask,
    status: RuntimeTaskStatus,
    *,
    exit: ExitResult | None = None,
    error: BaseException | None = None,
    reason: str | None = None,
) -> tuple[TaskResult, str | None]:
    """Result and reason of a task that finishes with `status`.

    Timeouts and interruptions win over the exit they caused: a task killed on its deadline
    is timed out, not "killed by SIGKILL".
    """
    ran = runtime_task.spawner_handle is not None
    if error is not None:
        return TaskResult.ERROR, reason or describe_error(error)
    if status is RuntimeTaskStatus.TIMEOUT:
        return TaskResult.TIMED_OUT, reason or "timed out"
    if status in (RuntimeTaskStatus.INTERRUPTED, RuntimeTaskStatus.FAILFAST):
        if ran:
            return TaskResult.INTERRUPTED, reason or "interrupted"
        return TaskResult.NOT_RUN, reason or "not run"
    if status in (RuntimeTaskStatus.FAIL_TRIAGE, RuntimeTaskStatus.FAIL_START):
        return TaskResult.ERROR, reason or status.value.lower()
    if status is RuntimeTaskStatus.IN_CACHE:
        return TaskResult.PASSED, reason
    if exit is None:
        return TaskResult.ERROR, reason or "finished without an exit status"
    if exit.successful:
        return TaskResult.PASSED, reason
    if exit.oom or exit.error:
        return TaskResult.ERROR, reason or describe_exit(exit)
    return TaskResult.FAILED, reason or describe_exit(exit)
