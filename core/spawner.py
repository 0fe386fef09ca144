"""The Spawner interface: the life cycle a worker drives, whatever runs the task.

Backends implement it (as Avocado keeps its spawner interface in core, and its backends are
plug-ins): core never imports a backend, it finds them by name through the registry. A handle
is an opaque string (a PID, a container ID, a Slurm job ID, a Pod name): the interface assumes
nothing about where the engine is.

The life cycle of one task, in the order a worker drives it:

    check_task_requirements -> spawn_task -> (refresh, is_task_alive)* -> [terminate_task]
    -> collect_task

`refresh` is one poll for all of a worker's running tasks; `is_task_alive` then answers from
what it saw, without a call of its own. `terminate_task` treats "already gone" as success.
`collect_task` reads the outcome once the task has ended and releases what it held.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from spawnkit.core.copyout import ARTIFACTS_MAX, FileSource, keep_task_files
from spawnkit.core.errors import AdoptError, StartError
from spawnkit.core.secrets import secret_values
from spawnkit.core.shell import ShellSession
from spawnkit.core.task.description import ImageBuild, Task
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.core.task.service import Service
from spawnkit.core.task.stop import DEFAULT_GRACE_PERIOD

if TYPE_CHECKING:
    from spawnkit.core.services import ServiceManager

__all__ = ["ImageRecord", "JobContext", "Spawner", "SpawnerOptions"]


@dataclass(frozen=True)
class JobContext:
    """What a spawner knows of the job it serves."""

    job_id: str
    job_dir: Path
    #: "host:pid:start" of the runner, for labels and garbage collection (core.owner).
    owner: str
    #: The names of every secret a task of the job declares: no task sees one it does not
    #: declare itself, on any backend.
    secret_names: frozenset[str] = frozenset()
    #: Their values: masked in every task's output (a task may print another's).
    masked: tuple[str, ...] = field(default=(), repr=False)
    #: Seconds a task that sets no `timeout` may run (`--timeout`); None: no limit.
    task_timeout: float | None = None

    def masked_for(self, task: Task) -> tuple[str, ...]:
        """The values to mask in `task`'s output: the job's, and the task's own."""
        return tuple(dict.fromkeys([*self.masked, *secret_values(task)]))

    def timeout_of(self, task: Task) -> float | None:
        """`task`'s timeout in seconds, its own or the job's (None: it has none)."""
        return task.timeout or self.task_timeout


@dataclass(frozen=True)
class SpawnerOptions:
    """Settings from the command line that backends may use."""

    engine_url: str | None = None
    image: str | None = None
    keep_containers: bool = False
    #: Keep the containers of tasks that did not pass (`--keep-failed`), labelled as kept.
    keep_failed: bool = False
    #: `spawnkit gc --kept`: also remove kept containers (once their runner is gone).
    reap_kept: bool = False
    #: The clean-up `spawnkit run` makes first: it leaves a dead runner's job that may still
    #: be resumed (core.runs.RESUME_WINDOW); `spawnkit gc` takes it.
    spare_resumable: bool = False
    grace_period: float = DEFAULT_GRACE_PERIOD
    #: Seconds an engine may go without answering before its running tasks end as error.
    engine_down_after: float = 20.0
    #: Bytes of artifacts kept per task (`--artifacts-max`).
    artifacts_max: int = ARTIFACTS_MAX


@dataclass(frozen=True)
class ImageRecord:
    """An image a backend built (`spawnkit images list`)."""

    recipe: str
    tags: tuple[str, ...]
    id: str
    size: int  # bytes
    created: float  # epoch seconds


