"""A task with the state of its life cycle: status, handle, outcome and result."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spawnkit.core.task.description import Task

__all__ = ["ExitResult", "RuntimeTask", "RuntimeTaskStatus", "TaskResult"]


class RuntimeTaskStatus(enum.Enum):
    """The life-cycle words of the original, plus INTERRUPTED."""

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


class TaskResult(enum.Enum):
    """What a user reads: did the task pass?"""

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


@dataclass(frozen=True)
class ExitResult:
    """How a task's process or container ended (after Nomad's ExitResult)."""

    exit_code: int | None
    signal: int | None = None
    oom: bool = False
    error: str | None = None

    @property
    def successful(self) -> bool:
        return self.exit_code == 0 and self.signal is None and not self.oom and not self.error


class RuntimeTask:
    """Task with extra status information on its life cycle status."""

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
        self.result: TaskResult | None = None
        self.reason: str | None = None
        self.exit: ExitResult | None = None
        self.started_at: float | None = None  # wall clock, epoch seconds
        self.ended_at: float | None = None
        self.output_dir: Path | None = None
        self.spawner_name: str | None = None

    @property
    def identifier(self) -> str:
        return self.task.id

    @property
    def dependencies(self) -> tuple[str, ...]:
        return self.task.depends_on

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RuntimeTask) and other.identifier == self.identifier

    def __hash__(self) -> int:
        return hash(self.identifier)

    def __repr__(self) -> str:
        status = self.status.name if self.status else None
        return f"<RuntimeTask {self.identifier!r} status={status} handle={self.spawner_handle}>"
