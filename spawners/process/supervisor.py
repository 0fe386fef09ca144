"""The task supervisor of the process backend: a process of its own that starts a job's tasks,
reaps them and masks their output, as Podman's conmon does for a container.

    python -m spawnkit.spawners.process.supervisor --owner OWNER --job JOB_ID
                                                     (started by ProcessSpawner)

It reads requests on its standard input and writes events on its standard output, one JSON
object a line:

    -> {"op": "spawn", "key": K, "argv": [...], "cwd": D, "env": {...}, "out": DIR,
        "mask": ["value", ...], "stand_in": B,     start a task (env: what it adds to the
        "timeout": S, "grace": G}                  supervisor's own environment; stand_in:
                                                   a command that cannot be executed exits
                                                   127 or 126, core.execerror, rather than
                                                   failing to start; timeout: seconds to
                                                   its deadline, None for none)
    -> {"op": "stop", "pid": P, "grace": G}        the runner TERMed task P: should it die, P
                                                   still gets its KILL G seconds on
    -> {"op": "close", "grace": S}                 end what tasks left behind, then exit
    <- {"ev": "started", "key": K, "pid": P, "start": T, "drained": B}
    <- {"ev": "ready"}                             once, when it takes requests
    <- {"ev": "failed", "key": K, "error": E}
    <- {"ev": "exited", "key": K, "status": S,     the task's raw wait status, and when it
        "at": T}                                   was reaped (CLOCK_MONOTONIC seconds: the
                                                   runner's clock too, on the same host)
    <- {"ev": "drained", "key": K}                 all its output is in its files (when the
                                                   supervisor masks it; else drained is true)

Why a process of its own: forking and exec'ing take the runner's interpreter lock in Python
threads; here they take the supervisor's, so the runner's bookkeeping and the tasks' starts run
side by side on two cores. It is the parent and the subreaper of every task, so it learns every
exit (and reaps every orphan) with one blocking `wait()`, and it outlives a runner killed with
`kill -9`: it goes on masking its tasks' output into their files, and records each task's wait
status in DIR/exit-status once all its output is written, so a runner that takes the job over
(`spawnkit resume`) still learns how they ended. With its runner gone, it also stops a task at
its deadline as the runner would have (TERM, grace, KILL of its group), and says so in
DIR/timed-out (core.backstop): nothing runs on unbounded for want of a runner.

Imports nothing of spawnkit but core.masking, core.procfs, core.execerror, core.backstop and
spawners.process.leftovers: it starts in a few tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from spawnkit.core.backstop import kill_due, mark_timed_out
from spawnkit.core.execerror import start_or_stand_in
from spawnkit.core.masking import Masker
from spawnkit.core.paths import write_atomic
from spawnkit.core.procfs import live_processes, start_ticks
from spawnkit.spawners.process.leftovers import EndedGroups

__all__ = ["EXIT_STATUS", "main"]

#: The file in a task's output folder that holds its raw wait status, once it has ended.
EXIT_STATUS = "exit-status"

#: Threads that fork and exec: several execs under way at once (more only fight over the
#: interpreter's lock: 8 measured slower than 4 on two cores).
SPAWN_THREADS = 4

_IDLE = 0.2  # seconds without output before what cannot be a secret is written anyway


class Supervisor:
    def __init__(self) -> None:
        self._out_lock = threading.Lock()
        self._lock = threading.Lock()
        self.tasks: dict[int, tuple[str, Path]] = {}  # pid -> (key, output folder)
        #: key -> [wait status once reaped, output drained, output folder, pid]: the
        #: exit-status file is written once both are in.
        self.ends: dict[str, list[Any]] = {}
        # pid -> (status, when): reaped before its spawn thread registered it (or an orphan)
        self.early: dict[int, tuple[int, float]] = {}
        #: pid -> (deadline (monotonic), timeout, grace), until its TERM goes
        self.deadlines: dict[int, tuple[float, float, float]] = {}
        #: The grace the runner last gave: what leftovers get once its tasks have ended.
        self.grace = 5.0
        #: pid -> when its KILL is due: a stop the runner began (a cancel, --failfast) is
        #: carried through should the runner die within its grace (a CI's TERM, then KILL);
        #: so is one of the backstop's own.
        self.kill_at: dict[int, float] = {}
        #: What tasks that ended with their runner gone left in their groups, ended as the
        #: runner's collect would (spawners.process.leftovers); pid -> key of those tasks.
        self.ended_groups = EndedGroups()
        self.gone_exits: dict[int, str] = {}
        self._next_look = 0.0  # epoch seconds: when the tasks' kill-at marks are read next
        self.spawns: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.closing = threading.Event()
        self.runner_gone = threading.Event()
        self.all_done = threading.Condition(self._lock)
        # The reaper blocks in wait() only while there is a child; a spawn wakes it.
        self._has_child = threading.Event()
        self._generation = 0

    # -- talking to the runner ---------------------------------------------------------------

    def say(self, event: dict[str, Any]) -> None:
        if self.runner_gone.is_set():
            return
        line = (json.dumps(event) + "\n").encode()
        with self._out_lock:
            try:
                os.write(1, line)
            except OSError:  # the runner is gone: go on for the tasks' sake
                self.runner_gone.set()

    # -- starting ----------------------------------------------------------------------------

    def spawner(self) -> None:
        while True:
            request = self.spawns.get()
            if request is None:
                self.spawns.put(None)
                return
            if self.runner_gone.is_set():
                continue  # asked for by a runner now dead: nobody would watch it, nor know
            self.spawn(request)

    def spawn(self, request: dict[str, Any]) -> None:
        key, out = str(request["key"]), Path(request["out"])
        # Our own environment is the tasks' (the runner started us with it): inherited as it
        # is, unless the task adds to it.
        added = request.get("env")
        env = {**os.environ, **added} if added else None
        mask = [v for v in request.get("mask", ()) if v]
        began = time.monotonic()
        argv, cwd = request["argv"], request.get("cwd")

        def start(words: list[str]) -> tuple[subprocess.Popen[bytes], list[threading.Thread]]:
            return self._start(words, cwd, env, out, mask)

        try:
            out.mkdir(parents=True, exist_ok=True)
            proc, pumps = (start_or_stand_in(argv, start) if request.get("stand_in")
                           else start(argv))
        except OSError as exc:
            self.say({"ev": "failed", "key": key, "error": exc.strerror or str(exc)})
            return
        proc.returncode = 0  # ours to reap, not Popen's (its finaliser must not wait on it)
        self.say({"ev": "started", "key": key, "pid": proc.pid, "start": start_ticks(proc.pid),
                  "drained": not pumps})
        timeout = request.get("timeout")
        self.grace = float(request.get("grace", self.grace))
        with self._lock:
            self.tasks[proc.pid] = (key, out)
            if timeout is not None:
                self.deadlines[proc.pid] = (began + float(timeout), float(timeout), self.grace)
            self.ends[key] = [None, not pumps, out, proc.pid]
            early = self.early.pop(proc.pid, None)
            self._generation += 1
            self._has_child.set()
        if early is not None and early[1] >= began:  # else an orphan's, its PID since reused
            self._exited(proc.pid, *early)
        if pumps:
            threading.Thread(target=self._drain, args=(key, pumps), daemon=True).start()

    def _start(self, argv: list[str], cwd: str | None, env: dict[str, str] | None, out: Path,
               mask: list[str]) -> tuple[subprocess.Popen[bytes], list[threading.Thread]]:
        if mask:
            return self._piped(argv, cwd, env, out, mask)
        with open(out / "stdout", "wb") as so, open(out / "stderr", "wb") as se:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                    cwd=cwd, env=env, start_new_session=True), []

    def _piped(self, argv: list[str], cwd: str | None, env: dict[str, str] | None, out: Path,
               mask: list[str]) -> tuple[subprocess.Popen[bytes], list[threading.Thread]]:
        """A task whose output may hold a secret: through pipes, masked before it is written."""
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True)
        pumps = []
        for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
            assert stream is not None
            thread = threading.Thread(target=_pump, args=(stream, out / name, mask),
                                      daemon=True)
            thread.start()
            pumps.append(thread)
        return proc, pumps

    def _drain(self, key: str, pumps: list[threading.Thread]) -> None:
        for pump in pumps:
            pump.join()
        self._ended(key, drained=True)
        self.say({"ev": "drained", "key": key})

    def _ended(self, key: str, *, status: int | None = None, drained: bool = False) -> None:
        """Once a task has both exited and written all its output, its folder says how it
        ended: a runner killed meanwhile (which may never read our event) or one that takes
        the job over reads it there."""
        with self._lock:
            end = self.ends.get(key)
            if end is None:
                return
            if status is not None:
                end[0] = status
            end[1] = end[1] or drained
            if end[0] is None or not end[1]:
                return
        out = end[2]
        with contextlib.suppress(OSError):  # a full disk: the runner still hears our event
            write_atomic(out / EXIT_STATUS, f"{end[0]}\n".encode(), make_folder=False)
        # Only once the file is there: a supervisor whose runner is gone exits when none is
        # left to write.
        with self._lock:
            if self.ends.get(key) is end:
                del self.ends[key]
            self.all_done.notify_all()

    # -- ending ------------------------------------------------------------------------------

    def reaper(self) -> None:
        """Every child's end, tasks and orphans alike (we are their subreaper)."""
        while True:
            with self._lock:
                generation = self._generation
            try:
                pid, status = os.wait()
            except ChildProcessError:
                with self._lock:
                    if (self.runner_gone.is_set() or self.closing.is_set()) and not self.tasks:
                        self.all_done.notify_all()
                        return
                    if self._generation == generation:  # no child now: the next spawn makes one
                        self._has_child.clear()
                self._has_child.wait(1.0)
                continue
            now = time.monotonic()
            with self._lock:
                known = pid in self.tasks
                if not known:
                    self.early[pid] = (status, now)  # a task not registered yet, or an orphan
                    for old in [p for p, (_s, t) in self.early.items() if now - t > 60]:
                        del self.early[old]
            if known:
                self._exited(pid, status, now)

    def _exited(self, pid: int, status: int, at: float) -> None:
        with self._lock:
            key, _out = self.tasks.pop(pid)
            if self.runner_gone.is_set():
                self.gone_exits[pid] = key
            self.deadlines.pop(pid, None)
            self.kill_at.pop(pid, None)
            if not self.tasks:
                self.all_done.notify_all()
        self._ended(key, status=status)
        self.say({"ev": "exited", "key": key, "status": status, "at": at})

    def backstop(self, now: float) -> None:
        """With the runner gone: TERM the group of each task past its deadline (its folder
        saying so first), KILL it a grace later; KILL one whose stop a resume began, past its
        grace (core.backstop's `kill-at`, read once a second); end what an ended task left in
        its group, as the runner's collect would (its output pipes held open, its exit-status
        never comes)."""
        wall = time.time()
        with self._lock:
            due = [(pid, self.deadlines.pop(pid), self.tasks[pid][1])
                   for pid, (deadline, _t, _g) in list(self.deadlines.items())
                   if now >= deadline and pid in self.tasks]
            for pid, (_deadline, _timeout, grace), _out in due:
                self.kill_at.setdefault(pid, now + grace)
            killed = [pid for pid, when in self.kill_at.items()
                      if now >= when and pid in self.tasks]
            running = [(pid, out) for pid, (_key, out) in self.tasks.items()]
            ended = {**self.gone_exits, **{end[3]: key for key, end in self.ends.items()
                                          if end[0] is not None and not end[1]}}
        if wall >= self._next_look:
            self._next_look = wall + 1.0
            killed += [pid for pid, out in running if kill_due(out, wall)]
        for pid in self.ended_groups.step(ended, now, self.grace):
            self._ended(ended[pid], drained=True)  # its output is what is there
            with self._lock:
                self.gone_exits.pop(pid, None)
        for pid, (_deadline, timeout, _grace), out in due:
            mark_timed_out(out, timeout)
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGTERM)
        for pid in killed:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)

    def close(self, grace: float) -> None:
        """The runner collected its tasks: what they left behind (out of their groups, a
        `setsid cmd &`) ends too, TERM then KILL."""
        self.closing.set()
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            signalled: set[int] = set()
            deadline = time.monotonic() + wait
            while (left := _children()) and time.monotonic() < deadline:
                # One that dies leaves its own children to us (`setsid sh -c 'sleep 60'`: the
                # sleep, once sh is gone): they get the signal too, not the rest of the grace.
                for pid in left:
                    if pid not in signalled:
                        signalled.add(pid)
                        _signal_with_group(pid, sig)
                time.sleep(0.02)
            if not _children():
                return


