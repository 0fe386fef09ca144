"""A task with the state of its life cycle: status, handle, and once finished, its outcome."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spawnkit.core.task.description import Task

if TYPE_CHECKING:
    from spawnkit.core.task.outcome import ExitResult, Outcome, TaskResult

__all__ = ["RuntimeTask", "RuntimeTaskStatus", "finishing_status"]


class RuntimeTaskStatus(enum.Enum):
    """The life-cycle words of the original (Avocado's), plus INTERRUPTED."""

    WAIT_DEPENDENCIES = "WAITING DEPENDENCIES"
    WAIT = "WAITING"
    STARTED = "STARTED"
    FINISHED = "FINISHED"
    TIMEOUT = "FINISHED TIMEOUT"
    IN_CACHE = "FINISHED IN CACHE"
    FAILFAST = "FINISHED FAILFAST"
    FAIL_TRIAGE = "FINISHED WITH FAILURE ON TRIAGE"
    FAIL_START = "FINISHED FAILING TO START"
    INTERRUPTED = "FINISHED INTERRUPTED"

    @staticmethod
    def finished_statuses() -> list[RuntimeTaskStatus]:
        return [s for s in RuntimeTaskStatus if s.value.startswith("FINISHED")]

    @property
    def word(self) -> str:
        """The status as the status record and the journal write it."""
        return self.name.lower()


class RuntimeTask:
    """Task with extra status information on its life cycle status."""

    __slots__ = (
        "attempt",
        "execution_timeout",
        "notes",
        "outcome",
        "output_dir",
        "spawned_at",
        "spawner_handle",
        "spawning_result",
        "status",
        "task",
        "tests",
    )

    def __init__(self, task: Task) -> None:
        #: The task to keep additional information about.
        self.task: Task = task
        #: Additional descriptive information about the task status.
        self.status: RuntimeTaskStatus | None = None
        #: Set by a spawner to track the execution: a PID, a container ID, a job ID.
        self.spawner_handle: str | None = None
        #: The result of the spawning of the task (backend data, JSON-serialisable).
        self.spawning_result: dict[str, Any] | None = None
        #: Deadline of the execution, on the worker's monotonic clock.
        self.execution_timeout: float | None = None
        #: The verdict, once the task has finished.
        self.outcome: Outcome | None = None
        #: Where the task's stdout and stderr files go.
        self.output_dir: Path | None = None
        #: What a person should know of how it ran that is no failure (a report not found).
        self.notes: list[str] = []
        #: Test counts of its JUnit reports (tests, failures, errors, skipped), if it had any.
        self.tests: dict[str, int] | None = None
        #: Which run of the task this is: 1, then one more for each retry.
        self.attempt: int = 1
        #: When this attempt's spawn began (epoch seconds): what it wrote is no older.
        self.spawned_at: float | None = None

    def next_attempt(self) -> None:
        """Forget what the last attempt left (its handle, notes, counts): it runs again."""
        self.attempt += 1
        self.spawner_handle = None
        self.spawning_result = None
        self.execution_timeout = None
        self.spawned_at = None
        self.notes = []
        self.tests = None

    @property
    def identifier(self) -> str:
        return self.task.id

    @property
    def dependencies(self) -> tuple[str, ...]:
        return self.task.depends_on

    @property
    def result(self) -> TaskResult | None:
        return None if self.outcome is None else self.outcome.result

    @property
    def reason(self) -> str | None:
        return None if self.outcome is None else self.outcome.reason

    @property
    def exit(self) -> ExitResult | None:
        return None if self.outcome is None else self.outcome.exit

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuntimeTask) and other.task.id == self.task.id

    def __hash__(self) -> int:
        return hash(self.task.id)

    def __repr__(self) -> str:
        status = self.status.name if self.status else None
        return f"<RuntimeTask {self.identifier!r} status={status} handle={self.spawner_handle}>"


def finishing_status(
    status_reason: RuntimeTaskStatus | str | None, reason: str | None
) -> tuple[RuntimeTaskStatus, str | None]:
    """(status, reason) of a task finished with `status_reason`: the original takes a status
    (or its name or value) or a plain string reason; a string finishes as interrupted."""
    if status_reason is None:
        return RuntimeTaskStatus.FINISHED, reason
    if isinstance(status_reason, RuntimeTaskStatus):
        return status_reason, reason
    for status in RuntimeTaskStatus:
        if status_reason in (status.name, status.value):
            return status, reason
    return RuntimeTaskStatus.INTERRUPTED, reason or status_reason