class Spawner(abc.ABC):
    """Runs tasks somewhere. One instance serves one job (or one `gc`, one image build)."""

    name: ClassVar[str]
    #: How often a worker polls (`refresh`) while tasks run, in seconds.
    poll_interval: ClassVar[float] = 0.05
    #: Whether `build_image` and `list_images` work here (an engine that runs images).
    builds_images: ClassVar[bool] = False
    #: Whether `--engine-url` points it somewhere (a container engine, an API server): a
    #: backend without one refuses the option rather than ignore it.
    takes_engine_url: ClassVar[bool] = False

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        self.options = options or SpawnerOptions()
        self.job: JobContext | None = None
        self._wakers: list[Callable[[], None]] = []
        #: The services of the job it serves, set by the Job: a task's requirement check
        #: waits for them (core.task.lifecycle). None: no job, no services.
        self.services: ServiceManager | None = None

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
        """Release connections. Tasks are already collected (or abandoned: a stop does not
        wait on an engine that does not answer): never wait long here."""

    def stopping(self) -> None:  # noqa: B027 - optional hook
        """The job is stopping: start no new retries of engine calls (a stop must not wait
        on them)."""

    @abc.abstractmethod
    async def check_task_requirements(self, runtime_task: RuntimeTask) -> bool | None:
        """Triage: raise RequirementError if the task cannot run here. (False, an Avocado
        spawner's answer, is taken as a RequirementError too.)"""

    @abc.abstractmethod
    async def spawn_task(self, runtime_task: RuntimeTask) -> bool | None:
        """Start the task: set `spawner_handle` and `spawning_result`. Its stdout and stderr
        go to `runtime_task.output_dir`. Raise StartError if it cannot start. (False, an
        Avocado spawner's answer, is taken as a StartError too.)"""

    async def refresh(self, runtime_tasks: Sequence[RuntimeTask]) -> None:  # noqa: B027
        """One poll for many handles, before `is_task_alive` is asked of each."""

    @abc.abstractmethod
    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        """What the last `refresh` saw of the handle: never a call of its own."""

    def is_task_queued(self, runtime_task: RuntimeTask) -> bool:
        """Spawned but waiting for room to run (a batch system's queue), as the last refresh
        saw it: its timeout counts from when it runs, as the task file's words mean."""
        return False

    @abc.abstractmethod
    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        """TERM to every process of the task, `grace_period` seconds, then KILL.

        "Already gone" is success. Returns once the task has ended (or a bounded wait ran out).
        """

    @abc.abstractmethod
    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        """The ended task's exit; its stdout and stderr are whole in its output folder after.

        Also releases what the task held (a container is removed here). Raises BackendError
        with the engine's words when the outcome cannot be read.
        """

    async def adopt_task(self, runtime_task: RuntimeTask) -> float | None:
        """Re-attach a task an earlier runner of this job started (`spawnkit resume`), from
        the `spawner_handle` and `spawning_result` the journal kept (no handle: the runner
        died while spawning it; a backend that can find it by the job's labels does).
        Returns when its command began (epoch seconds) where the backend knows that was
        after its start (a job that waited in a batch queue), else None: its timeout counts
        from there.

        Afterwards `refresh`, `is_task_alive`, `terminate_task` and `collect_task` treat it
        as one this spawner started: still running, or ended while no runner watched (then
        collected once, its output whole and masked). Raises AdoptError, saying why, when
        it cannot: the task then ends as lost, and the rest of the job runs on.
        """
        raise AdoptError(f"the {self.name} backend cannot take over running tasks",
                         spawner=self.name, handle=runtime_task.spawner_handle)

    async def reap_orphans(self, *, dry_run: bool = False) -> list[str]:
        """Remove what runners that died left behind (`spawnkit gc`); say what, one line each.

        Never touches anything whose runner is alive or that spawnkit did not make.
        """
        return []

    def keep_files(self, runtime_task: RuntimeTask, exit: ExitResult | None,
                   source: FileSource) -> None:
        """Keep the task's JUnit reports and artifacts (its `junit`, `artifacts` keys) from
        where its working folder is, before the backend releases the task; what could not be
        kept becomes a note on it. Blocking: call it off the event loop."""
        task, out_dir = runtime_task.task, runtime_task.output_dir
        if out_dir is None or not (task.junit or task.artifacts):
            return
        # Masked as they are copied: a secret the task wrote there never reaches the disk.
        masked = self.job.masked_for(task) if self.job is not None else secret_values(task)
        kept = keep_task_files(task, exit, source, out_dir,
                               artifacts_max=self.options.artifacts_max,
                               since=runtime_task.spawned_at, masked=masked)
        runtime_task.notes += kept.notes

    def check_host_folder(self, task: Task, folder: str | None) -> None:
        """StartError when the task's working folder as this host sees it (`folder`; None:
        none to check here) does not exist."""
        if folder is not None and not os.path.isdir(folder):
            raise StartError.folder_missing(task.workdir_words, self.name)

    def cannot_run(self, task: Task) -> str | None:
        """Why this backend can never run the task, known before anything runs (a container
        task with no image), or None. The command line refuses such a job at once."""
        return None

    def unenforced(self, task: Task) -> list[str]:
        """Settings of the task that this backend cannot enforce (said, never ignored)."""
        return []

    async def build_image(self, recipe: str, tag: str | None = None) -> tuple[str, str]:
        """Build one of spawnkit's image recipes here: (tag, image ID)."""
        raise NotImplementedError(f"the {self.name} backend builds no images")

    async def list_images(self) -> list[ImageRecord]:
        """The images built here from spawnkit's recipes."""
        raise NotImplementedError(f"the {self.name} backend builds no images")

    async def build_from_file(self, build: ImageBuild, leave_out: Sequence[Path] = ()) -> str:
        """Build an image from a Containerfile (`spawnkit images build --file`), as a task
        file's `[image.NAME]` is built: its tag, which names its content (`leave_out`: folders
        of the context not sent, as a job leaves out its results folder). Its output goes to
        stderr."""
        raise NotImplementedError(f"the {self.name} backend builds no images")

    async def open_shell(self, runtime_task: RuntimeTask, job: JobContext) -> ShellSession:
        """Make ready an interactive shell in the state the ended task left (`spawnkit
        shell`); `runtime_task` is rebuilt from `job`'s journal (handle, spawning result).
        Raises UsageError when there is nothing to look into (a container not kept)."""
        raise NotImplementedError(f"the {self.name} backend has no shell")

    # -- services ([[service]]: core.services drives them) ---------------------------------
    # A backend that runs services sets `runs_services` and implements the hooks below; the
    # defaults say it does not (its `cannot_run` should refuse tasks with services).

    #: Whether the hooks below work here.
    runs_services: ClassVar[bool] = False

    async def start_service(self, service: Service, out_dir: Path) -> str:
        """Start a service of the job: its handle (opaque, as a task's). Its stdout and stderr
        go to `out_dir`, masked as a task's output. Raises StartError (the engine's words)."""
        raise NotImplementedError(f"the {self.name} backend runs no services")

    async def service_alive(self, handle: str) -> bool:
        """Whether the service still runs (a call of its own: asked between readiness tries)."""
        raise NotImplementedError(f"the {self.name} backend runs no services")

    async def service_ready(self, handle: str, service: Service) -> bool:
        """Run `service.ready_argv` once, inside the service (a container's exec; on the host
        for a process): whether it exited 0. The caller bounds the wait."""
        raise NotImplementedError(f"the {self.name} backend runs no services")

    async def stop_service(self, handle: str, grace_period: float) -> ExitResult | None:
        """TERM, `grace_period` seconds, KILL; its output made whole; what it held released.
        How it ended (None: not known). "Already gone" is success; safe to call again (a
        second signal calls it with no grace while the first call waits)."""
        raise NotImplementedError(f"the {self.name} backend runs no services")

    def service_host(self, service_id: str) -> str:
        """The host name a task reaches the service at (SPAWNKIT_SERVICE_<ID>_HOST)."""
        return service_id

    async def end_previous_services(self) -> None:  # noqa: B027 - optional hook
        """A job taken over (`spawnkit resume`): the services its dead runner left are ended,
        so that this runner starts its own as its tasks need them."""

    async def close_services(self) -> None:  # noqa: B027 - optional hook
        """Every service is stopped: release what they shared (a job's network)."""
