"""The process backend: each task a process in its own session; handle = PID.

Spawns run in a few threads: the fork and exec of a child happen with the interpreter's lock
released, so several start at once, as many as a thread pool of `subprocess.run` manages. An
exit is seen the moment it happens (Linux pidfd, read by the event loop), and only the
processes seen ending are reaped at the next poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from spawnkit.core import runs
from spawnkit.core.copyout import HostFolder
from spawnkit.core.errors import StartError
from spawnkit.core.procfs import live_processes, start_ticks
from spawnkit.core.secrets import secret_env
from spawnkit.core.spawner import Spawner, SpawnerOptions
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.process.groups import become_subreaper, group_alive, kill_group
from spawnkit.spawners.process.handle import ProcessHandle, start_process

__all__ = ["ProcessSpawner"]

#: Threads that fork and exec tasks: as many as the floor's `subprocess.run` threads, so
#: that several execs are under way at once.
SPAWN_THREADS = 8

#: Seconds the output helper may take to write the rest of a task's output once it ended.
HELPER_WAIT = 10.0


class ProcessSpawner(Spawner):
    """Runs a task as a local process group. The embedded default: needs no engine."""

    name = "process"
    # Exits arrive as events (pidfd); the poll is only a safety net.
    poll_interval = 0.25

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        super().__init__(options)
        self._handles: dict[str, ProcessHandle] = {}
        self._exited: set[str] = set()
        self._swept = float("-inf")
        self._pool: ThreadPoolExecutor | None = None
        self._base_env: dict[str, str] | None = None  # the runner's, read once per job
        # A command line owns its process: orphans of task groups are then ours to reap.
        self._subreaper = self.options.own_process and become_subreaper()

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        return None

    def _environment(self, task: Task) -> dict[str, str]:
        """The runner's environment, less every secret of the job the task does not declare
        (and any variable holding such a value), plus the task's own variables."""
        if self._base_env is None:
            job = self.job
            hidden = job.secret_names if job is not None else frozenset()
            values = set(job.masked) if job is not None else set()
            self._base_env = {k: v for k, v in os.environ.items()
                              if k not in hidden and v not in values}
        if not (task.env or task.secrets):
            return self._base_env
        return {**self._base_env, **task.environment, **secret_env(task)}

    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        task = runtime_task.task
        out_dir = runtime_task.output_dir
        if out_dir is None:
            raise StartError("task has no output folder", spawner=self.name)
        folder = task.workdir()
        if folder is not None and not os.path.isdir(folder):
            raise StartError(f"working folder '{task.workdir_words}' does not exist",
                             spawner=self.name)
        env = self._environment(task)
        masked = self.job.masked_for(task) if self.job is not None else ()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(SPAWN_THREADS, thread_name_prefix="spawnkit-fork")
        loop = asyncio.get_running_loop()
        handle = await loop.run_in_executor(self._pool, start_process, task, folder, env,
                                            out_dir, masked)
        key = str(handle.pid)
        self._handles[key] = handle
        self._watch_exit(key, handle.pid, loop)
        runtime_task.spawner_handle = key
        runtime_task.spawning_result = {
            "pid": handle.pid,
            "pgid": handle.pid,
            "start_time": handle.start,
            "output_helper": handle.monitored,
        }

    def _watch_exit(self, key: str, pid: int, loop: asyncio.AbstractEventLoop) -> None:
        """Wake the worker the moment the task's process ends (Linux pidfd, else polling)."""
        try:
            fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return

        def exited() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            self._exited.add(key)
            self.notify()

        loop.add_reader(fd, exited)

    async def refresh(self, runtime_tasks: Sequence[RuntimeTask]) -> None:
        now = time.monotonic()
        if now - self._swept >= self.poll_interval:
            # The safety net: every task, in case an exit event was missed.
            self._swept = now
            keys = [rt.spawner_handle for rt in runtime_tasks if rt.spawner_handle]
        else:
            keys = list(self._exited)
        for key in keys:
            handle = self._handles.get(key)
            if handle is not None and handle.reap():
                if not handle.monitored:
                    ProcessHandle.tracked.discard(handle.pid)
                self._exited.discard(key)
        if self._subreaper:
            self._reap_orphans()

    def _reap_orphans(self) -> None:
        """As a subreaper, orphans of task groups become ours: reap them, never a task (none
        while a spawn may have a child not yet tracked), nor an output helper."""
        tracked = ProcessHandle.tracked
        while not ProcessHandle.spawning[0]:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in tracked:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        handle = self._handles.get(runtime_task.spawner_handle or "")
        return handle is not None and not handle.ended

    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        handle = self._handles.get(runtime_task.spawner_handle or "")
        if handle is None:
            return
        await kill_group(handle.pid, grace_period)
        await self._until(handle.reap)

    @staticmethod
    async def _until(ready: object, within: float = float("inf")) -> bool:
        deadline = time.monotonic() + within
        while not ready():  # type: ignore[operator]
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        handle = self._handles.pop(runtime_task.spawner_handle or "", None)
        if handle is None:
            return ExitResult(exit_code=None, error="task was never started")
        await self._until(handle.reap)
        self._exited.discard(str(handle.pid))
        # The main process is gone; what it left in its group (a `cmd &`) goes too.
        if group_alive(handle.pid):
            await kill_group(handle.pid, self.options.grace_period)
        if not await self._until(handle.helper_done, HELPER_WAIT):
            handle.popen.kill()  # a helper that hangs on: its output is what it wrote
            await self._until(handle.helper_done)
        ProcessHandle.tracked.difference_update({handle.pid, handle.popen.pid})
        if self._subreaper:
            self._reap_orphans()
        exit = handle.exit_result()
        task = runtime_task.task
        if task.junit or task.artifacts:
            folder = HostFolder(Path(task.workdir() or os.getcwd()))
            await asyncio.get_running_loop().run_in_executor(
                self._pool, self.keep_files, runtime_task, exit, folder)
        return exit

    async def close(self) -> None:
        """A task may have left a process outside its group (`setsid cmd &`): as the
        subreaper we inherited it, and it must not outlive the job."""
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None
        if not self._subreaper:
            return
        # Killing one may hand us its children in turn: a few rounds, bounded.
        for _ in range(3):
            escaped = _children()
            if not escaped:
                break
            for pid, pgid in escaped:
                if pgid == os.getpgid(0):
                    await kill_group(pid, self.options.grace_period, single=True)
                else:
                    await kill_group(pgid, self.options.grace_period)
            self._reap_orphans()

    async def reap_orphans(self, *, dry_run: bool = False) -> list[str]:
        """Process groups that dead runners left running (found through their journals),
        killed at once and all together: nobody is left to read their outcome."""
        said, groups = [], []
        for orphan in runs.orphaned_tasks(self.name):
            pgid, started = orphan.spawning_result.get("pgid"), \
                orphan.spawning_result.get("start_time")
            if not isinstance(pgid, int):
                continue
            # Leader alive: it must be the same process (start time), not a reused PID.
            # Leader gone but the group alive: Linux never reuses a PID still used as a group
            # id, so the members are the task's own.
            leader = start_ticks(pgid)
            if (leader is not None and leader != started) or not group_alive(pgid):
                continue
            said.append(f"process group {pgid} (job {orphan.job_id}, task {orphan.task_id})")
            groups.append(pgid)
        if not dry_run:
            await asyncio.gather(*(kill_group(pgid, 0.0) for pgid in groups))
        return said

    def unenforced(self, task: Task) -> list[str]:
        # A process shares the runner's host: no limit, mount or user switch applies. The
        # image is not a limit (a task file names one for the container backends), and the
        # workspace is the working folder here too.
        return [k for k in task.limits.given() if k != "workspace"]


def _children() -> list[tuple[int, int]]:
    """(pid, its group) of our live children: every task is collected by now."""
    me = str(os.getpid())
    return [(pid, int(fields[2])) for pid, fields in live_processes() if fields[1] == me]
