"""What a task's Slurm job runs on its node: the command under the output helper.

    python -I -m spawnkit.spawners.slurm.node SPEC_JSON

SPEC_JSON: {"out": folder, "cwd": folder or null, "argv": [...], "mask_env": [names],
"cleanup": [argv] or null}. No secret's value is in it (they come by name, in the job's
environment), so it may show in `ps` and in Slurm's copy of the job script.

It is the job's batch script; it forks the output helper (core.maskpipe: a fork, not a
second interpreter), which runs the command: the command's output is masked here on the node
before it reaches the shared folder, and its exact wait status (an exit code or a signal)
lands in OUT/exit-status. Slurm's own output file (`--output`) gets only what this program,
the helper and slurmstepd say, never the command's output.

Signals, as spawnkit's terminate sends them to this batch script alone (`scancel -b`):
  TERM, INT, HUP  forwarded to the command's process group (the helper survives to drain the
                  output and record the exit; a plain `scancel`, which signals every process
                  of the job, is survived the same way);
  USR2            KILL to the command's process group: "kill now", with the exit recorded.
When the command exits, the helper kills what it left in its group (as a container's
processes end with its main one); those that left the group die with the job (Slurm's
cgroup).

Exit status: the command's (128 + N for a signal N), so squeue tells the same story;
2 when the working folder is missing; the helper's 127 when the command cannot start; 143
without starting it when spawnkit asked it to stop before this program ran (STOP_MARKER).
Lines starting "spawnkit:" on stderr (Slurm's output file) say why, for the runner.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
import traceback
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from spawnkit.core import maskpipe

__all__ = ["BEGAN", "EXIT_NO_CWD", "KILL_NOW", "STOP_MARKER", "main"]

#: The signal that asks for KILL of the command (KILL itself would end this program first,
#: and with it the output helper's record of the exit).
KILL_NOW = signal.SIGUSR2
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
EXIT_NO_CWD = 2
#: Written in the task's folder by spawnkit before it signals the job: a signal sent while
#: Slurm is still starting the batch script is lost, this file is not.
STOP_MARKER = ".stop"
#: Written in the task's folder as the command begins: when (epoch seconds, the node's
#: clock). The job's time in the queue and Slurm's launch are not the task's run time.
BEGAN = ".began"
#: Seconds a container's removal may take once its command ended.
CLEANUP_TIMEOUT = 20


class _Command:
    """The command's process group, once the helper has printed the command's PID (its
    group: a session of its own), and a signal that came before it was known."""

    group: int | None = None
    pending: int | None = None

    @classmethod
    def signal(cls, sig: int) -> None:
        if cls.group is None:
            # Not started, or its PID not printed yet: sent once it is (KILL wins).
            if cls.pending != signal.SIGKILL:
                cls.pending = sig
            return
        # Gone already: the helper is writing the rest of the output; let it finish.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(cls.group, sig)

    @classmethod
    def started(cls, pid: int) -> None:
        cls.group = pid
        if cls.pending is not None:
            cls.signal(cls.pending)


def _forward(signum: int, _frame: FrameType | None) -> None:
    _Command.signal(signal.SIGKILL if signum == KILL_NOW else signum)


def _ignore(_signum: int, _frame: FrameType | None) -> None:
    """The helper's handler: a plain scancel signals every process of the job, and the helper
    must live on to drain the output (a caught signal is reset at exec: the command gets
    every signal as usual)."""


def _say(fd: int, text: str) -> None:
    os.write(fd, f"spawnkit: {text}\n".encode(errors="replace"))


def _helper(spec: dict[str, Any], write_end: int) -> NoReturn:
    """In the forked child: the output helper (core.maskpipe), in a session of its own."""
    for sig in (*FORWARDED, KILL_NOW):
        signal.signal(sig, _ignore)
    # It prints the command's PID on stdout: into the pipe, not Slurm's output file.
    os.dup2(write_end, 1)
    os.close(write_end)
    args = [spec["out"]]
    if spec.get("mask_env"):
        args += ["--mask-env", ",".join(spec["mask_env"])]
    if spec.get("cwd") is not None:
        args += ["--cwd", spec["cwd"]]
    try:
        code = maskpipe.main([*args, "--", *spec["argv"]])
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    os._exit(code)


def _run_helper(spec: dict[str, Any]) -> int:
    """Fork the helper, learn the command's PID from it, wait for it; its exit code."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        _helper(spec, write_end)
    os.close(write_end)
    exited = os.pidfd_open(child)
    printed = b""
    watched = [read_end, exited]
    while True:
        ready, _, _ = select.select(watched, [], [])
        if read_end in ready:
            chunk = os.read(read_end, 64)
            printed += chunk
            if not chunk or b"\n" in printed:
                watched.remove(read_end)
                if printed.strip().isdigit():
                    _Command.started(int(printed))
        if exited in ready:
            break
    os.close(read_end)
    os.close(exited)
    _, status = os.waitpid(child, 0)
    return os.waitstatus_to_exitcode(status)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    spec = json.loads(args[0])
    for sig in (*FORWARDED, KILL_NOW):
        signal.signal(sig, _forward)
    if (Path(spec["out"]) / STOP_MARKER).exists():
        # Stopped while Slurm was still starting this script (its signal found nobody).
        _say(2, "stopped by spawnkit before the command started")
        return 128 + signal.SIGTERM
    cwd = spec.get("cwd")
    if cwd is not None and not os.path.isdir(cwd):
        _say(2, f"working folder '{cwd}' does not exist on node {socket.gethostname()}")
        return EXIT_NO_CWD
    with contextlib.suppress(OSError):
        (Path(spec["out"]) / BEGAN).write_text(f"{time.time()}\n")
    code = _run_helper(spec)
    cleanup = spec.get("cleanup")
    if cleanup:
        # The container's CLI is gone; the container may not be (a killed CLI): remove it.
        try:
            subprocess.run(cleanup, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=CLEANUP_TIMEOUT, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            _say(2, f"cannot remove the container: {exc}")
    if code != 0:
        return code  # the helper said why (it could not start the command)
    try:
        status = int((Path(spec["out"]) / maskpipe.EXIT_STATUS).read_text())
    except (OSError, ValueError) as exc:
        _say(2, f"the output helper recorded no exit status: {exc}")
        return 1
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
