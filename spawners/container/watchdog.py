"""The container watchdog: a job's tasks stopped at their deadlines when its runner is gone.

    python -m spawnkit.spawners.container.watchdog ENGINE_CLASS JOB_ID JOB_DIR [URL]
                                                     (started by ContainerSpawner)

The runner stops a task at its timeout. A runner killed with `kill -9` stops nothing, and
Docker has no run-time limit of its own (Kubernetes has activeDeadlineSeconds, Slurm --time;
the process backend's task supervisor outlives its runner): a container would run on until
`spawnkit gc` or a resume. So the first task with a timeout starts this helper, in a session
of its own (as does the first stop the runner begins, so a stop cut short by the runner's
death still ends in a KILL), which reads on its standard input what the runner tells it, one
JSON object a line:

    -> {"op": "watch", "id": C, "out": DIR,       container C, started at `started` (epoch s),
        "started": T, "timeout": S, "grace": G}   is due to end S seconds on
    -> {"op": "stop", "id": C, "out": DIR,        the runner TERMed it: should it not end, C
        "grace": G}                               gets its KILL G seconds on
    -> {"op": "forget", "id": C}                  collected
    -> {"op": "close"}                            the job ended: exit

It does nothing while the runner lives. At the end of its input with no `close` (the runner
is gone), it connects to the engine and, as the runner would have, TERMs each watched container
past its deadline (DIR/timed-out saying so first, core.backstop: a resume reports the task
timed out) and KILLs it a grace later. It exits once none it watches runs, or when a runner
holds the job again (`spawnkit resume` watches the tasks itself, with a watchdog of its own).

Until the runner is gone it imports nothing but the standard library and core.backstop: it
starts in a few tens of milliseconds and costs a job one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from spawnkit.core.backstop import clear_timed_out, mark_timed_out

if TYPE_CHECKING:  # not imported at run time: the watchdog starts with the standard library
    from spawnkit.spawners.container.engine import Engine

__all__ = ["WATCHDOG", "Watchdog", "Watched", "main"]

LOG = logging.getLogger(__name__)

WATCHDOG = "spawnkit.spawners.container.watchdog"

#: Seconds between two looks at the job's containers once the runner is gone.
POLL = 1.0
#: An engine that does not answer for this long ends the watch: its restart ends the
#: containers anyway, and a watchdog must not outlive what it watches by hours.
GIVE_UP = 600.0


@dataclass
class Watched:
    """One container, as the watchdog knows it."""

    out: Path
    deadline: float | None  # epoch seconds
    timeout: float
    grace: float
    kill_at: float | None = None  # epoch seconds: its KILL is due


class Watchdog:
    """The runner's end: one line per change (the first `watch` or `stopping` starts the
    process); `close` at the job's end."""

    def __init__(self, engine_class: type[Engine], job_id: str, job_dir: Path,
                 url: str | None) -> None:
        self._argv = [sys.executable, "-I", "-m", WATCHDOG,
                      f"{engine_class.__module__}:{engine_class.__qualname__}", job_id,
                      str(job_dir), *((url,) if url else ())]
        self._proc: subprocess.Popen[bytes] | None = None
        self._closed = False

    def watch(self, container_id: str, out: Path, started: float, timeout: float | None,
              grace: float) -> None:
        """Container `container_id` (its task's output folder `out`, started at `started`,
        epoch seconds) is due to end `timeout` seconds on (None: it has no timeout)."""
        if timeout is not None and self._started():
            self._send({"op": "watch", "id": container_id, "out": str(out),
                        "started": started, "timeout": timeout, "grace": grace})

    def stopping(self, container_id: str, out: Path, grace: float) -> None:
        """The runner TERMed it; its KILL is due `grace` seconds on."""
        if self._started():
            self._send({"op": "stop", "id": container_id, "out": str(out), "grace": grace})

    def _started(self) -> bool:
        if self._proc is None and not self._closed:
            # Its own session: a Ctrl-C or a CI's kill of the runner's group must not end it.
            try:
                self._proc = subprocess.Popen(
                    self._argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
            except OSError as exc:
                LOG.warning("cannot start the container watchdog: %s", exc)
                self._closed = True
        return self._proc is not None

    def forget(self, container_id: str) -> None:
        self._send({"op": "forget", "id": container_id})

    async def close(self) -> None:
        """Tell it the job ended; it exits at once, and is reaped (off the event loop)."""
        proc, self._proc, self._closed = self._proc, None, True
        if proc is None or proc.stdin is None:
            return
        with contextlib.suppress(OSError):
            proc.stdin.write(b'{"op": "close"}\n')
        with contextlib.suppress(OSError):
            proc.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(proc.wait, 5.0)

    def _send(self, request: dict[str, Any]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None:
            return
        try:
            proc.stdin.write((json.dumps(request) + "\n").encode())
            proc.stdin.flush()
        except OSError as exc:
            # Not started again: a new one would not know the deadlines this one had.
            LOG.warning("the container watchdog is gone (a runner killed now leaves its "
                        "containers to `spawnkit gc`): %s", exc)
            self._proc, self._closed = None, True
            with contextlib.suppress(OSError):
                proc.stdin.close()
            proc.poll()


def read_requests(stream: IO[bytes], watched: dict[str, Watched]) -> bool:
    """Follow the runner's requests until its end: True for a `close`, False for the end of
    input (the runner is gone)."""
    for line in stream:
        request = json.loads(line)
        op, cid = request.get("op"), str(request.get("id"))
        if op == "watch":
            timeout = float(request["timeout"])
            watched[cid] = Watched(Path(request["out"]), float(request["started"]) + timeout,
                                   timeout, float(request["grace"]))
        elif op == "stop":
            item = watched.setdefault(cid, Watched(Path(request["out"]), None, 0.0, 0.0))
            item.deadline = None  # stopped already: a timeout would say the wrong thing
            item.kill_at = time.time() + float(request["grace"])
        elif op == "forget":
            watched.pop(cid, None)
        elif op == "close":
            return True
    return False


def backstop(engine: Engine, job_id: str, job_dir: str, watched: dict[str, Watched]) -> None:
    """With the runner gone: stop each watched container at its deadline, until none runs."""
    # Only now: not on a living runner's path.
    from spawnkit.core import runs
    from spawnkit.spawners.container.spec import LABEL_JOB

    answered = time.monotonic()
    while watched:
        if runs.leave_alone(job_id, job_dir):
            return  # a resume holds the job: it watches the tasks now
        try:
            listed = engine.containers(f"{LABEL_JOB}={job_id}")
        except Exception as exc:
            if time.monotonic() - answered > GIVE_UP:
                return
            LOG.debug("watchdog: cannot list the job's containers: %s", exc)
            time.sleep(POLL)
            continue
        answered = time.monotonic()
        running = {c.id for c in listed if c.running}
        for cid in [c for c in watched if c not in running]:
            del watched[cid]
        now = time.time()
        for cid, item in watched.items():
            try:
                _act(engine, cid, item, now)
            except Exception as exc:  # still due: tried again at the next look
                LOG.debug("watchdog: cannot signal %s: %s", cid[:12], exc)
        due = [t for item in watched.values() for t in (item.deadline, item.kill_at)
               if t is not None]
        time.sleep(min([POLL, *(max(t - time.time(), 0.01) for t in due)]))


def _act(engine: Engine, cid: str, item: Watched, now: float) -> None:
    """A signal that is due; one whose call fails stays due (an engine error raises)."""
    if item.deadline is not None and now >= item.deadline:
        mark_timed_out(item.out, item.timeout)
        delivered = engine.kill(cid, "SIGTERM")
        item.deadline = None
        if not delivered:
            clear_timed_out(item.out)  # it had ended by itself: its own exit stands
            return
        item.kill_at = now + item.grace if item.kill_at is None else item.kill_at
    if item.kill_at is not None and now >= item.kill_at:
        engine.kill(cid, "SIGKILL")
        item.kill_at = None


def _connect(engine_path: str, url: str | None) -> Engine | None:
    """The engine, once it answers (None if it does not within GIVE_UP: an engine that
    restarts ends its containers, and `spawnkit gc` removes them)."""
    module, _, qualname = engine_path.partition(":")
    engine: Engine = getattr(importlib.import_module(module), qualname)(url, pool_size=2)
    began = time.monotonic()
    while True:
        try:
            engine.open()
            return engine
        except Exception:
            if time.monotonic() - began > GIVE_UP:
                return None
            time.sleep(POLL)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    engine_path, job_id, job_dir = args[0], args[1], args[2]
    url = args[3] if len(args) > 3 else None
    watched: dict[str, Watched] = {}
    if read_requests(sys.stdin.buffer, watched) or not watched:
        return 0
    engine = _connect(engine_path, url)
    if engine is None:
        return 1
    try:
        backstop(engine, job_id, job_dir, watched)
    finally:
        with contextlib.suppress(Exception):
            engine.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
