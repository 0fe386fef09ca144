"""One running task's process, and how it is started.

A task whose output needs no masking is forked with its stdout and stderr on its files
directly: nothing stands between it and the disk, and nothing costs a thing. A task whose
output may hold a secret's value runs under the output helper (core.maskpipe), which masks
before it writes and outlives the runner; the task is then the helper's child, not ours.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import ClassVar

from spawnkit.core.errors import StartError
from spawnkit.core.maskpipe import EXIT_STATUS
from spawnkit.core.procfs import is_alive, start_ticks
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import ExitResult

__all__ = ["ProcessHandle", "start_process"]

_LOST = -1


class ProcessHandle:
    """A task's process: `pid` (its process group too) and, once it ended, its raw wait
    status. `popen` is our child: the task itself, or its output helper (`monitored`)."""

    __slots__ = ("monitored", "out_dir", "pid", "popen", "start", "status")

    #: Main PIDs of running tasks of every process spawner here, and how many spawns are
    #: between their fork and their entry in it: a subreaper's orphan reaping must never
    #: take a task, anyone's.
    tracked: ClassVar[set[int]] = set()
    spawning: ClassVar[list[int]] = [0]
    spawning_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, popen: subprocess.Popen[bytes], pid: int, out_dir: Path,
                 *, monitored: bool) -> None:
        self.popen = popen
        self.pid = pid
        self.out_dir = out_dir
        self.monitored = monitored
        self.start = start_ticks(pid)
        self.status: int | None = None

    @property
    def ended(self) -> bool:
        return self.status is not None

    def reap(self) -> bool:
        """Learn whether the task's main process has ended; True once it has."""
        if self.status is not None:
            return True
        if self.monitored:
            # The helper reaps the task; we learn of its end from /proc (a zombie has
            # ended), and read the status once the helper is done.
            if is_alive(self.pid):
                return False
            self.status = _LOST
            return True
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.status = _LOST  # someone else reaped it: its exit status went with it
            self.popen.returncode = -1
            return True
        if pid == 0:
            return False
        self.status = status
        # Tell Popen it is reaped, so its finaliser never waits on a reused PID.
        self.popen.returncode = os.waitstatus_to_exitcode(status)
        return True

    def helper_done(self) -> bool:
        """The output helper has written everything and exited (always, unmonitored)."""
        if not self.monitored:
            return True
        if self.popen.poll() is None:
            return False
        try:
            self.status = int((self.out_dir / EXIT_STATUS).read_text())
        except (OSError, ValueError):
            self.status = _LOST
        return True

    def exit_result(self) -> ExitResult:
        status = self.status
        if status is None or status == _LOST:
            return ExitResult(exit_code=None, error="exit status lost: the process was "
                              "reaped by someone else")
        if os.WIFSIGNALED(status):
            return ExitResult(exit_code=None, signal=os.WTERMSIG(status))
        return ExitResult(exit_code=os.waitstatus_to_exitcode(status))


def start_process(
    task: Task, cwd: str | None, env: dict[str, str], out_dir: Path, masked: tuple[str, ...]
) -> ProcessHandle:
    """Fork and exec, in a pool thread (the interpreter's lock is released meanwhile)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    counter, lock = ProcessHandle.spawning, ProcessHandle.spawning_lock
    with lock:
        counter[0] += 1
    try:
        handle = _under_helper(task, cwd, env, out_dir, masked) if masked else _direct(
            task, cwd, env, out_dir)
        ProcessHandle.tracked.update({handle.pid, handle.popen.pid})
        return handle
    except OSError as exc:
        raise StartError(f"cannot start {task.argv[0]!r}", spawner="process",
                         engine_message=exc.strerror or str(exc)) from exc
    finally:
        with lock:
            counter[0] -= 1


def _direct(task: Task, cwd: str | None, env: dict[str, str], out_dir: Path) -> ProcessHandle:
    with open(out_dir / "stdout", "wb") as out, open(out_dir / "stderr", "wb") as err:
        popen = subprocess.Popen(task.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                 cwd=cwd, env=env, start_new_session=True)
    return ProcessHandle(popen, popen.pid, out_dir, monitored=False)


def _under_helper(
    task: Task, cwd: str | None, env: dict[str, str], out_dir: Path, masked: tuple[str, ...]
) -> ProcessHandle:
    argv = [sys.executable, "-I", "-m", "spawnkit.core.maskpipe", str(out_dir)]
    if cwd is not None:
        argv += ["--cwd", cwd]
    popen = subprocess.Popen([*argv, "--", *task.argv], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                             start_new_session=True)
    assert popen.stdin is not None and popen.stdout is not None and popen.stderr is not None
    # The values go through a pipe: never on a command line, in a file or in its environment.
    popen.stdin.write(b"\0".join(v.encode() for v in masked))
    popen.stdin.close()
    line = popen.stdout.readline()
    popen.stdout.close()
    if not line.strip().isdigit():
        popen.wait()
        why = popen.stderr.read().decode(errors="replace").strip() or "the output helper failed"
        popen.stderr.close()
        raise OSError(why)
    popen.stderr.close()
    return ProcessHandle(popen, int(line), out_dir, monitored=True)
