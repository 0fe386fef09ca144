"""Spawnkit tasks as resumable tasks of the scheduler, for plain synchronous code.

`SpawnkitSteps(spawner, job_dir).task(task)` is a generator task: it spawns the task, yields
while it runs, and returns once it passed, or raises `TaskNotPassed`. Drive it with a
`TaskRunner`, or a whole graph of them with `DependencyTaskGroup`. A `Timeout` or a cancel
thrown into it terminates the task (TERM, grace, KILL) before it goes on up. Each task goes
through the same `TaskLifecycle` as a job's tasks do: the same checks, the same masking of
secrets, the same verdict.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Generator
from pathlib import Path
from typing import Any, TypeVar

from spawnkit.core.owner import runner_owner
from spawnkit.core.paths import safe_name
from spawnkit.core.spawner import JobContext, Spawner
from spawnkit.core.task.description import Task
from spawnkit.core.task.lifecycle import TaskLifecycle
from spawnkit.core.task.outcome import ExitResult, TaskResult, judge
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus
from spawnkit.core.task.stop import DEFAULT_GRACE_PERIOD

__all__ = ["SpawnkitSteps", "TaskNotPassed"]

T = TypeVar("T")


class TaskNotPassed(Exception):
    """A spawnkit task ended without passing; `runtime_task` has the result and reason."""

    def __init__(self, runtime_task: RuntimeTask) -> None:
        self.runtime_task = runtime_task
        result = runtime_task.result.value if runtime_task.result else "unknown"
        super().__init__(f"task '{runtime_task.identifier}' {result}: {runtime_task.reason}")


class SpawnkitSteps:
    """Runs spawnkit tasks one scheduler step at a time, on an event loop of its own."""

    def __init__(
        self, spawner: Spawner, job_dir: Path, *, grace_period: float = DEFAULT_GRACE_PERIOD
    ) -> None:
        self.spawner = spawner
        self.job_dir = job_dir
        self.grace_period = grace_period
        self.finished: dict[str, RuntimeTask] = {}
        self._loop = asyncio.new_event_loop()
        job_dir.mkdir(parents=True, exist_ok=True)
        self._run(spawner.open(JobContext(job_dir.name, job_dir, runner_owner())))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(coro)

    def close(self) -> None:
        self._run(self.spawner.close())
        self._loop.close()

    def __enter__(self) -> SpawnkitSteps:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def task(self, task: Task) -> Generator[None, None, RuntimeTask]:
        """The resumable task: one step per poll of the handle."""
        rt = RuntimeTask(task)
        rt.output_dir = self.job_dir / "tasks" / safe_name(task.id)
        lifecycle = TaskLifecycle(rt, self.spawner)
        if self._run(self._begin(lifecycle)):
            try:
                while self._run(self._poll(lifecycle)):
                    yield
            except BaseException:
                # A Timeout, a cancel (GeneratorExit) or an error from the parent: never
                # leave the task running behind us.
                self._run(self._stop(lifecycle))
                raise
            finally:
                self._run(self._collect(lifecycle))
                self.finished[task.id] = rt
        self.finished[task.id] = rt
        if rt.result is not TaskResult.PASSED:
            raise TaskNotPassed(rt)
        return rt

    async def _begin(self, lifecycle: TaskLifecycle) -> bool:
        """Check and spawn; False (the task finished, judged) when either fails."""
        for step, status in ((lifecycle.check, RuntimeTaskStatus.FAIL_TRIAGE),
                             (lifecycle.spawn, RuntimeTaskStatus.FAIL_START)):
            try:
                await step()
            except Exception as exc:
                rt = lifecycle.runtime_task
                rt.status, rt.outcome = status, judge(status, ran=False, error=exc)
                return False
        return True

    async def _poll(self, lifecycle: TaskLifecycle) -> bool:
        await self.spawner.refresh([lifecycle.runtime_task])
        return await lifecycle.alive()

    async def _stop(self, lifecycle: TaskLifecycle) -> None:
        lifecycle.stop(RuntimeTaskStatus.INTERRUPTED, "stopped by the scheduler",
                       self.grace_period)
        await lifecycle.terminated()

    async def _collect(self, lifecycle: TaskLifecycle) -> None:
        exit: ExitResult | None = None
        error: Exception | None = None
        try:
            exit = await lifecycle.collect()
        except Exception as exc:
            error = exc
        rt = lifecycle.runtime_task
        rt.status, rt.outcome = lifecycle.judge(exit, error)
