"""Why running tasks stop before their end: one object that records it.

Like trio's cancel scope, a `StopPolicy` says why (the life-cycle status it finishes tasks
with, and a reason in words), which tasks it spares (failfast spares teardowns, so a CI job
still stops the services it started), and how long a task gets between TERM and KILL. A second
signal tightens it to no grace at all; a cancel of the whole job tightens it to spare nothing.
The state machine holds the one policy in force, shared by all its workers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import TaskResult
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus

__all__ = ["DEFAULT_GRACE_PERIOD", "StopPolicy"]

#: Seconds between SIGTERM and SIGKILL unless the user says otherwise (`--grace`).
DEFAULT_GRACE_PERIOD = 5.0


@dataclass(frozen=True)
class StopPolicy:
    """A stop in force: its status (INTERRUPTED, FAILFAST or TIMEOUT), its reason, whom it
    spares, and the grace a running task gets (0: kill now)."""

    status: RuntimeTaskStatus
    why: str
    spare_teardowns: bool = False
    grace_period: float = DEFAULT_GRACE_PERIOD

    @classmethod
    def failfast(cls, why: str, grace_period: float = DEFAULT_GRACE_PERIOD) -> StopPolicy:
        return cls(RuntimeTaskStatus.FAILFAST, why, spare_teardowns=True,
                   grace_period=grace_period)

    @classmethod
    def failfast_after(cls, runtime_task: RuntimeTask,
                       grace_period: float = DEFAULT_GRACE_PERIOD) -> StopPolicy | None:
        """The stop `--failfast` makes once this task finished, if its result calls for one
        (it did not pass, and was not skipped for a dependency: that one already counted)."""
        result = runtime_task.result
        if result is None or result.ok or result is TaskResult.SKIPPED:
            return None
        return cls.failfast(f"--failfast after '{runtime_task.identifier}' {result.value}",
                            grace_period)

    def stops(self, task: Task) -> bool:
        return not (self.spare_teardowns and task.teardown)

    def tightened(self, other: StopPolicy) -> StopPolicy:
        """This policy, sparing no more than `other` does and waiting no longer."""
        return dataclasses.replace(
            self,
            spare_teardowns=self.spare_teardowns and other.spare_teardowns,
            grace_period=min(self.grace_period, other.grace_period),
        )

    def kill_now(self) -> StopPolicy:
        """No more grace: a second signal."""
        return dataclasses.replace(self, grace_period=0.0)

    @property
    def not_run_reason(self) -> str:
        return f"not run: {self.why}"

    def abandoned_reason(self, spawned: bool, backend: str) -> str:
        """A task whose move still waited on an engine past the stop's deadline."""
        why = self.stopped_reason if spawned else self.not_run_reason
        return (f"{why} (the {backend} backend did not answer in time: what it may have left "
                "is removed by 'spawnkit gc')")

    @property
    def stopped_reason(self) -> str:
        if self.status is RuntimeTaskStatus.TIMEOUT:
            return f"timed out: {self.why}"
        return f"interrupted: {self.why}"
