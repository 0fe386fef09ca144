"""The process backend: each task a process in its own session; handle = PID.

The tasks are started, reaped and (where a secret may show) masked by the job's task
supervisor (spawners.process.supervisor), a process of its own: the runner's bookkeeping and
the tasks' forks run side by side, and the tasks' exits and output outlive a runner killed with
`kill -9`. The runner signals the tasks' process groups itself (a timeout, a stop).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spawnkit.core import runs
from spawnkit.core.backstop import mark_kill_at
from spawnkit.core.copyout import HostFolder
from spawnkit.core.errors import StartError
from spawnkit.core.owner import owner_alive, runner_owner
from spawnkit.core.paths import safe_name
from spawnkit.core.procfs import live_processes, start_ticks
from spawnkit.core.secrets import secret_env
from spawnkit.core.shell import ShellSession
from spawnkit.core.spawner import JobContext, SpawnerOptions
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.process.adopt import REAPED, AdoptedTask, adopt
from spawnkit.spawners.process.client import SupervisorClient, supervisors
from spawnkit.spawners.process.groups import group_alive, kill_group
from spawnkit.spawners.process.handle import ProcessHandle
from spawnkit.spawners.process.services import SERVICE_VARIABLE, ProcessServiceHooks
from spawnkit.spawners.process.shell import CWD_KEY, process_shell

__all__ = ["ProcessSpawner"]

#: Seconds the supervisor may take to write the rest of a task's output once it ended.
DRAIN_WAIT = 10.0
#: Seconds a task's exit may take to be reported once its process group is gone.
EXIT_WAIT = 5.0
#: Seconds `open` waits for the task supervisor to take requests (else the first spawn does).
SUPERVISOR_START = 10.0


class ProcessSpawner(ProcessServiceHooks):
    """Runs a task as a local process group. The embedded default: needs no engine. Its
    services (`[[service]]`): spawners.process.services."""

    name = "process"
    # Exits arrive as the supervisor's events; the poll only looks that it still runs.
    poll_interval = 0.25

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        super().__init__(options)
        self._client: SupervisorClient | None = None
        self._starting: dict[str, asyncio.Future[ProcessHandle]] = {}
        self._by_key: dict[str, ProcessHandle] = {}
        self._handles: dict[str, ProcessHandle] = {}  # spawner handle (the PID) -> handle
        #: Tasks of a dead runner of the job, taken over (`spawnkit resume`), by handle.
        self._adopted: dict[str, AdoptedTask] = {}
        self._ready: asyncio.Future[None] | None = None  # the supervisor takes requests

    async def open(self, job: JobContext | None) -> None:
        """For a job, the task supervisor is started now and awaited: its start-up (an
        interpreter's) is the job's, once, not its first tasks'."""
        await super().open(job)
        if job is not None:
            self._ready = asyncio.get_running_loop().create_future()
            self._supervisor()
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(asyncio.shield(self._ready), SUPERVISOR_START)

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        return None

    def cannot_run(self, task: Task) -> str | None:
        return self.services_problem(task)

    # -- the supervisor ----------------------------------------------------------------------

    def _supervisor(self) -> SupervisorClient:
        if self._client is None:
            job = self.job
            self._client = SupervisorClient(self._event, self._supervisor_gone)
            self._client.start(self._base_environment(), job.owner if job else runner_owner(),
                               job.job_id if job else "-", job.job_dir if job else None)
        return self._client

    def _base_environment(self) -> dict[str, str]:
        """The runner's environment, less every secret of the job (a task sees only those it
        declares) and any variable holding such a value."""
        job = self.job
        hidden = job.secret_names if job is not None else frozenset()
        values = set(job.masked) if job is not None else set()
        return {k: v for k, v in os.environ.items() if k not in hidden and v not in values}

    def _event(self, event: dict[str, Any]) -> None:
        kind, key = event.get("ev"), str(event.get("key"))
        if kind == "ready":
            if self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
            return
        if kind == "started":
            started = ProcessHandle(int(event["pid"]), event.get("start"))
            if event.get("drained"):
                started.drained.set_result(None)
            self._by_key[key] = started
            self._handles[str(started.pid)] = started
            self._resolve(key, started)
            return
        if kind == "failed":
            future = self._starting.pop(key, None)
            if future is not None and not future.done():
                future.set_exception(OSError(str(event.get("error"))))
            return
        handle = self._by_key.get(key)
        if handle is None:
            return
        if kind == "exited":
            handle.end(int(event["status"]), reaped=event.get("at"))
            self.notify()
        elif kind == "drained" and not handle.drained.done():
            handle.drained.set_result(None)

    def _resolve(self, key: str, handle: ProcessHandle) -> None:
        future = self._starting.pop(key, None)
        if future is not None and not future.done():
            future.set_result(handle)

    def _supervisor_gone(self) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)  # the first spawn says what went wrong
        for future in self._starting.values():
            if not future.done():
                future.set_exception(OSError("the task supervisor ended"))
        self._starting.clear()
        for handle in self._by_key.values():
            handle.lost()
        self.notify()

    # -- the life cycle ----------------------------------------------------------------------

    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        task = runtime_task.task
        out_dir = runtime_task.output_dir
        if out_dir is None:
            raise StartError("task has no output folder", spawner=self.name)
        folder = task.workdir()
        self.check_host_folder(task, folder)
        key = _key(runtime_task)
        future: asyncio.Future[ProcessHandle] = asyncio.get_running_loop().create_future()
        self._starting[key] = future
        self._supervisor().send({
            "op": "spawn", "key": key, "argv": task.argv, "cwd": folder, "out": str(out_dir),
            "env": {**task.environment, **secret_env(task)} or None,
            "mask": list(self.job.masked_for(task)) if self.job is not None else [],
            "stand_in": True,  # a command that cannot be executed exits 127/126, as in a container
            # The supervisor's backstop, should this runner die before the task's deadline.
            "timeout": self.job.timeout_of(task) if self.job is not None else None,
            "grace": self.options.grace_period,
        })
        try:
            handle = await future
        except OSError as exc:
            raise StartError(f"cannot start {task.argv[0]!r}", spawner=self.name,
                             engine_message=str(exc)) from exc
        runtime_task.spawner_handle = str(handle.pid)
        runtime_task.spawning_result = {
            "pid": handle.pid,
            "pgid": handle.pid,
            "start_time": handle.start,
            "supervisor": self._client.pid if self._client is not None else None,
            # Where it ran, for `spawnkit shell` (a task with no folder runs in the runner's).
            CWD_KEY: os.path.abspath(folder or os.getcwd()),
        }

    async def adopt_task(self, runtime_task: RuntimeTask) -> None:
        adopted = adopt(runtime_task)
        key = str(adopted.handle.pid)
        self._adopted[key] = adopted
        self._handles[key] = adopted.handle

    async def _adopted_end(self, adopted: AdoptedTask, within: float) -> None:
        """Poll a taken-over task's folder until it says how the task ended (no event comes:
        the supervisor that has it talks to nobody now)."""
        deadline = asyncio.get_running_loop().time() + within
        while not adopted.look() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    async def refresh(self, runtime_tasks: Sequence[RuntimeTask]) -> None:
        for adopted in self._adopted.values():
            if not adopted.handle.ended and adopted.look():
                self.notify()
        client = self._client
        if client is not None and self._by_key and not client.alive():
            self._supervisor_gone()

    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        handle = self._handles.get(runtime_task.spawner_handle or "")
        return handle is not None and not handle.ended

    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        handle = self._handles.get(runtime_task.spawner_handle or "")
        if handle is None:
            return
        handle.stop_began = handle.stop_began or time.monotonic()
        adopted = self._adopted.get(str(handle.pid))
        # The supervisor KILLs it should this runner die within the grace: ours, told; an
        # earlier runner's (a task taken over), through a mark in the task's folder.
        if adopted is not None:
            mark_kill_at(adopted.out_dir, time.time() + grace_period)
        elif self._client is not None:
            self._client.send({"op": "stop", "pid": handle.pid, "grace": grace_period})
        await kill_group(handle.pid, grace_period)
        if adopted is not None:
            await self._adopted_end(adopted, EXIT_WAIT)
        await _within(handle.exited, EXIT_WAIT)

    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        handle = self._handles.pop(runtime_task.spawner_handle or "", None)
        if handle is None:
            return ExitResult(exit_code=None, error="task was never started")
        adopted = self._adopted.pop(str(handle.pid), None)
        if adopted is not None:
            await self._adopted_end(adopted, DRAIN_WAIT)
            if not handle.ended:
                handle.lost()
        await handle.exited
        # The main process is gone; what it left in its group (a `cmd &`) goes too. The task
        # ended with its command, not once a leftover that ignores TERM has had its grace.
        leftovers = group_alive(handle.pid)
        if leftovers:
            await kill_group(handle.pid, self.options.grace_period)
        await _within(handle.drained, DRAIN_WAIT)
        self._by_key.pop(_key(runtime_task), None)
        exit = handle.exit_result()
        if leftovers:
            exit = dataclasses.replace(exit, ended_mono=handle.reaped)
        task = runtime_task.task
        if task.junit or task.artifacts:
            folder = HostFolder(Path(task.workdir() or os.getcwd()))
            await asyncio.to_thread(self.keep_files, runtime_task, exit, folder)
        return exit

    async def close(self) -> None:
        """The supervisor ends what tasks left outside their groups (`setsid cmd &`: it is
        their subreaper), then exits."""
        client, self._client = self._client, None
        if client is not None:
            await client.close(self.options.grace_period, self.options.grace_period + 10.0)

    async def reap_orphans(self, *, dry_run: bool = False) -> list[str]:
        """Process groups that dead runners left running, killed at once and all together:
        nobody is left to read their outcome. Found through the runners' journals and through
        their task supervisors (which outlive them, and know every task, even one started just
        before the runner died)."""
        groups: dict[int, str] = {}
        folders: dict[int, Path] = {}  # group -> its task's folder, to say who ended it
        spare = self.options.spare_resumable
        for orphan in runs.orphaned_tasks(self.name, spare_recent=spare):
            pgid, started = orphan.spawning_result.get("pgid"), \
                orphan.spawning_result.get("start_time")
            if not isinstance(pgid, int):
                continue
            # Leader alive: it must be the same process (start time), not a reused PID.
            # Leader gone but the group alive: Linux never reuses a PID still used as a group
            # id, so the members are the task's own.
            leader = start_ticks(pgid)
            if (leader is None or leader == started) and group_alive(pgid):
                groups[pgid] = f"job {orphan.job_id}, task {orphan.task_id}"
                if orphan.job_dir is not None:
                    folders[pgid] = orphan.job_dir / "tasks" / safe_name(orphan.task_id)
        for sup in supervisors():
            if owner_alive(sup.owner) or sup.left_alone(spare_recent=spare):
                continue
            pid, job_id = sup.pid, sup.job_id
            for child, fields in live_processes():
                if fields[1] == str(pid) and int(fields[2]) == child:  # a task: its own group
                    kind, task_id = _task_of(child)
                    groups.setdefault(child, f"job {job_id}, {kind} {task_id}")
                    if task_id != "?" and kind == "task" and sup.job_dir:  # if not in our index
                        folders.setdefault(child, Path(sup.job_dir) / "tasks" /
                                           safe_name(task_id))
        if not dry_run:
            for folder in folders.values():  # first: a resume then reports it lost
                with contextlib.suppress(OSError):
                    (folder / REAPED).touch()
            await asyncio.gather(*(kill_group(pgid, 0.0) for pgid in groups))
        return [f"process group {pgid} ({what})" for pgid, what in sorted(groups.items())]

    async def open_shell(self, runtime_task: RuntimeTask, job: JobContext) -> ShellSession:
        return process_shell(runtime_task, job)

    def unenforced(self, task: Task) -> list[str]:
        # A process shares the runner's host: no limit, mount or user switch applies. The
        # image is not a limit (a task file names one for the container backends), and the
        # workspace is the working folder here too. An entrypoint is the image's or words
        # from it: the host may not have them.
        return [k for k in task.container_settings() if k != "workspace"]


def _key(runtime_task: RuntimeTask) -> str:
    """The supervisor's name of one attempt of a task: a retry is another process, whose
    events must not be taken for the last one's."""
    return f"{runtime_task.identifier}#{runtime_task.attempt}"


def _task_of(pid: int) -> tuple[str, str]:
    """("task", ID) from the id a task's process carries in its environment
    (SPAWNKIT_TASK_ID), ("service", ID) for a service's, or ("task", "?")."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return "task", "?"
    ids = dict(item.partition(b"=")[::2] for item in environ)
    # A service's first: a runner started by a task (spawnkit in spawnkit) passes the
    # task's id on to its services.
    for name, kind in ((SERVICE_VARIABLE.encode(), "service"), (b"SPAWNKIT_TASK_ID", "task")):
        if name in ids:
            return kind, ids[name].decode(errors="replace")
    return "task", "?"


async def _within(future: asyncio.Future[None], seconds: float) -> None:
    """Wait for it, at most `seconds` (a report that does not come must not hold the job)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(future), seconds)
