"""The Spawner interface: the life cycle a worker drives, whatever runs the task.

A handle is an opaque string (a PID, a container ID, later a batch system's job ID): the
interface assumes nothing about where the engine is.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from spawnkit.core.errors import EngineUnavailable, RequirementError, SpawnerError, SpawnError
from spawnkit.core.task.description import Task
from spawnkit.core.task.runtime import ExitResult, RuntimeTask

__all__ = [
    "EngineUnavailable",
    "ExitResult",
    "JobContext",
    "RequirementError",
    "SpawnError",
    "Spawner",
    "SpawnerError",
    "SpawnerOptions",
]


@dataclass(frozen=True)
class JobContext:
    """What a spawner knows of the job it serves."""

    job_id: str
    job_dir: Path
    owner: str  # "host:pid" of the runner, for labels and garbage collection


@dataclass(frozen=True)
class SpawnerOptions:
    """Settings from the command line that backends may use."""

    engine_url: str | None = None
    image: str | None = None
    keep_containers: bool = False
    grace_period: float = 5.0
    #: Seconds an engine may go without answering before its running tasks end as error.
    engine_down_after: float = 20.0
    extra: dict[str, str] = field(default_factory=dict)


class Spawner(abc.ABC):
    """Runs tasks somewhere. One instance serves one job."""

    name: ClassVar[str]
    #: How often the worker should poll `is_task_alive` while tasks run, in seconds.
    poll_interval: ClassVar[float] = 0.05

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        self.options = options or SpawnerOptions()
        self.job: JobContext | None = None
        self._wakers: list[Callable[[], None]] = []

    def add_waker(self, waker: Callable[[], None]) -> None:
        """Register a callback run when a task may have ended (a worker polls at once)."""
        self._wakers.append(waker)

    def notify(self) -> None:
        """A backend that learns of an exit by an event, not a poll, calls this."""
        for waker in self._wakers:
            waker()

    async def open(self, job: JobContext | None) -> None:
        """Connect and check the engine; raise EngineUnavailable before anything runs.

        `job` is None when no job runs (garbage collection, image builds).
        """
        self.job = job

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections. Tasks are already collected."""

    @abc.abstractmethod
    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        """Triage: raise RequirementError if the task cannot run here."""

    @abc.abstractmethod
    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        """Start the task; set `spawner_handle`. Raise SpawnError if it cannot start."""

    async def refresh(self, runtime_tasks: Sequence[RuntimeTask]) -> None:  # noqa: B027
        """One poll for many handles, before `is_task_alive` is asked of each."""

    @abc.abstractmethod
    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        """A cheap poll of the handle; never blocks the event loop."""

    @abc.abstractmethod
    async def wait_task(self, runtime_task: RuntimeTask) -> None:
        """Return once the task has ended."""

    @abc.abstractmethod
    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        """A polite signal, `grace_period` seconds, then kill. "Already gone" is success."""

    @abc.abstractmethod
    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        """The ended task's outcome; its stdout and stderr are in its output folder after.

        Also releases what the task held (a container is removed here).
        """

    async def reap_orphans(self, *, dry_run: bool = False) -> list[str]:
        """Remove what runners that died left behind (`spawnkit gc`); say what, one line each.

        Never touches anything whose runner is alive or that spawnkit did not make.
        """
        return []

    def unenforced(self, task: Task) -> list[str]:
        """Settings of the task that this backend cannot enforce (said, never ignored)."""
        return []
