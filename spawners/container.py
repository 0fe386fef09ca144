"""What the Docker and Podman backends share: the task life cycle over an `Engine`.

Every engine call is blocking (the SDKs are), so each runs in a thread pool of this spawner,
sized for many tasks at once, never on the event loop. Liveness costs one engine call per poll
for all the job's containers (a listing by the job's label), not one per container.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

from spawnkit.core.errors import RequirementError, SpawnerError, SpawnError
from spawnkit.core.owner import owner_alive
from spawnkit.core.paths import safe_name
from spawnkit.core.secrets import secret_env
from spawnkit.core.task.outcome import signal_name
from spawnkit.core.task.runtime import ExitResult, RuntimeTask
from spawnkit.spawners.base import JobContext, Spawner, SpawnerOptions
from spawnkit.spawners.engine import (
    ALIVE_STATES,
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    Engine,
    MountSpec,
    engine_message,
    status_code,
)
from spawnkit.spawners.isolation import applied_settings, isolation_of
from spawnkit.spawners.outage import EngineWatch
from spawnkit.spawners.threads import DaemonThreadPool

__all__ = [
    "LABEL_JOB",
    "LABEL_KEEP",
    "LABEL_MANAGED",
    "LABEL_OWNER",
    "LABEL_TASK",
    "WORKSPACE_TARGET",
    "ContainerSpawner",
]

LOG = logging.getLogger(__name__)

T = TypeVar("T")

LABEL_MANAGED = "spawnkit.managed"
LABEL_JOB = "spawnkit.job"
LABEL_TASK = "spawnkit.task"
LABEL_OWNER = "spawnkit.owner"
#: On containers kept on purpose (--keep-containers): once ended, gc leaves them be.
LABEL_KEEP = "spawnkit.keep"

#: Where a task's `workspace` folder is mounted, and its working folder unless it sets `cwd`.
WORKSPACE_TARGET = "/workspace"

#: Threads for engine calls: enough that a spawn never waits for another task's call.
ENGINE_THREADS = 32

_SIGKILL_EXIT = 128 + 9

#: Engine words for a container made but not started (Docker says created; Podman also
#: configured or initialized on the way).
BEING_MADE = frozenset({"created", "configured", "initialized"})


class ContainerSpawner(Spawner):
    """Runs each task in a container of an `Engine`; handle = the full container ID."""

    engine_class: ClassVar[type[Engine]]
    #: One listing of the job's containers per poll. A quarter second keeps spawnkit's own CPU
    #: far under 5% of a core while tasks run, and sees an exit soon enough.
    poll_interval = 0.25
    #: Bounded wait for a SIGKILLed container to be reported as ended.
    kill_wait: ClassVar[float] = 10.0
    #: A container still being made (created, not started) is never reaped as an orphan
    #: before this age, whoever its owner: its runner may be between create and start.
    orphan_grace: ClassVar[float] = 5.0

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        super().__init__(options)
        self.engine: Engine = self.engine_class(self.options.engine_url, pool_size=ENGINE_THREADS)
        self._executor: DaemonThreadPool | None = None
        self._images: dict[str, asyncio.Future[str | None]] = {}  # image -> problem, or None
        self._snapshot: dict[str, str] = {}
        self._snapshot_taken = float("-inf")  # monotonic time the listing was asked for
        self._snapshot_lock = asyncio.Lock()
        self._spawned: dict[str, float] = {}  # handle -> monotonic time its start returned
        self._started_wall: dict[str, float] = {}  # handle -> epoch time before its start
        self._terminated: set[str] = set()  # handles this spawner signalled
        self._watch = EngineWatch(self.options.engine_down_after)
        self._listing: asyncio.Future[list[ContainerSummary]] | None = None  # asked, unanswered
        self._listing_asked = float("-inf")
        #: Set once the engine has answered no listing for engine_down_after seconds.
        self._down: SpawnerError | None = None
        #: Containers seen ending across an outage: handle -> what the engine said then.
        self._outage_victims: dict[str, str] = {}
        #: Containers whose removal failed (the engine away for a moment): close() tries again.
        self._leftovers: set[str] = set()

    # -- engine calls, off the event loop ----------------------------------------------------

    async def _call(
        self, fn: Callable[..., T], *args: Any, idempotent: bool = True, retry: bool = True
    ) -> T:
        if self._executor is None:
            self._executor = DaemonThreadPool(
                ENGINE_THREADS, thread_name_prefix=f"spawnkit-{self.name}"
            )
        call = (
            functools.partial(self.engine.retry, fn, *args, idempotent=idempotent)
            if retry
            else functools.partial(fn, *args)
        )
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def _error(
        self, cls: type[SpawnerError], message: str, exc: BaseException, handle: str | None = None
    ) -> SpawnerError:
        return cls(message, spawner=self.name, handle=handle, engine_message=engine_message(exc))

    # -- job ----------------------------------------------------------------------------------

    async def open(self, job: JobContext | None) -> None:
        await super().open(job)
        await self._call(self.engine.open, retry=False)

    async def close(self) -> None:
        listing, self._listing = self._listing, None
        if listing is not None:
            # A listing nobody waits for now (a daemon that never replied): its failure, if
            # any, is read here rather than reported as never retrieved.
            listing.cancel()
            listing.add_done_callback(lambda f: f.cancelled() or f.exception())
        if self._leftovers and self._down is None and self._executor is not None:
            await self._remove_leftovers()
        if self._executor is not None:
            with contextlib.suppress(Exception):
                await self._call(self.engine.close, retry=False)
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def _remove_leftovers(self) -> None:
        leftovers, self._leftovers = sorted(self._leftovers), set()
        removals = [asyncio.ensure_future(self._call(self.engine.remove, h)) for h in leftovers]
        # Bounded: a job's end never waits long on an engine that went away again.
        await asyncio.wait(removals, timeout=self.kill_wait)
        for handle, removal in zip(leftovers, removals, strict=True):
            if removal.done() and removal.exception() is None:
                continue
            removal.cancel()
            LOG.warning("%s: container %s is left to 'spawnkit gc'", self.name, handle[:12])

    def _job(self) -> JobContext:
        if self.job is None:
            raise SpawnerError("spawner used before open()", spawner=self.name)
        return self.job

    def _job_label(self) -> str:
        return f"{LABEL_JOB}={self._job().job_id}"

    # -- triage -------------------------------------------------------------------------------

    def image_of(self, runtime_task: RuntimeTask) -> str | None:
        return runtime_task.task.image or self.options.image

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        image = self.image_of(runtime_task)
        if image is None:
            raise RequirementError(
                f"no image for a {self.name} task: set 'image' in the task or [defaults], "
                "or give --image",
                spawner=self.name,
            )
        # Once per image per job; tasks triaged meanwhile wait for the same answer.
        check = self._images.get(image)
        if check is None:
            check = self._images[image] = asyncio.ensure_future(self._ensure_image(image))
        problem = await asyncio.shield(check)
        if problem is not None:
            raise RequirementError(
                f"image '{image}' is not on the {self.name} engine and cannot be pulled",
                spawner=self.name,
                engine_message=problem,
            )

    async def _ensure_image(self, image: str) -> str | None:
        """None when the image is there (pulled if need be), else the engine's reason."""
        try:
            if await self._call(self.engine.image_exists, image):
                return None
            LOG.info("%s: pulling %s", self.name, image)
            await self._call(self.engine.pull, image, idempotent=False)
        except Exception as exc:
            return engine_message(exc)
        return None

    # -- spawn --------------------------------------------------------------------------------

    def container_spec(self, runtime_task: RuntimeTask) -> ContainerSpec:
        """The container of a task: its command, environment, labels, limits and isolation.

        Secrets go into the container's environment and nowhere else: not its labels, name or
        command.
        """
        job = self._job()
        task = runtime_task.task
        limits = task.limits
        image = self.image_of(runtime_task)
        if image is None:
            raise SpawnError("task has no image", spawner=self.name)
        mounts = [MountSpec(m.target, m.source, m.read_only) for m in limits.mounts]
        workdir = task.cwd
        if limits.workspace:
            mounts.append(MountSpec(WORKSPACE_TARGET, limits.workspace, limits.workspace_read_only))
            workdir = workdir or WORKSPACE_TARGET
        if limits.read_only:
            # A read-only root still needs somewhere to write scratch files.
            mounts.append(MountSpec("/tmp"))
        labels = {
            LABEL_MANAGED: "true",
            LABEL_JOB: job.job_id,
            LABEL_TASK: task.id,
            LABEL_OWNER: job.owner,
        }
        if self.options.keep_containers:
            labels[LABEL_KEEP] = "true"
        isolation = isolation_of(limits)
        return ContainerSpec(
            image=image,
            command=task.argv,
            name=f"spawnkit-{job.job_id}-{safe_name(task.id)}",
            env={**task.environment, **secret_env(task)},
            workdir=workdir,
            labels=labels,
            cpus=limits.cpus,
            memory=limits.memory,
            pids=isolation.pids,
            network=limits.network,
            user=limits.user,
            read_only=bool(limits.read_only),
            privileged=isolation.privileged,
            cap_add=isolation.cap_add,
            cap_drop=isolation.cap_drop,
            mounts=tuple(mounts),
            security_opt=isolation.security_opt,
        )

    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        if self._down is not None:
            # Each try would cost a round of retries, or hang on a daemon that never replies.
            raise SpawnError(
                f"not started: {self._down.message}",
                spawner=self.name,
                engine_message=self._down.engine_message,
            )
        out_dir = runtime_task.output_dir
        if out_dir is None:
            raise SpawnError("task has no output folder", spawner=self.name)
        out_dir.mkdir(parents=True, exist_ok=True)
        spec = self.container_spec(runtime_task)
        try:
            container_id = await self._call(self._create, spec, idempotent=False)
        except Exception as exc:
            raise self._error(
                SpawnError, f"cannot create a container of '{spec.image}'", exc
            ) from exc
        started_wall = time.time()
        try:
            await self._call(self.engine.start, container_id, idempotent=False)
        except Exception as exc:
            # Nothing of a task that never ran stays on the engine (the start's answer may be
            # what was lost: the container may run).
            try:
                await self._call(self.engine.remove, container_id)
            except Exception:
                self._leftovers.add(container_id)
            raise self._error(
                SpawnError, f"cannot start container {container_id[:12]}", exc, container_id
            ) from exc
        self._spawned[container_id] = time.monotonic()
        self._started_wall[container_id] = started_wall
        runtime_task.spawner_handle = container_id
        runtime_task.spawning_result = {
            "container_id": container_id,
            "name": spec.name,
            "image": spec.image,
            "engine": self.engine.name,
            "engine_url": self.engine.url,
            "applied": applied_settings(spec),
        }

    def _create(self, spec: ContainerSpec) -> str:
        """Create; a name already taken by this very task's container (a create retried after
        its answer was lost) is that container, not a failure."""
        try:
            return self.engine.create(spec)
        except Exception as exc:
            if status_code(exc) != 409 or spec.name is None:
                raise
            existing = self.engine.inspect(spec.name)
            if existing is None or existing.labels.get(LABEL_JOB) != spec.labels[LABEL_JOB]:
                raise
            if existing.status != "created":
                raise
            return existing.id

    # -- monitor ------------------------------------------------------------------------------

    async def refresh(self, runtime_tasks: Sequence[RuntimeTask]) -> None:
        # The worker may poll more often than poll_interval (after every move it makes): a
        # fresh enough listing serves those polls too, so the engine sees one call per interval.
        async with self._snapshot_lock:
            now = time.monotonic()
            if now - self._snapshot_taken < self.poll_interval * 0.9:
                return
            if self._listing is None:
                self._listing_asked = now
                self._watch.asked(now)
                self._listing = asyncio.ensure_future(
                    self._call(self.engine.containers, self._job_label())
                )
                self._listing.add_done_callback(lambda _: self.notify())
            listing = self._listing
            # A daemon that never replies must not stall the worker's other moves: wait one
            # poll at most, and look again at the next (the wait still counts towards down).
            done, _ = await asyncio.wait({listing}, timeout=self.poll_interval)
            if done:
                self._listing = None
                self._read_listing(listing)
            self._check_down()

    def _read_listing(self, listing: asyncio.Future[list[ContainerSummary]]) -> None:
        try:
            listed = listing.result()
        except Exception as exc:
            message = engine_message(exc)
            if self._watch.current is None:
                LOG.warning(
                    "%s: the engine does not answer (%s); its running tasks end as error if "
                    "it stays so for %g s", self.name, message, self._watch.down_after,
                )
            self._watch.failed(message)
            return
        fresh = {c.id: c.status for c in listed}
        outage = self._watch.answered()
        if outage is not None and outage.until is not None:
            LOG.warning(
                "%s: the engine answers again, after %.1f s", self.name, outage.until - outage.since
            )
            # A daemon's restart kills its containers: those alive before the outage and
            # ended after it may have died of it, not of their own doing (see _collect).
            for handle, status in self._snapshot.items():
                if status in ALIVE_STATES and fresh.get(handle) not in ALIVE_STATES:
                    self._outage_victims[handle] = outage.message
        self._down = None
        self._snapshot = fresh
        self._snapshot_taken = self._listing_asked

    def _check_down(self) -> None:
        if self._down is not None:
            return
        outage = self._watch.down()
        if outage is None:
            return
        self._down = SpawnerError(
            f"the {self.engine.name} engine at {self.engine.url} has not answered for "
            f"{self._watch.down_after:g} s ({outage.message})",
            spawner=self.name,
            engine_message=outage.message,
        )
        LOG.warning("%s: %s: its running tasks end as error", self.name, self._down)

    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        handle = runtime_task.spawner_handle
        if handle is None:
            return False
        if self._down is not None:
            return False  # collect_task says why
        # A container started after the listing was asked for is not in it yet.
        if self._spawned.get(handle, float("-inf")) >= self._snapshot_taken:
            return True
        state = self._snapshot.get(handle)
        return state is not None and state in ALIVE_STATES

    async def wait_task(self, runtime_task: RuntimeTask) -> None:
        if runtime_task.spawner_handle is not None:
            await self._wait_ended(runtime_task.spawner_handle, float("inf"))

    async def _wait_ended(self, handle: str, within: float) -> bool:
        """True once the container has ended (or is gone), False after `within` seconds."""
        deadline = time.monotonic() + within
        step = min(0.1, max(within / 10, 0.02))
        while True:
            state = await self._call(self.engine.inspect, handle)
            if state is None or not state.running:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(step)

    # -- terminate ----------------------------------------------------------------------------

    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        handle = runtime_task.spawner_handle
        if handle is None or self._down is not None:
            # Down: nothing reaches the container now. collect_task says so, and `spawnkit gc`
            # removes it once the engine is back (its runner is gone by then).
            return
        self._terminated.add(handle)
        try:
            if not await self._call(self.engine.kill, handle, "SIGTERM", idempotent=False):
                return  # ended already, or gone
            if await self._wait_ended(handle, grace_period):
                return
            await self._call(self.engine.kill, handle, "SIGKILL", idempotent=False)
            await self._wait_ended(handle, self.kill_wait)
        except Exception as exc:
            raise self._error(
                SpawnerError, f"cannot stop container {handle[:12]}", exc, handle
            ) from exc

    # -- orphans ------------------------------------------------------------------------------

    async def reap_orphans(self, *, dry_run: bool = False) -> list[str]:
        """Remove spawnkit's containers whose runner died (on this host; see owner_alive)."""
        listed = await self._call(self.engine.containers, f"{LABEL_MANAGED}=true")
        said = []
        now = time.time()
        for container in listed:
            owner = container.labels.get(LABEL_OWNER, "")
            if not owner or owner_alive(owner):
                continue
            # Only a container not yet started may be half made; a running or ended one of a
            # dead runner goes at once.
            if container.status in BEING_MADE and now - container.created < self.orphan_grace:
                continue
            if container.labels.get(LABEL_KEEP) == "true" and not container.running:
                continue
            job_id = container.labels.get(LABEL_JOB, "?")
            task_id = container.labels.get(LABEL_TASK, "?")
            said.append(f"container {container.id[:12]} (job {job_id}, task {task_id})")
            if not dry_run:
                await self._call(self.engine.remove, container.id)
        return said

    # -- collect ------------------------------------------------------------------------------

    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        handle = runtime_task.spawner_handle
        if handle is None:
            return ExitResult(exit_code=None, error="task was never started")
        try:
            if self._down is not None:
                raise SpawnerError(
                    f"{self._down.message}: container {handle[:12]} is removed by "
                    "'spawnkit gc' once the engine is back",
                    spawner=self.name,
                    handle=handle,
                    engine_message=self._down.engine_message,
                )
            return await self._collect(runtime_task, handle)
        except SpawnerError:
            raise
        except Exception as exc:
            raise self._error(
                SpawnerError, f"cannot read the outcome of container {handle[:12]}", exc, handle
            ) from exc
        finally:
            self._outage_victims.pop(handle, None)
            self._spawned.pop(handle, None)
            self._started_wall.pop(handle, None)
            self._terminated.discard(handle)

    async def _collect(self, runtime_task: RuntimeTask, handle: str) -> ExitResult:
        state = await self._call(self.engine.inspect, handle)
        if state is not None and state.running:
            # Asked to collect a task still running (the worker's own stop failed): end it.
            await self.terminate_task(runtime_task, self.options.grace_period)
            state = await self._call(self.engine.inspect, handle)
        if state is None:
            return ExitResult(
                exit_code=None,
                error=f"container {handle[:12]} disappeared: removed outside spawnkit "
                "before its outcome was read",
            )
        await self._save_logs(runtime_task, handle)
        oom = state.oom_killed or await self._oom_unreported(state)
        if not self.options.keep_containers:
            try:
                await self._call(self.engine.remove, handle)
            except Exception as exc:
                LOG.warning("%s: cannot remove %s: %s", self.name, handle[:12], engine_message(exc))
                self._leftovers.add(handle)
        code = state.exit_code
        signal = code - 128 if code is not None and 128 < code < 128 + 32 else None
        error = state.error
        outage = self._outage_victims.get(handle)
        if error is None and outage and signal and not oom and handle not in self._terminated:
            error = (
                f"container {handle[:12]} was killed ({signal_name(signal)}) during an outage of "
                f"the {self.engine.name} engine ({outage}): an engine that stops or restarts "
                "ends its containers"
            )
        return ExitResult(exit_code=code, signal=signal, oom=oom, error=error)

    async def _save_logs(self, runtime_task: RuntimeTask, handle: str) -> None:
        out_dir = runtime_task.output_dir
        if out_dir is None:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        with open(out_dir / "stdout", "wb") as out, open(out_dir / "stderr", "wb") as err:
            try:
                await self._call(self.engine.logs, handle, out, err, retry=False)
            except Exception as exc:
                LOG.warning("%s: output of %s: %s", self.name, handle[:12], engine_message(exc))

    async def _oom_unreported(self, state: ContainerState) -> bool:
        """An OOM kill the engine did not flag: SIGKILLed under a memory limit, by nobody.

        Only engines that can list kill events answer (Podman 4 on cgroup v1 leaves
        OOMKilled false); a kill through the engine, or by this spawner, is not OOM.
        """
        if state.exit_code != _SIGKILL_EXIT or not state.memory_limit:
            return False
        if state.id in self._terminated:
            return False
        since = self._started_wall.get(state.id)
        if since is None:
            return False
        try:
            killed = await self._call(self.engine.killed_through_engine, state.id, since - 1.0)
        except Exception as exc:
            LOG.warning("%s: events of %s: %s", self.name, state.id[:12], engine_message(exc))
            return False
        return killed is False

