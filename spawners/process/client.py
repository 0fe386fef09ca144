"""The runner's end of the task supervisor (spawners.process.supervisor): requests out, events
in, over the supervisor's standard input and output, read by the event loop as they come."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from spawnkit.core import runs

__all__ = [
    "DIR_FLAG",
    "JOB_FLAG",
    "OWNER_FLAG",
    "SERVICES_FLAG",
    "SUPERVISOR",
    "SupervisorClient",
    "SupervisorProcess",
    "supervisors",
]

SUPERVISOR = "spawnkit.spawners.process.supervisor"
OWNER_FLAG, JOB_FLAG, DIR_FLAG = "--owner", "--job", "--dir"
#: On the command line of a job's second supervisor, the one of its services.
SERVICES_FLAG = "--services"


class SupervisorProcess(NamedTuple):
    """A task supervisor running on this machine, as its command line names it."""

    pid: int
    owner: str
    job_id: str
    #: Its job's folder: a runner that took the job over (`spawnkit resume`) holds its lock.
    job_dir: str | None
    #: It runs the job's services, not its tasks.
    services: bool = False

    def left_alone(self, *, spare_recent: bool = False) -> bool:
        """Whether gc must leave its tasks: a runner holds the job now, whatever `owner` says
        (a resume), or may still take it over (core.runs.leave_alone)."""
        return runs.leave_alone(self.job_id, self.job_dir, spare_recent=spare_recent)


def supervisors() -> list[SupervisorProcess]:
    """Every task supervisor running on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in argv]
        if SUPERVISOR not in words or OWNER_FLAG not in words or JOB_FLAG not in words:
            continue
        flags = dict(itertools.pairwise(words))
        found.append(SupervisorProcess(int(entry.name), flags[OWNER_FLAG], flags[JOB_FLAG],
                                       flags.get(DIR_FLAG), SERVICES_FLAG in words))
    return found

LOG = logging.getLogger(__name__)


class SupervisorClient:
    """One supervisor process: `send` requests (written together, once per loop turn),
    `on_event` called for each event, `on_gone` once it has ended."""

    def __init__(self, on_event: Callable[[dict[str, Any]], None],
                 on_gone: Callable[[], None]) -> None:
        self._on_event = on_event
        self._on_gone = on_gone
        self._proc: subprocess.Popen[bytes] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[bytes] = []
        self._partial = b""

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, base_env: dict[str, str], owner: str, job_id: str,
              job_dir: Path | None = None, *, services: bool = False) -> None:
        """Start it with the environment every task starts from (its own). Its command line
        names the runner and the job: `spawnkit gc` finds a dead runner's tasks through it."""
        # Its own session: a Ctrl-C to the runner's group is the runner's to handle.
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-m", SUPERVISOR, OWNER_FLAG, owner, JOB_FLAG, job_id,
             *((DIR_FLAG, str(job_dir)) if job_dir is not None else ()),
             *((SERVICES_FLAG,) if services else ())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=base_env, start_new_session=True, close_fds=True,
        )
        assert self._proc.stdout is not None
        self._loop = asyncio.get_running_loop()
        os.set_blocking(self._proc.stdout.fileno(), False)
        self._loop.add_reader(self._proc.stdout.fileno(), self._readable)

    def send(self, request: dict[str, Any]) -> None:
        """Queue a request; the queue is written at the end of this turn of the loop."""
        if not self._pending and self._loop is not None:
            self._loop.call_soon(self._flush)
        self._pending.append((json.dumps(request) + "\n").encode())

    def _flush(self) -> None:
        proc = self._proc
        data, self._pending = b"".join(self._pending), []
        if proc is None or proc.stdin is None or not data:
            return
        try:
            proc.stdin.write(data)
            proc.stdin.flush()
        except OSError as exc:
            LOG.warning("process: the task supervisor is gone: %s", exc)

    def _readable(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        try:
            data = os.read(proc.stdout.fileno(), 1 << 16)
        except BlockingIOError:
            return
        if not data:
            self._stop_reading()
            self._on_gone()
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if line:
                self._on_event(json.loads(line))

    def _stop_reading(self) -> None:
        proc = self._proc
        if self._loop is not None and proc is not None and proc.stdout is not None:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(proc.stdout.fileno())

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def close(self, grace: float, within: float) -> None:
        """Ask it to end what tasks left behind and to exit; bounded."""
        proc = self._proc
        if proc is None:
            return
        self.send({"op": "close", "grace": grace})
        self._flush()
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        deadline = time.monotonic() + within
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        self._stop_reading()
        if proc.stdout is not None:
            proc.stdout.close()
        self._proc = None
