"""The Slurm backend: each task a Slurm batch job; handle = the Slurm job ID.

Jobs are submitted with `sbatch --parsable` (script on stdin); one `squeue` per poll answers
for all of the job's tasks (QueueWatch), and terminations and collections wait on those same
polls. spawnkit's own timer times tasks out (Slurm's --time is whole minutes, enforced late:
a backstop only). Terminate signals the batch script alone (`scancel -b`): the node program
forwards TERM to the command's process group, and KILL on USR2, and records the exact exit;
only if that fails is the job cancelled outright.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from spawnkit.core.copyout import HostFolder
from spawnkit.core.errors import (
    AdoptError,
    BackendError,
    EngineUnavailable,
    RequirementError,
    StartError,
)
from spawnkit.core.paths import safe_name
from spawnkit.core.secrets import secret_env
from spawnkit.core.spawner import JobContext, Spawner, SpawnerOptions
from spawnkit.core.task.description import SlurmSettings, Task
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.slurm import containers, reap
from spawnkit.spawners.slurm.commands import CommandFailed, SlurmTools
from spawnkit.spawners.slurm.job import SlurmJob, cancel_lost
from spawnkit.spawners.slurm.labels import Label, task_label
from spawnkit.spawners.slurm.outcome import (
    Ending,
    appears,
    cancelled_outside,
    exit_of,
    log_words,
    node_said,
    read_began,
    read_status,
    recorded,
)
from spawnkit.spawners.slurm.probe import STORAGE_LAG, NodeCheck
from spawnkit.spawners.slurm.script import (
    EXIT_STATUS,
    SLURM_LOG,
    JobRequest,
    forbidden_options,
    job_script,
    sbatch_options,
)
from spawnkit.spawners.slurm.state import NOT_STARTED
from spawnkit.spawners.slurm.stop import stop_job
from spawnkit.spawners.slurm.watch import PING_TIMEOUT, QueueWatch, ping_words

__all__ = ["SlurmSpawner"]

LOG = logging.getLogger(__name__)

#: Seconds an sbatch may take; past it, the job it may have made is found and cancelled.
SUBMIT_TIMEOUT = 30.0
#: Seconds a collection waits for an ended job's state to become final (COMPLETING).
END_WAIT = 30.0
#: Environment variable naming the Python that runs the node program on the nodes.
PYTHON_VARIABLE = "SPAWNKIT_SLURM_PYTHON"


class SlurmSpawner(Spawner):
    """Runs each task as a Slurm batch job of its own."""

    name = "slurm"
    #: The worker's cadence; QueueWatch calls squeue that often only while a job is young or
    #: an end is awaited, else once per `slow_poll`.
    poll_interval = 0.1
    slow_poll = 1.0
    young = 10.0
    #: Seconds a job may wait in the queue for a reason no wait ends (NEVER_FITS) before
    #: its task ends as an error: as long as a Kubernetes Pod no node can take.
    pending_wait = 300.0

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        super().__init__(options)
        self._tools: SlurmTools | None = None
        self._watch: QueueWatch | None = None
        self._jobs: dict[str, SlurmJob] = {}
        self._base_env: dict[str, str] | None = None
        self._check: NodeCheck | None = None
        self.python = os.environ.get(PYTHON_VARIABLE) or sys.executable

    # -- job -----------------------------------------------------------------------------------

    async def open(self, job: JobContext | None) -> None:
        await super().open(job)
        tools = SlurmTools.find()
        try:
            ping = await tools.run("scontrol", "ping", timeout=PING_TIMEOUT)
        except CommandFailed as exc:
            raise EngineUnavailable("cannot reach the Slurm controller", spawner=self.name,
                                    engine_message=exc.engine_message) from None
        if ping.returncode != 0 or "is UP" not in ping.stdout:
            raise EngineUnavailable("cannot reach the Slurm controller", spawner=self.name,
                                    engine_message=ping_words(ping))
        self._tools = tools
        self._watch = QueueWatch(tools, self.options.engine_down_after, fast=self.poll_interval,
                                 slow=self.slow_poll, young=self.young, notify=self.notify)
        if job is not None:
            self._check = NodeCheck(tools, self._watch, job, self._environment)

    async def close(self) -> None:
        if self._check is not None:
            await self._check.close()
        for job in self._jobs.values():
            LOG.warning("slurm: job %s (task %s) is left to 'spawnkit gc'", job.job_id,
                        job.label.task)
        if self._watch is not None:
            self._watch.close()

    def _ready(self) -> tuple[SlurmTools, QueueWatch]:
        if self._tools is None or self._watch is None:
            raise BackendError("spawner used before open()", spawner=self.name)
        return self._tools, self._watch

    def _environment(self, task: Task | None) -> dict[str, str]:
        """The runner's environment less every secret of the job (names and values), plus
        the task's variables and its own secrets: what the process backend gives a task."""
        if self._base_env is None:
            job = self.job
            hidden = job.secret_names if job is not None else frozenset()
            values = set(job.masked) if job is not None else set()
            self._base_env = {k: v for k, v in os.environ.items()
                              if k not in hidden and v not in values}
        if task is None or not (task.env or task.secrets):
            return self._base_env
        return {**self._base_env, **task.environment, **secret_env(task)}

    # -- triage --------------------------------------------------------------------------------

    def cannot_run(self, task: Task) -> str | None:
        if task.services:
            return ("services ([[service]]) do not run on slurm: a task's node is known only "
                    "once it runs, so nothing can start them beside it; use process, docker "
                    "or podman")
        if task.build is not None:
            return (f"image '{task.build.name}' is built by the task file ([image."
                    f"{task.build.name}]): the slurm backend builds no image (its nodes pull "
                    "theirs); push it to a registry and name it, or use docker or podman")
        bad = forbidden_options(task.slurm)
        if bad:
            return f"slurm extra sets what spawnkit sets itself: {', '.join(bad)}"
        return containers.problem(task)

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        problem = self.cannot_run(runtime_task.task)
        if problem is not None:
            raise RequirementError(problem, spawner=self.name)

    def unenforced(self, task: Task) -> list[str]:
        if containers.engine_of(task, self.options.image) is not None:
            return []  # the node's engine applies them all
        # Slurm's cgroup holds cpus and memory; the rest needs a container. The workspace is
        # the working folder here (a shared file system), as on the process backend.
        return [name for name in task.container_settings()
                if name not in ("cpus", "memory", "workspace")]

    # -- spawn ---------------------------------------------------------------------------------

    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        tools, watch = self._ready()
        if watch.down is not None:
            raise StartError(f"not started: {watch.down.message}", spawner=self.name,
                             engine_message=watch.down.engine_message)
        problem = self._check.problem if self._check is not None else None
        if problem is not None:
            raise StartError(f"not started: {problem}", spawner=self.name)
        task, job = runtime_task.task, self._job_context()
        out_dir = runtime_task.output_dir
        if out_dir is None:
            raise StartError("task has no output folder", spawner=self.name)
        # Where the runner sees it (the nodes share it, as they share the job folder; the
        # node program checks again): the same words as every backend.
        folder = task.workdir() if containers.engine_of(task, self.options.image) is None \
            else task.host_workdir()
        self.check_host_folder(task, folder)
        out_dir.mkdir(parents=True, exist_ok=True)
        label = task_label(job.owner, job.job_id, task.id, job.job_dir)
        request = self._request(runtime_task, out_dir, label, job)
        options, applied = sbatch_options(request)
        if self._check is not None:
            self._check.start(task.slurm or SlurmSettings())
        try:
            done = await tools.run("sbatch", *options, stdin=job_script(request, self.python)
                                   .encode(), env=self._environment(task),
                                   timeout=SUBMIT_TIMEOUT)
        except CommandFailed as exc:
            if exc.timed_out:
                await cancel_lost(tools, request.job_name, label)
            raise StartError(f"cannot submit the Slurm job of task '{task.id}'",
                             spawner=self.name, engine_message=exc.engine_message) from exc
        job_id = done.stdout.strip().split(";")[0]
        if done.returncode != 0 or not job_id.isdigit():
            raise StartError(f"sbatch refused the job of task '{task.id}'", spawner=self.name,
                             engine_message=done.words)
        watch.track(job_id)
        self._jobs[job_id] = SlurmJob(job_id, out_dir, label)
        runtime_task.spawner_handle = job_id
        runtime_task.spawning_result = {"job_id": int(job_id), "applied": applied}

    def _job_context(self) -> JobContext:
        if self.job is None:
            raise BackendError("the slurm backend runs tasks of a job only", spawner=self.name)
        return self.job

    def _request(self, runtime_task: RuntimeTask, out_dir: Path, label: Label,
                 job: JobContext) -> JobRequest:
        task = runtime_task.task
        deadline = runtime_task.execution_timeout
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        engine = containers.engine_of(task, self.options.image)
        # A container task's working folder is inside its container: the engine's business.
        cwd = task.workdir() if engine is None else None
        plan = None
        if engine is not None:
            image = task.image or self.options.image
            assert image is not None  # engine_of says there is one
            plan = containers.plan(task, job, image, engine, out_dir)
        return JobRequest(
            task=task, out_dir=out_dir, comment=label.comment,
            job_name=f"spawnkit-{safe_name(task.id)}"[:100], cwd=cwd,
            chdir=cwd or os.getcwd(), remaining=remaining, grace=self.options.grace_period,
            argv=plan.argv if plan is not None else (),
            cleanup=plan.cleanup if plan is not None else None,
            extra_applied=plan.applied if plan is not None else {},
        )

    async def adopt_task(self, runtime_task: RuntimeTask) -> float | None:
        """A dead runner's job, by its ID: the node program kept its output and exit status,
        and when it began the command (its timeout counts from there, not from the queue)."""
        job_id, out_dir = runtime_task.spawner_handle, runtime_task.output_dir
        if job_id is None or not job_id.isdigit() or out_dir is None:
            raise AdoptError("the runner died while submitting it: whether it began is not "
                             "known", spawner=self.name)
        _, watch = self._ready()
        watch.track(job_id)
        job = self._job_context()
        label = task_label(job.owner, job.job_id, runtime_task.task.id, job.job_dir)
        self._jobs[job_id] = SlurmJob(job_id, out_dir, label, adopted=True)
        return read_began(out_dir)

    # -- monitor -------------------------------------------------------------------------------

    async def refresh(self, runtime_tasks: Sequence[RuntimeTask]) -> None:
        _, watch = self._ready()
        await watch.refresh()
        if self._check is not None:
            self._check.look()

    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        job = self._jobs.get(runtime_task.spawner_handle or "")
        if job is None or self._watch is None or self._watch.down is not None:
            return False  # collect_task says why
        if self._watch.outage is not None and (job.out_dir / EXIT_STATUS).exists():
            return False  # ended while the controller is away: the node's record says how
        if self._watch.outage is None and job.waits_in_vain(self._watch.state(job.job_id),
                                                            self.pending_wait):
            return False  # collect_task says why
        return self._watch.alive(job.job_id)

    def is_task_queued(self, runtime_task: RuntimeTask) -> bool:
        job = self._jobs.get(runtime_task.spawner_handle or "")
        if job is None or self._watch is None:
            return False
        state = self._watch.state(job.job_id)
        return state is not None and state.state in NOT_STARTED

    # -- terminate -----------------------------------------------------------------------------

    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        job = self._jobs.get(runtime_task.spawner_handle or "")
        _, watch = self._ready()
        if job is None or watch.down is not None:
            # Down: nothing reaches the job now. collect_task says so, `spawnkit gc` ends it.
            return
        await stop_job(self._ready()[0], watch, job, grace_period)

    # -- collect -------------------------------------------------------------------------------

    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        job = self._jobs.pop(runtime_task.spawner_handle or "", None)
        if job is None:
            return ExitResult(exit_code=None, error="task was never started")
        _, watch = self._ready()
        try:
            exit = await self._collect(runtime_task, job, watch)
        finally:
            watch.forget(job.job_id)
        if job.ended_first:
            exit = dataclasses.replace(exit, ended_before_stop=True)
        began = read_began(job.out_dir)
        if began is not None:
            exit = dataclasses.replace(exit, began_at=began)
        elif job.queued_at_stop:  # cancelled in the queue: its command never began
            exit = dataclasses.replace(exit, never_ran=True)
        if job.adopted:  # the node wrote its exit as it ended, maybe long before this
            with contextlib.suppress(OSError):
                ended = (job.out_dir / EXIT_STATUS).stat().st_mtime
                exit = dataclasses.replace(exit, ended_at=ended)
        await self._keep_files(runtime_task, exit)
        return exit

    async def _keep_files(self, runtime_task: RuntimeTask, exit: ExitResult) -> None:
        """JUnit reports and artifacts, from the task's working folder on the shared storage
        (the runner's folder for a task that names none, as on the node); a container task's
        only from its workspace: its container is gone with the job."""
        task = runtime_task.task
        if not (task.junit or task.artifacts):
            return
        if containers.engine_of(task, self.options.image) is None:
            folder: str | None = task.workdir() or os.getcwd()
        else:
            folder = task.host_workdir()
        if folder is None:
            runtime_task.notes.append("JUnit reports and artifacts of a container task on "
                                      "slurm are kept from its workspace only")
            return
        await asyncio.to_thread(self.keep_files, runtime_task, exit, HostFolder(Path(folder)))

    async def _collect(self, runtime_task: RuntimeTask, job: SlurmJob,
                       watch: QueueWatch) -> ExitResult:
        ending = Ending(job.job_id, job.out_dir, stopped=job.stopped, cancelled=job.cancelled)
        status = read_status(job.out_dir)
        if watch.down is not None or (watch.outage is not None and status is not None):
            if status is not None:
                return exit_of(None, status, ending, None)
            down = watch.down
            assert down is not None
            raise BackendError(f"{down.message}: Slurm job {job.job_id} is left to "
                               "'spawnkit gc'", spawner=self.name, handle=job.job_id,
                               engine_message=down.engine_message)
        if job.never_runs is not None:
            try:
                await stop_job(self._ready()[0], watch, job, 0.0)
            except CommandFailed as exc:
                LOG.warning("slurm: job %s is left to 'spawnkit gc': %s", job.job_id, exc)
            return ExitResult(exit_code=None, error=job.never_runs)
        state = watch.state(job.job_id)
        if state is None or not state.ended:
            state = await watch.wait_ended(job.job_id, END_WAIT)
            if state is not None and not state.ended:
                # Collected while it runs (the worker's own stop failed): end it.
                self._jobs[job.job_id] = job
                try:
                    await self.terminate_task(runtime_task, self.options.grace_period)
                finally:
                    self._jobs.pop(job.job_id, None)
                state = await watch.wait_ended(job.job_id, END_WAIT)
        if state is None and watch.down is not None:
            return await self._collect(runtime_task, job, watch)
        launched = True
        if status is None and state is not None and state.node:
            # A shared folder may show what the node wrote late: Slurm's output file (the job
            # reached its node), then the node's record of the exit.
            deadline = time.monotonic() + STORAGE_LAG
            launched = await appears(job.out_dir / SLURM_LOG, deadline)
            if launched and recorded(state) and not node_said(job.out_dir):
                await appears(job.out_dir / EXIT_STATUS, deadline)
                status = read_status(job.out_dir)
        log = log_words(job.out_dir, SLURM_LOG)
        ending = Ending(job.job_id, job.out_dir, stopped=job.stopped, cancelled=job.cancelled,
                        container_oom=(job.out_dir / containers.OOM_MARKER).exists(),
                        launched=launched, node_said=node_said(job.out_dir))
        if cancelled_outside(state, ending):
            LOG.warning("slurm: job %s (task %s) was cancelled outside spawnkit (%s)",
                        job.job_id, runtime_task.identifier, state.words() if state else "")
        return exit_of(state, status, ending, log)

    # -- orphans -------------------------------------------------------------------------------

    async def reap_orphans(self, *, dry_run: bool = False) -> list[str]:
        tools, _ = self._ready()
        return await reap.reap(tools, dry_run=dry_run,
                               spare_recent=self.options.spare_resumable)
