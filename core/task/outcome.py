"""How a task ended, typed: the one place where a finished task's status, exit and error
become its result, and where each result says how it is shown.

`judge()` maps what happened (the life-cycle status a task finished with, its `ExitResult`, an
error) to an `Outcome`: a `TaskResult` a user reads, a `Cause` that says why in one word, and a
reason in words. Every report (summary, progress, JUnit, timeline, GitHub summary) shows a
result through `TaskResult.style`, never through a table of its own.
"""

from __future__ import annotations

import enum
import signal as _signal
from dataclasses import dataclass

from spawnkit.core.errors import BackendError, RequirementError
from spawnkit.core.task.runtime import RuntimeTaskStatus

__all__ = [
    "Cause",
    "ExitResult",
    "Outcome",
    "ResultStyle",
    "TaskResult",
    "describe_exit",
    "judge",
    "signal_name",
]


@dataclass(frozen=True)
class ResultStyle:
    """How one result is shown: terminal colour (click's names), GitHub emoji, timeline fill,
    and the JUnit element it becomes (None: a plain, passing testcase)."""

    colour: str
    icon: str
    fill: str
    junit: str | None


class TaskResult(enum.StrEnum):
    """What a user reads: did the task pass? (nox's result enum owns how it is shown.)

    A str enum: a result is equal to its word ("passed"), as results.json writes it."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    TIMED_OUT = "timed_out"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    NOT_RUN = "not_run"
    LOST = "lost"

    @property
    def ok(self) -> bool:
        return self is TaskResult.PASSED

    @property
    def style(self) -> ResultStyle:
        return _STYLES[self]


_STYLES: dict[TaskResult, ResultStyle] = {
    TaskResult.PASSED: ResultStyle("green", ":white_check_mark:", "#2da44e", None),
    TaskResult.FAILED: ResultStyle("red", ":x:", "#cf222e", "failure"),
    TaskResult.ERROR: ResultStyle("red", ":boom:", "#8e1519", "error"),
    TaskResult.TIMED_OUT: ResultStyle("yellow", ":hourglass:", "#e16f24", "error"),
    TaskResult.SKIPPED: ResultStyle("cyan", ":fast_forward:", "#8c959f", "skipped"),
    TaskResult.INTERRUPTED: ResultStyle("magenta", ":stop_sign:", "#8250df", "error"),
    TaskResult.NOT_RUN: ResultStyle("bright_black", ":white_circle:", "#c9d1d9", "skipped"),
    TaskResult.LOST: ResultStyle("magenta", ":grey_question:", "#bf3989", "error"),
}


class Cause(enum.StrEnum):
    """Why a task's result is what it is, as one word (JUnit's `type` attribute)."""

    EXIT_CODE = "exit_code"  # it ran and exited: 0 passes, anything else fails
    SIGNAL = "signal"  # killed by a signal nobody here sent
    OOM = "oom"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"  # a stop: SIGINT/SIGTERM, a cancel, --failfast
    DEPENDENCY = "dependency"  # skipped: a dependency did not pass
    REQUIREMENT = "requirement"  # triage failed: no image, no secret
    SPAWN_FAILURE = "spawn_failure"
    ENGINE = "engine"  # the backend failed or lost the task
    NOT_RUN = "not_run"
    LOST = "lost"  # the runner died while the task ran
    CACHED = "cached"


@dataclass(frozen=True)
class ExitResult:
    """How a task's process, container or job ended (after Nomad's ExitResult).

    `signal` is set only when a signal is known to have ended it (the backend sent it, or the
    engine says so), never guessed from an exit code above 128.
    """

    exit_code: int | None
    signal: int | None = None
    oom: bool = False
    error: str | None = None
    #: The backend's words on how it ended, where they say more than the exit does (a job
    #: cancelled outside spawnkit): added to the reason, the verdict unchanged.
    note: str | None = None
    #: Epoch seconds it ended, when the backend knows and it is not when it was collected (a
    #: task that ended while no runner watched, taken over by `spawnkit resume`).
    ended_at: float | None = None
    #: Monotonic seconds (this host's: the runner's clock) its command ended, when its collect
    #: came later (what it left in its group had its grace first): its duration ends here.
    ended_mono: float | None = None
    #: Epoch seconds its command began, when the backend knows it is later than its spawn
    #: (a batch job's time in the queue, and the batch system's launch): its duration
    #: counts from here, as its timeout does.
    began_at: float | None = None
    #: The backend knows its command never began (a batch job cancelled in the queue, a Pod
    #: deleted while Pending): a stop then leaves it not run, not interrupted.
    never_ran: bool = False
    #: The backend knows it had ended by itself before spawnkit's stop reached it (the stop
    #: found nothing of it to signal): a backend that learns of an exit late (a kubelet's
    #: status, a second after it) may see a deadline pass first. Judged by this exit, not by
    #: the stop (`TaskLifecycle.status_after`).
    ended_before_stop: bool = False
    #: The backend stopped it at its timeout itself, the runner being gone (a `kill -9`): its
    #: words, the reason of a `timed_out` result (TaskLifecycle.status_after).
    timed_out: str | None = None

    @property
    def successful(self) -> bool:
        return self.exit_code == 0 and self.signal is None and not self.oom and not self.error


@dataclass(frozen=True)
class Outcome:
    """A finished task's verdict: result, cause, reason, and the exit it came from."""

    result: TaskResult
    cause: Cause
    reason: str | None = None
    exit: ExitResult | None = None


