"""The output helper: runs a task's command, masks its output into files, records its exit.

    python -m spawnkit.core.maskpipe OUT_DIR [--mask-env NAME,...] [--cwd DIR] -- COMMAND...

Like Podman's conmon, it is the parent of the task and outlives the runner: a runner killed with
`kill -9` leaves it writing the task's output, masked, into OUT_DIR/stdout and OUT_DIR/stderr,
and it records the task's raw wait status in OUT_DIR/exit-status once the task ends, so a later
runner (a resume) still learns how the task ended. The task runs in a session of its own (its
PID is its process group); the helper is in another, so a kill of the task's group leaves the
helper to drain what was written.

When the task exits, what it left running in its process group is killed, as a container's
processes end with its main one; output still in the pipes is read for a bounded time.

The values to mask are those of the environment variables named by --mask-env, and whatever
comes on standard input (NUL-separated, until end of input) when it is not a terminal. The
task's PID goes to standard output, one line; then standard output and error are closed.

Imports nothing of spawnkit but core.masking: it starts in a few milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from spawnkit.core.execerror import start_or_stand_in
from spawnkit.core.masking import Masker
from spawnkit.core.paths import write_atomic

__all__ = ["EXIT_STATUS", "main"]

#: The file in the output folder that holds the task's raw wait status, once it has ended.
EXIT_STATUS = "exit-status"

#: Seconds without output before what cannot be part of a secret is written anyway.
_IDLE = 0.2
_READ = 1 << 16
#: Seconds the pipes are read after the task exited: a process that left its group (setsid)
#: may hold them open for ever.
DRAIN_AFTER_EXIT = 2.0


def _values(args: argparse.Namespace) -> list[str]:
    values = [os.environ.get(name, "") for name in args.mask_env]
    if not sys.stdin.isatty():
        # NUL-separated: no environment value can hold one, any other byte it may.
        values += sys.stdin.buffer.read().decode(errors="surrogateescape").split("\0")
    return [v for v in values if v]


def _pump(sources: dict[int, tuple[int, Masker]], proc: subprocess.Popen[bytes],
          status_file: Path) -> None:
    """Copy every source pipe into its file, masked, until each one is at its end; record
    the task's exit as soon as it happens. Then what it left running in its group ends, as
    in a container whose main process exits (a `server &` must not hold the task on), and
    the pipes are read for DRAIN_AFTER_EXIT seconds at most."""
    exited = os.pidfd_open(proc.pid)
    drain_until: float | None = None
    while sources or exited >= 0:
        if drain_until is not None and time.monotonic() >= drain_until:
            for src, (fd, masker) in sources.items():
                _write(fd, masker.close())
                os.close(src)
            return
        watched = [*sources, exited] if exited >= 0 else list(sources)
        ready, _, _ = select.select(watched, [], [], _IDLE)
        if not ready:
            for fd, masker in sources.values():
                _write(fd, masker.idle())
            continue
        if exited in ready:
            # Before the leader is reaped: until then its PID, the group's, is not reused.
            with contextlib.suppress(OSError):  # none left: already gone
                os.killpg(proc.pid, signal.SIGKILL)
            _record_exit(proc, status_file)
            os.close(exited)
            exited = -1
            drain_until = time.monotonic() + DRAIN_AFTER_EXIT
        for src in ready:
            if src not in sources:
                continue
            fd, masker = sources[src]
            chunk = os.read(src, _READ)
            if chunk:
                _write(fd, masker.feed(chunk))
                continue
            _write(fd, masker.close())
            os.close(src)
            del sources[src]


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m spawnkit.core.maskpipe")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--mask-env", default="", type=lambda s: [n for n in s.split(",") if n])
    parser.add_argument("--cwd", default=None)
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        parser.error("no command after --")
    cut = argv.index("--")
    args = parser.parse_args(argv[:cut])
    command = argv[cut + 1 :]
    values = _values(args)
    # Our own session: the task's group is killed apart from us.
    if os.getsid(0) != os.getpid():
        os.setsid()
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    files = {name: os.open(args.out_dir / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
             for name in ("stdout", "stderr")}
    try:
        proc = start_or_stand_in(command, lambda argv: subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out_w, stderr=err_w, cwd=args.cwd,
            start_new_session=True))
    except OSError as exc:
        print(f"cannot start {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127
    finally:
        os.close(out_w)
        os.close(err_w)
    print(proc.pid, flush=True)
    # The runner may be gone any time from now on: nothing more goes to it.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    sources = {out_r: (files["stdout"], Masker(values)), err_r: (files["stderr"], Masker(values))}
    _pump(sources, proc, args.out_dir / EXIT_STATUS)
    for fd in files.values():
        os.close(fd)
    return 0


def _record_exit(proc: subprocess.Popen[bytes], status_file: Path) -> None:
    _pid, status = os.waitpid(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    with contextlib.suppress(OSError):  # a full disk: the pump goes on; the status is lost
        write_atomic(status_file, f"{status}\n".encode(), make_folder=False)


if __name__ == "__main__":
    sys.exit(main())
