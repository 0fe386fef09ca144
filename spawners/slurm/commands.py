"""Slurm's command-line tools, as the backend calls them: each call bounded by a timeout, and
a failure that carries the command and the tool's own words.

The command-line tools, not Python bindings: pyslurm on PyPI is pinned to other Slurm
versions than the clusters run, and every Slurm installation has `sbatch`. The calls are
asyncio subprocesses, so no thread waits on a controller that does not answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from spawnkit.core.errors import BackendError, EngineUnavailable

__all__ = [
    "TOOLS",
    "CommandFailed",
    "Completed",
    "SlurmTools",
    "one_line",
]

#: The tools the backend runs; each is looked up once, on the runner's PATH.
TOOLS = ("sbatch", "squeue", "scontrol", "scancel")

#: Seconds any one call may take. A controller that is down makes squeue retry for about
#: 18 s and sbatch/scancel for 9 s before they fail (MessageTimeout): past these, the call is
#: killed and counted as not answered.
DEFAULT_TIMEOUT = 30.0


def one_line(text: str, limit: int = 400) -> str:
    """A tool's output as one line for a reason or a log, cut to `limit` characters."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


@dataclass(frozen=True)
class Completed:
    """A finished call: its arguments, exit status and output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def words(self) -> str:
        """What the tool said (stderr, else stdout), on one line."""
        return one_line(self.stderr) or one_line(self.stdout) or f"exit status {self.returncode}"


class CommandFailed(BackendError):
    """A Slurm command failed or did not answer in time. `engine_message` holds its words;
    `timed_out` says it was killed for taking too long (it may still have acted)."""

    def __init__(self, message: str, *, argv: Sequence[str], engine_message: str,
                 returncode: int | None = None, handle: str | None = None,
                 timed_out: bool = False) -> None:
        super().__init__(message, spawner="slurm", handle=handle, engine_message=engine_message)
        self.argv = tuple(argv)
        self.returncode = returncode
        self.timed_out = timed_out


class SlurmTools:
    """Absolute paths of the tools, and one way to run them."""

    def __init__(self, paths: Mapping[str, str]) -> None:
        self.paths = dict(paths)

    @classmethod
    def find(cls) -> SlurmTools:
        """Look the tools up on PATH; EngineUnavailable naming those missing."""
        found = {name: shutil.which(name) for name in TOOLS}
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise EngineUnavailable(
                f"cannot reach Slurm: {', '.join(missing)} not found on PATH (install Slurm's "
                "client commands, e.g. Debian's slurm-client, and its configuration)",
                spawner="slurm",
            )
        return cls({name: path for name, path in found.items() if path is not None})

    async def run(
        self,
        tool: str,
        *args: str,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        handle: str | None = None,
    ) -> Completed:
        """Run one tool; its exit status is the caller's to judge. CommandFailed when it
        cannot start or takes longer than `timeout` (then it is killed)."""
        argv = (self.paths[tool], *args)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=dict(env) if env is not None else None,
            )
        except OSError as exc:
            raise CommandFailed(f"cannot run {tool}", argv=argv, handle=handle,
                                engine_message=exc.strerror or str(exc)) from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        except BaseException as exc:
            # A timeout, or the caller cancelled: the tool must not outlive the wait.
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
            if isinstance(exc, TimeoutError):
                raise CommandFailed(
                    f"{tool} did not answer within {timeout:g} s", argv=argv, handle=handle,
                    engine_message=f"no answer from {shlex.join([tool, *args])[:200]}",
                    timed_out=True,
                ) from None
            raise
        assert proc.returncode is not None
        return Completed(argv, proc.returncode, out.decode(errors="replace"),
                         err.decode(errors="replace"))

    async def check(
        self,
        tool: str,
        *args: str,
        what: str,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        stdin: bytes | None = None,
        handle: str | None = None,
    ) -> Completed:
        """Run one tool; CommandFailed saying `what` failed, with its words, unless it exits 0."""
        done = await self.run(tool, *args, timeout=timeout, env=env, stdin=stdin, handle=handle)
        if done.returncode != 0:
            raise CommandFailed(what, argv=done.argv, engine_message=done.words,
                                returncode=done.returncode, handle=handle)
        return done