def _pump(stream: IO[bytes], path: Path, mask: list[str]) -> None:
    masker = Masker(mask)
    fd = stream.fileno()
    with open(path, "wb", buffering=0) as out, stream:
        while True:
            ready, _, _ = select.select([fd], [], [], _IDLE)
            if not ready:
                out.write(masker.idle())
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                out.write(masker.close())
                return
            out.write(masker.feed(chunk))


def _signal_with_group(pid: int, sig: int) -> None:
    """`pid`, and its whole group when it leads one of its own (a `setsid` child's)."""
    with contextlib.suppress(OSError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _children() -> list[int]:
    me = str(os.getpid())
    return [pid for pid, fields in live_processes() if fields[1] == me]


def _become_subreaper() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER


def main() -> int:
    if os.getsid(0) != os.getpid():
        os.setsid()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner decides what ends, not a Ctrl-C
    _become_subreaper()
    sup = Supervisor()
    threads = [threading.Thread(target=sup.spawner, daemon=True) for _ in range(SPAWN_THREADS)]
    threads.append(threading.Thread(target=sup.reaper, daemon=True))
    for thread in threads:
        thread.start()
    sup.say({"ev": "ready"})
    grace = None
    for line in sys.stdin.buffer:
        request = json.loads(line)
        op = request.get("op")
        if op == "spawn":
            sup.spawns.put(request)
        elif op == "stop":
            with sup.all_done:
                sup.kill_at[int(request["pid"])] = time.monotonic() + float(request["grace"])
        elif op == "close":
            grace = float(request.get("grace", 5.0))
            break
    if grace is None:
        # The runner is gone: what it asked for and is not started yet never starts (its
        # journal says it may have: a resume reports it lost, it does not run unwatched).
        sup.runner_gone.set()
    sup.spawns.put(None)
    if grace is not None:
        sup.close(grace)
        return 0
    # Its tasks run on, to their deadlines at most: record how each one ends, then end what
    # they left behind (`setsid cmd &`), as at the end of a job whose runner lives.
    while True:
        with sup.all_done:
            if not (sup.tasks or sup.ends):  # exited, and drained into their files
                break
            sup.all_done.wait(0.2)
        sup.backstop(time.monotonic())
    sup.close(sup.grace)
    return 0


if __name__ == "__main__":
    sys.exit(main())
