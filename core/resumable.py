"""Spawnkit tasks as resumable tasks of the scheduler, for plain synchronous code.

`SpawnkitSteps(spawner, job_dir).task(task)` is a generator task: it spawns the task, yields
while it runs, and returns once it passed, or raises `TaskNotPassed`. Drive it with a
`TaskRunner`, or a whole graph of them with `DependencyTaskGroup`. A `Timeout` or a cancel
thrown into it terminates the task (TERM, grace, KILL) before it goes on up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from pathlib import Path
from typing import Any

from spawnkit.core.owner import runner_owner
from spawnkit.core.paths import safe_name
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import judge
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus, TaskResult
from spawnkit.spawners.base import JobContext, Spawner

__all__ = ["SpawnkitSteps", "TaskNotPassed"]


class TaskNotPassed(Exception):
    """A spawnkit task ended without passing; `runtime_task` has the result and reason."""

    def __init__(self, runtime_task: RuntimeTask) -> None:
        self.runtime_task = runtime_task
        result = runtime_task.result.value if runtime_task.result else "unknown"
        super().__init__(f"task '{runtime_task.identifier}' {result}: {runtime_task.reason}")


class SpawnkitSteps:
    """Runs spawnkit tasks one scheduler step at a time, on a loop of its own."""

    def __init__(self, spawner: Spawner, job_dir: Path, *, grace_period: float = 5.0) -> None:
        self.spawner = spawner
        self.job_dir = job_dir
        self.grace_period = grace_period
        self.finished: dict[str, RuntimeTask] = {}
        self._loop = asyncio.new_event_loop()
        job_dir.mkdir(parents=True, exist_ok=True)
        self._run(spawner.open(JobContext(job_dir.name, job_dir, runner_owner())))

    def _run(self, coro: Any) -> Any:
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
        self._run(self.spawner.check_task_requirements(rt))
        self._run(self.spawner.spawn_task(rt))
        status = RuntimeTaskStatus.FINISHED
        try:
            while self._run(self.spawner.is_task_alive(rt)):
                yield
        except BaseException:
            # A Timeout, a cancel (GeneratorExit) or an error from the parent: never leave
            # the task running behind us.
            status = RuntimeTaskStatus.INTERRUPTED
            self._run(self.spawner.terminate_task(rt, self.grace_period))
            raise
        finally:
            exit = self._run(self.spawner.collect_task(rt))
            rt.exit, rt.status = exit, status
            rt.result, rt.reason = judge(rt, status, exit=exit)
            self.finished[task.id] = rt
        if rt.result is not TaskResult.PASSED:
            raise TaskNotPassed(rt)
        return rt
