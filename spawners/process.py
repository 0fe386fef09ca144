"""The process backend: each task a process in its own session; handle = PID."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Sequence
from typing import ClassVar

from spawnkit.core.errors import SpawnError
from spawnkit.core.owner import stat_fields
from spawnkit.core.secrets import secret_env
from spawnkit.core.task.description import Task
from spawnkit.core.task.runtime import ExitResult, RuntimeTask
from spawnkit.spawners.base import Spawner, SpawnerOptions
from spawnkit.spawners.procgroup import (
    become_subreaper,
    group_alive,
    kill_group,
    proc_start_time,
)

__all__ = ["ProcessSpawner"]


class ProcessSpawner(Spawner):
    """Runs a task as a local process group. The embedded default: needs no engine."""

    name = "process"
    # Exits arrive as events (pidfd); the poll is only a safety net.
    poll_interval = 0.25

    #: Main PIDs of running tasks of every ProcessSpawner in this process: a subreaper's
    #: orphan reaping must never take another spawner's task.
    _all_tasks: ClassVar[set[int]] = set()

    def __init__(self, options: SpawnerOptions | None = None, *, subreaper: bool = False) -> None:
        super().__init__(options)
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._status: dict[str, int | None] = {}  # handle -> raw wait status; None: lost
        self._subreaper = subreaper and become_subreaper()

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        return None

    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        task = runtime_task.task
        out_dir = runtime_task.output_dir
        if out_dir is None:
            raise SpawnError("task has no output folder", spawner=self.name)
        out_dir.mkdir(parents=True, exist_ok=True)
        if task.cwd is not None and not os.path.isdir(task.cwd):
            raise SpawnError(f"working folder {task.cwd!r} does not exist", spawner=self.name)
        env = dict(os.environ)
        env.update(task.environment)
        env.update(secret_env(task))
        try:
            with open(out_dir / "stdout", "wb") as out, open(out_dir / "stderr", "wb") as err:
                proc = subprocess.Popen(
                    task.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    cwd=task.cwd,
                    env=env,
                    start_new_session=True,
                )
        except OSError as exc:
            raise SpawnError(
                f"cannot start {task.argv[0]!r}", spawner=self.name, engine_message=str(exc)
            ) from exc
        handle = str(proc.pid)
        self._procs[handle] = proc
        self._all_tasks.add(proc.pid)
        self._watch_exit(handle, proc.pid)
        runtime_task.spawner_handle = handle
        runtime_task.spawning_result = {
            "pid": proc.pid,
            "pgid": proc.pid,
            "start_time": proc_start_time(proc.pid),
        }

    def _watch_exit(self, handle: str, pid: int) -> None:
        """Wake the worker the moment the task's process ends (Linux pidfd, else polling)."""
        try:
            fd = os.pidfd_open(pid)
            loop = asyncio.get_running_loop()
        except (AttributeError, OSError, RuntimeError):
            return

        def exited() -> None:
            loop.remove_reader(fd)
            os.close(fd)
            self.notify()

        loop.add_reader(fd, exited)

    def _reap(self, handle: str, *, block: bool = False) -> bool:
        """Reap the task's main process if it ended; True once it has."""
        if handle in self._status:
            return True
        proc = self._procs.get(handle)
        if proc is None:
            return True
        try:
            pid, status = os.waitpid(proc.pid, 0 if block else os.WNOHANG)
        except ChildProcessError:
            # Someone else reaped it: the process is gone, its exit status with it.
            self._status[handle] = None
            self._all_tasks.discard(proc.pid)
            proc.returncode = -1
            return True
        if pid == 0:
            return False
        self._status[handle] = status
        self._all_tasks.discard(proc.pid)
        # Tell Popen it is reaped, so its finaliser never waits on a reused PID.
        proc.returncode = os.waitstatus_to_exitcode(status)
        return True

    def _reap_orphans(self) -> None:
        """As a subreaper, orphans of task groups become ours: reap them, never a task."""
        tracked = self._all_tasks
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if info is None or info.si_pid in tracked:
                return
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    async def refresh(self, runtime_tasks: Sequence[RuntimeTask]) -> None:
        for rt in runtime_tasks:
            if rt.spawner_handle is not None:
                self._reap(rt.spawner_handle)
        if self._subreaper:
            self._reap_orphans()

    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        handle = runtime_task.spawner_handle
        return handle is not None and not self._reap(handle)

    async def wait_task(self, runtime_task: RuntimeTask) -> None:
        handle = runtime_task.spawner_handle
        while handle is not None and not self._reap(handle):
            await asyncio.sleep(self.poll_interval)

    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        handle = runtime_task.spawner_handle
        if handle is None:
            return
        await kill_group(int(handle), grace_period)
        await self.wait_task(runtime_task)

    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        handle = runtime_task.spawner_handle
        if handle is None:
            return ExitResult(exit_code=None, error="task was never started")
        await self.wait_task(runtime_task)
        # The main process is gone; what it left in its group (a `cmd &`) goes too.
        if group_alive(int(handle)):
            await kill_group(int(handle), self.options.grace_period)
        if self._subreaper:
            self._reap_orphans()
        self._procs.pop(handle, None)
        status = self._status.pop(handle, None)
        if status is None:
            return ExitResult(exit_code=None, error="exit status lost: the process was reaped "
                              "by someone else")
        if os.WIFSIGNALED(status):
            return ExitResult(exit_code=None, signal=os.WTERMSIG(status))
        return ExitResult(exit_code=os.waitstatus_to_exitcode(status))

    async def close(self) -> None:
        """A task may have left a process outside its group (`setsid cmd &`): as the
        subreaper we inherited it, and it must not outlive the job."""
        if not self._subreaper:
            return
        # Killing one may hand us its children in turn: a few rounds, bounded.
        for _ in range(3):
            escaped = self._escaped()
            if not escaped:
                break
            for pid, pgid in escaped:
                if pgid == os.getpgid(0):
                    await kill_group(pid, self.options.grace_period, single=True)
                else:
                    await kill_group(pgid, self.options.grace_period)
            self._reap_orphans()

    @staticmethod
    def _escaped() -> list[tuple[int, int]]:
        """(pid, its group) of our live children: every task is collected by now."""
        me = str(os.getpid())
        found = []
        for pid in (int(e) for e in os.listdir("/proc") if e.isdigit()):
            fields = stat_fields(pid)
            if fields and fields[1] == me and fields[0] not in ("Z", "X"):
                found.append((pid, int(fields[2])))
        return found

    async def reap_orphans(self, *, dry_run: bool = False) -> list[str]:
        from spawnkit.spawners.process_gc import reap_dead_runs

        return await reap_dead_runs(dry_run=dry_run, grace_period=self.options.grace_period)

    def unenforced(self, task: Task) -> list[str]:
        # A process shares the runner's host: no limit, mount or user switch applies. The
        # image is not a limit: a task file names one for the container backends.
        return list(task.limits.given())
