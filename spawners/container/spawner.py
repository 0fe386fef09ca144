"""What the Docker and Podman backends share: the task life cycle over an `Engine`.

Every engine call is blocking (the SDKs are), so each runs in a thread pool of this spawner,
sized for many tasks at once, never on the event loop. Liveness costs one engine call per poll
for all the job's containers (`ContainerWatch`), not one per container. Each running task's
state is its `ContainerHandle`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar, TypeVar

from spawnkit.core.backstop import timed_out_reason
from spawnkit.core.copyout import TarSource
from spawnkit.core.errors import BackendError, RequirementError, StartError
from spawnkit.core.images import IMAGE_LABEL
from spawnkit.core.output import TaskOutput
from spawnkit.core.shell import ShellSession
from spawnkit.core.spawner import ImageRecord, JobContext, SpawnerOptions
from spawnkit.core.task.description import ImageBuild, Task
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.container import exits, images, reap, shell
from spawnkit.spawners.container.adopt import adopt_container
from spawnkit.spawners.container.calls import ENGINE_THREADS, EngineCalls
from spawnkit.spawners.container.create import check_image_folder, create_once
from spawnkit.spawners.container.engine import (
    ContainerSpec,
    Engine,
)
from spawnkit.spawners.container.events import ExitEvents
from spawnkit.spawners.container.faults import engine_message
from spawnkit.spawners.container.handle import ContainerHandle
from spawnkit.spawners.container.isolation import applied_settings
from spawnkit.spawners.container.keep import keeps, kept_note
from spawnkit.spawners.container.logs import LogFollower
from spawnkit.spawners.container.services import ContainerServiceHooks
from spawnkit.spawners.container.spec import LABEL_JOB, LABEL_MANAGED, container_spec
from spawnkit.spawners.container.userimages import UserImages
from spawnkit.spawners.container.watch import ContainerWatch
from spawnkit.spawners.container.watchdog import Watchdog

__all__ = ["ContainerSpawner"]

LOG = logging.getLogger(__name__)

T = TypeVar("T")


class ContainerSpawner(ContainerServiceHooks):
    """Runs each task in a container of an `Engine`; handle = the full container ID. Its
    services (`[[service]]`): spawners.container.services."""

    engine_class: ClassVar[type[Engine]]
    takes_engine_url = True
    builds_images = True
    #: One listing of the job's containers per poll. A quarter second keeps spawnkit's own CPU
    #: far under 5% of a core while tasks run, and sees an exit soon enough.
    poll_interval = 0.25
    #: Bounded wait for a SIGKILLed container to be reported as ended.
    kill_wait: ClassVar[float] = 10.0
    #: A container of a dead runner not yet started is reaped only past this age.
    orphan_grace: ClassVar[float] = reap.ORPHAN_GRACE

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        super().__init__(options)
        self.engine: Engine = self.engine_class(self.options.engine_url, pool_size=ENGINE_THREADS)
        self._call = EngineCalls(self.name, self.engine)
        self._images: dict[str, asyncio.Future[str | None]] = {}  # image -> problem, or None
        self._user_images = UserImages(self.name, self.engine, self._call)
        self._handles: dict[str, ContainerHandle] = {}
        self._entrypoints: dict[str, asyncio.Future[list[str]]] = {}  # image -> its entrypoint
        self._machine_cpus: asyncio.Future[int | None] | None = None  # asked once per job
        self._watch = ContainerWatch(self.name, self.engine.name, self.engine.url,
                                     self.options.engine_down_after, self.poll_interval)
        self._events: ExitEvents | None = None
        self._watchdog: Watchdog | None = None

    # -- job ----------------------------------------------------------------------------------

    async def open(self, job: JobContext | None) -> None:
        await super().open(job)
        # An engine that takes the connection and never answers (a stopped daemon) is down
        # after --engine-down-after, as it is mid-run: not after the SDK's timeout times its
        # tries (minutes). The call's thread is a daemon: abandoned, it holds nothing.
        within = self.options.engine_down_after
        try:
            await asyncio.wait_for(self._call(self.engine.open, retry=False), within)
        except TimeoutError:
            raise self.engine.unavailable(f"no answer within {within:g} s "
                                          "(--engine-down-after)") from None
        if job is not None:
            self._events = ExitEvents(self.engine, f"{LABEL_JOB}={job.job_id}", self._died)
            self._watchdog = Watchdog(type(self.engine), job.job_id, job.job_dir,
                                      self.options.engine_url)

    def stopping(self) -> None:
        self.engine.retry_policy.stopping = lambda: True

    def _died(self, container_id: str) -> None:
        handle = self._handles.get(container_id)
        if handle is not None and not handle.died:
            handle.died = True
            self.notify()

    async def close(self) -> None:
        if self._events is not None:
            self._events.close()
        if self._watchdog is not None:
            await self._watchdog.close()
        self._watch.close()
        await self._call.close(engine_answers=self._watch.down is None, within=self.kill_wait)

    def _job(self) -> JobContext:
        if self.job is None:
            raise BackendError("spawner used before open()", spawner=self.name)
        return self.job

    # -- triage -------------------------------------------------------------------------------

    def image_of(self, runtime_task: RuntimeTask) -> str | None:
        built = self._user_images.tag_of(runtime_task.task)
        return built or runtime_task.task.image or self.options.image

    def cannot_run(self, task: Task) -> str | None:
        if task.image or self.options.image:
            return self.services_problem(task)
        return (f"no image for a {self.name} task: set 'image' in the task or [defaults], "
                "or give --image")

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        await self._check_cpus(runtime_task.task)
        if runtime_task.task.build is not None:  # the task file builds it: [image.NAME]
            await self._user_images.ensure(runtime_task.task.build, self.job)
            return
        image = self.image_of(runtime_task)
        if image is None:
            raise RequirementError(str(self.cannot_run(runtime_task.task)), spawner=self.name)
        # Once per image per job; tasks triaged meanwhile wait for the same answer.
        check = self._images.get(image)
        if check is None:
            check = self._images[image] = asyncio.ensure_future(
                images.ensure_image(self._call, self.engine, image))
        problem = await asyncio.shield(check)
        if problem is not None:
            raise RequirementError(
                f"image '{image}' is not on the {self.name} engine and cannot be pulled",
                spawner=self.name,
                engine_message=problem,
            )

    async def _check_cpus(self, task: Task) -> None:
        """More CPUs than the engine's machine has is a requirement not met, as a Pod no node
        can take and a Slurm job no node can hold are: Docker would refuse the container
        with words of its own, and Podman would quietly give what there is."""
        cpus = task.limits.cpus
        if cpus is None:
            return
        if self._machine_cpus is None:
            self._machine_cpus = asyncio.ensure_future(self._call(self.engine.machine_cpus))
        try:
            have = await asyncio.shield(self._machine_cpus)
        except Exception as exc:  # asked again for the next task; Docker's create checks too
            self._machine_cpus = None
            LOG.warning("%s: cannot tell how many CPUs the engine's machine has, for task "
                        "'%s': %s", self.name, task.id, engine_message(exc))
            return
        if have is not None and cpus > have:
            raise RequirementError(f"cpus = {cpus:g} is more than the {have} CPUs of the "
                                   f"{self.name} engine's machine", spawner=self.name)

    # -- spawn --------------------------------------------------------------------------------

    def container_spec(self, runtime_task: RuntimeTask) -> ContainerSpec:
        image = self.image_of(runtime_task)
        if image is None:
            raise StartError("task has no image", spawner=self.name)
        return self.with_services(container_spec(
            runtime_task.task, self._job(), image, keep=self.options.keep_containers,
            attempt=runtime_task.attempt, keep_failed=self.options.keep_failed),
            runtime_task.task)

    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        down = self._watch.down
        if down is not None:
            # Each try would cost a round of retries, or hang on a daemon that never replies.
            raise StartError(f"not started: {down.message}", spawner=self.name,
                             engine_message=down.engine_message)
        task = runtime_task.task
        out_dir = runtime_task.output_dir
        if out_dir is None:
            raise StartError("task has no output folder", spawner=self.name)
        host_folder = task.host_workdir()
        self.check_host_folder(task, host_folder)
        out_dir.mkdir(parents=True, exist_ok=True)
        spec = self.container_spec(runtime_task)
        if host_folder is None and spec.workdir is not None:
            await check_image_folder(self._call, self.engine, spec, task.workdir_words)
        try:
            container_id = await self._call(create_once, self.engine, spec, idempotent=False)
        except Exception as exc:
            raise self._call.error(StartError, f"cannot create a container of '{spec.image}'",
                              exc) from exc
        try:
            entrypoint = (list(spec.entrypoint) if spec.entrypoint is not None
                          else await self._entrypoint_of(spec.image))
            started_wall = time.time()
            await self._call(self.engine.start, container_id, idempotent=False)
        except Exception as exc:
            # Nothing of a task that never ran stays on the engine (the start's answer may be
            # what was lost: the container may run).
            await self._call.remove_or_leave(container_id)
            if isinstance(exc, StartError):
                raise
            raise self._call.error(StartError, f"cannot start container {container_id[:12]}", exc,
                              container_id) from exc
        output = TaskOutput(out_dir, self._job().masked_for(task))
        self._handles[container_id] = ContainerHandle(
            container_id, str(spec.name), spec.image, time.monotonic(), started_wall,
            logs=LogFollower(self.engine, container_id, output),
        )
        runtime_task.spawner_handle = container_id
        self._watch_deadline(runtime_task, started_wall)
        runtime_task.spawning_result = {
            "container_id": container_id,
            "name": spec.name,
            "image": spec.image,
            "engine": self.engine.name,
            "engine_url": self.engine.url,
            "started_wall": started_wall,
            "applied": {**applied_settings(spec), "entrypoint": entrypoint},
        }

    async def _entrypoint_of(self, image: str) -> list[str]:
        """The image's own entrypoint (for results.json), asked once per image per job."""
        asked = self._entrypoints.get(image)
        if asked is None or (asked.done() and asked.exception() is not None):
            asked = self._entrypoints[image] = asyncio.ensure_future(
                self._call(self.engine.image_entrypoint, image))
        return list(await asyncio.shield(asked))

    async def adopt_task(self, runtime_task: RuntimeTask) -> None:
        handle = await adopt_container(self._call, self.engine, self._job(), runtime_task)
        self._handles[handle.id] = handle
        if (runtime_task.spawning_result or {}).get("started_wall") is not None:
            self._watch_deadline(runtime_task, handle.started_wall)

    def _watch_deadline(self, runtime_task: RuntimeTask, started_wall: float) -> None:
        """The watchdog stops it at its deadline should this runner die first (Docker has no
        run-time limit of its own)."""
        if self._watchdog is not None and runtime_task.output_dir is not None:
            self._watchdog.watch(str(runtime_task.spawner_handle), runtime_task.output_dir,
                                 started_wall, self._job().timeout_of(runtime_task.task),
                                 self.options.grace_period)

    # -- monitor ------------------------------------------------------------------------------

    async def refresh(self, runtime_tasks: Sequence[RuntimeTask]) -> None:
        if self._events is not None:
            self._events.ensure_running()
        for handle in self._handles.values():
            if handle.logs is not None:
                handle.logs.idle()
        label = f"{LABEL_JOB}={self._job().job_id}"
        await self._watch.refresh(lambda: self._call(self.engine.containers, label),
                                  self.notify)

    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        handle = self._handles.get(runtime_task.spawner_handle or "")
        if handle is None or self._watch.down is not None or handle.died:
            return False  # collect_task says why
        return self._watch.alive(handle.id, handle.spawned_at)

    # -- terminate ----------------------------------------------------------------------------

    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        handle = self._handles.get(runtime_task.spawner_handle or "")
        if handle is None or self._watch.down is not None:
            # Down: nothing reaches the container now. collect_task says so, and `spawnkit gc`
            # removes it once the engine is back (its runner is gone by then).
            return
        first = not handle.sent
        if first and self._watchdog is not None and runtime_task.output_dir is not None:
            self._watchdog.stopping(handle.id, runtime_task.output_dir, grace_period)
        try:
            await self._call.stop(handle.id, grace_period, self.kill_wait, handle.sent)
            # No signal delivered: the engine said it was not running (`ExitResult.
            # ended_before_stop`).
            handle.ended_first = handle.ended_first or (first and not handle.sent)
        except Exception as exc:
            raise self._call.error(BackendError, f"cannot stop container {handle.short}", exc,
                              handle.id) from exc

    # -- orphans ------------------------------------------------------------------------------

    async def reap_orphans(self, *, dry_run: bool = False) -> list[str]:
        """Remove spawnkit's containers whose runner died, at once and in parallel."""
        listed = await self._call(self.engine.containers, f"{LABEL_MANAGED}=true")
        found = reap.orphans(listed, grace=self.orphan_grace, kept=self.options.reap_kept,
                             spare_recent=self.options.spare_resumable)
        if not dry_run:
            await reap.remove_all(found, lambda cid: self._call(self.engine.remove, cid))
        # Then the networks of services, which their containers had to leave first.
        return [reap.describe(c) for c in found] + await self.reap_networks(dry_run=dry_run)

    # -- collect ------------------------------------------------------------------------------

    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        handle = self._handles.get(runtime_task.spawner_handle or "")
        if handle is None:
            return ExitResult(exit_code=None, error="task was never started")
        try:
            down = self._watch.down
            if down is not None:
                if handle.logs is not None:
                    handle.logs.abandon()
                raise BackendError(
                    f"{down.message}: container {handle.short} is removed by "
                    "'spawnkit gc' once the engine is back",
                    spawner=self.name, handle=handle.id, engine_message=down.engine_message,
                )
            return await self._collect(runtime_task, handle)
        except BackendError:
            raise
        except Exception as exc:
            raise self._call.error(BackendError, f"cannot read the outcome of container "
                              f"{handle.short}", exc, handle.id) from exc
        finally:
            self._handles.pop(handle.id, None)
            if self._watchdog is not None:
                self._watchdog.forget(handle.id)

    async def _collect(self, runtime_task: RuntimeTask, handle: ContainerHandle) -> ExitResult:
        state = await self._call(self.engine.inspect, handle.id)
        if state is not None and state.being_removed:
            if state.status == "dead":  # a removal that failed half-way: ours to finish
                await self._call.remove_or_leave(handle.id)
            state = None  # what is left of it can no longer be read: the logs say 409
        if state is not None and state.running:
            # Asked to collect a task still running (the worker's own stop failed): end it.
            await self.terminate_task(runtime_task, self.options.grace_period)
            state = await self._call(self.engine.inspect, handle.id)
        if state is None:
            if handle.logs is not None:
                handle.logs.abandon()
            return ExitResult(
                exit_code=None,
                error=f"container {handle.short} disappeared: removed outside spawnkit "
                "before its outcome was read",
            )
        if handle.logs is not None:
            await self._call(handle.logs.finish_or_keep, handle.short, retry=False)
        exit = await exits.read_exit(self._call, self.engine, state, sent=handle.sent,
                                     since=handle.started_wall - 1.0,
                                     outage=self._watch.victim_of_outage(handle.id))
        if handle.adopted and state.finished_at > 0:
            exit = dataclasses.replace(exit, ended_at=state.finished_at, timed_out=(
                timed_out_reason(runtime_task.output_dir, "the container watchdog")
                if runtime_task.output_dir is not None else None))
        if handle.ended_first:
            exit = dataclasses.replace(exit, ended_before_stop=True)
        task = runtime_task.task
        if task.junit or task.artifacts:
            # From the container's own file system, before it goes: no workspace needed.
            workdir = state.workdir or "/"
            source = TarSource(lambda path: self.engine.archive_in(handle.id, workdir, path))
            await self._call(self.keep_files, runtime_task, exit, source, retry=False)
        if keeps(self.options, exit, stopped=handle.stopped):
            runtime_task.notes.append(kept_note(handle.id, self._job().job_dir,
                                                runtime_task.identifier))
        else:
            await self._call.remove_or_leave(handle.id)
        return exit

    # -- images -------------------------------------------------------------------------------

    async def build_image(self, recipe: str, tag: str | None = None) -> tuple[str, str]:
        return await self._call(images.build_image, self.engine, recipe, tag, retry=False)

    async def build_from_file(self, build: ImageBuild, leave_out: Sequence[Path] = ()) -> str:
        return await self._user_images.ensure(build, None, leave_out)

    async def open_shell(self, runtime_task: RuntimeTask, job: JobContext) -> ShellSession:
        return await shell.open_shell(self.name, self.engine, self._call, runtime_task, job)

    async def list_images(self) -> list[ImageRecord]:
        found = await self._call(images.list_images, self.engine)
        return [
            ImageRecord(i.labels.get(IMAGE_LABEL, "?"), i.tags, i.id, i.size, i.created)
            for i in found
        ]