def signal_name(number: int) -> str:
    try:
        return _signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(exit: ExitResult) -> str | None:
    if exit.error:
        return exit.error
    if exit.oom:
        words = "killed: out of memory (OOM)"
    elif exit.signal is not None:
        words = f"killed by signal {exit.signal} ({signal_name(exit.signal)})"
    elif exit.exit_code not in (0, None):
        words = f"exit code {exit.exit_code}"
    else:
        return exit.note
    return f"{words}: {exit.note}" if exit.note else words


def _describe_error(error: BaseException) -> str:
    if isinstance(error, BackendError):
        return str(error)
    return f"{type(error).__name__}: {error}"


_STOPS = (RuntimeTaskStatus.INTERRUPTED, RuntimeTaskStatus.FAILFAST)


def judge(
    status: RuntimeTaskStatus,
    *,
    ran: bool,
    exit: ExitResult | None = None,
    error: BaseException | None = None,
    reason: str | None = None,
    skipped: bool = False,
) -> Outcome:
    """The outcome of a task that finishes with `status`.

    `ran`: the task was spawned. A timeout or a stop wins over the exit it caused: a task killed
    on its deadline is timed out, not "killed by SIGKILL"; one that never ran is not run.
    """
    if skipped:
        return Outcome(TaskResult.SKIPPED, Cause.DEPENDENCY, reason)
    if error is not None:
        cause = {
            RuntimeTaskStatus.FAIL_TRIAGE: Cause.REQUIREMENT,
            RuntimeTaskStatus.FAIL_START: Cause.SPAWN_FAILURE,
        }.get(status, Cause.ENGINE)
        if isinstance(error, RequirementError):  # found at the start (a service ended)
            cause = Cause.REQUIREMENT
        return Outcome(TaskResult.ERROR, cause, reason or _describe_error(error), exit)
    if status is RuntimeTaskStatus.TIMEOUT:
        if ran:
            return Outcome(TaskResult.TIMED_OUT, Cause.TIMEOUT, reason or "timed out", exit)
        return Outcome(TaskResult.NOT_RUN, Cause.NOT_RUN, reason or "not run: timed out")
    if status in _STOPS:
        if ran:
            return Outcome(TaskResult.INTERRUPTED, Cause.INTERRUPTED, reason or "interrupted",
                           exit)
        return Outcome(TaskResult.NOT_RUN, Cause.NOT_RUN, reason or "not run")
    if status is RuntimeTaskStatus.FAIL_TRIAGE:
        return Outcome(TaskResult.ERROR, Cause.REQUIREMENT, reason or "requirements not met")
    if status is RuntimeTaskStatus.FAIL_START:
        return Outcome(TaskResult.ERROR, Cause.SPAWN_FAILURE, reason or "failed to start")
    if status is RuntimeTaskStatus.IN_CACHE:
        return Outcome(TaskResult.PASSED, Cause.CACHED, reason)
    if exit is None:
        return Outcome(TaskResult.ERROR, Cause.ENGINE,
                       reason or "finished without an exit status")
    if exit.successful:
        return Outcome(TaskResult.PASSED, Cause.EXIT_CODE, reason, exit)
    if exit.oom:
        return Outcome(TaskResult.ERROR, Cause.OOM, reason or describe_exit(exit), exit)
    if exit.error:
        return Outcome(TaskResult.ERROR, Cause.ENGINE, reason or describe_exit(exit), exit)
    cause = Cause.SIGNAL if exit.signal is not None else Cause.EXIT_CODE
    return Outcome(TaskResult.FAILED, cause, reason or describe_exit(exit), exit)
