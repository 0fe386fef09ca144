"""`spawnkit shell JOB_DIR TASK`: an interactive shell in the state a task left.

The job's journal says which backend ran the task and what the runner knew of it (the task as
it ran, its handle, its spawning result); the backend makes the shell ready
(`Spawner.open_shell`: a copy of a kept container, a working folder), this command runs it in
the user's terminal and waits, then the backend removes what it made.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from spawnkit.cli.completion import complete_job_task
from spawnkit.cli.main import cli
from spawnkit.core.errors import UsageError
from spawnkit.core.journal import JOURNAL_NAME, read_job_journal, task_from_dict
from spawnkit.core.owner import runner_owner
from spawnkit.core.paths import safe_name
from spawnkit.core.registry import make_spawner
from spawnkit.core.results import final_entry
from spawnkit.core.shell import ShellSession
from spawnkit.core.spawner import JobContext, Spawner, SpawnerOptions
from spawnkit.core.task.runtime import RuntimeTask

__all__ = ["ShellTarget", "shell", "shell_target"]


@dataclass(frozen=True)
class ShellTarget:
    """A task of a job folder, as its runner knew it: enough for a backend to find its state."""

    runtime_task: RuntimeTask
    spawner: str
    job: JobContext
    #: The engine the task ran on, where the backend has one.
    engine_url: str | None


def shell_target(job_dir: Path, task_id: str) -> ShellTarget:
    """The task `task_id` of the job in `job_dir`, from its journal; UsageError when there is
    no such task, or it never started."""
    header, entries, _end = read_job_journal(job_dir)
    described: dict[str, dict[str, Any]] = {str(t.get("id")): t for t in header.get("tasks", ())}
    if task_id not in described:
        raise UsageError(f"{job_dir}: no task '{task_id}' "
                         f"(it has {', '.join(described) or 'none'})")
    history = [e for e in entries if e.get("task") == task_id]
    started = [e for e in history if e.get("status") == "started"]
    if not started:
        final = final_entry(history)
        result = final.get("result", "not run") if final is not None else "not run"
        raise UsageError(f"{job_dir}: task '{task_id}' never started ({result}): it left no "
                         "state to look into")
    entry = started[-1]  # a task run again (a retry) left its last state
    try:
        task = task_from_dict(described[task_id])
    except (KeyError, TypeError, ValueError) as exc:
        raise UsageError(f"{job_dir / JOURNAL_NAME}: task '{task_id}' cannot be read: "
                         f"{type(exc).__name__}: {exc}") from None
    runtime_task = RuntimeTask(task)
    runtime_task.spawner_handle = str(entry["handle"]) if entry.get("handle") else None
    spawned = entry.get("spawning_result")
    runtime_task.spawning_result = dict(spawned) if isinstance(spawned, dict) else {}
    runtime_task.output_dir = job_dir / "tasks" / safe_name(task_id)
    secret_names = frozenset(str(name) for t in described.values()
                             for name in t.get("secrets", ()))
    job = JobContext(str(header.get("job_id", job_dir.name)), job_dir, runner_owner(),
                     secret_names=secret_names)
    url = runtime_task.spawning_result.get("engine_url")
    return ShellTarget(runtime_task, str(entry.get("spawner") or header.get("spawner")), job,
                       url if isinstance(url, str) else None)


@cli.command()
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.argument("task", shell_complete=complete_job_task)
@click.option("--engine-url", default=None,
              help="Engine API URL [default: the one the task ran on].")
def shell(job_dir: Path, task: str, engine_url: str | None) -> int:
    """Open a shell in the state TASK of JOB_DIR left; exit with the shell's status.

    docker, podman: a new container of the file system of the task's container, kept by
    'spawnkit run --keep-failed' (or --keep-containers), with its mounts, working folder and
    isolation, running sh; it is removed when the shell ends. process: $SHELL (else sh) in
    the task's working folder, with its environment. Secrets are left out everywhere.
    Commands may come through stdin: echo 'cat out.log' | spawnkit shell JOB_DIR TASK.
    """
    target = shell_target(job_dir, task)
    spawner = make_spawner(target.spawner, SpawnerOptions(engine_url=engine_url
                                                          or target.engine_url))
    if type(spawner).open_shell is Spawner.open_shell:
        raise UsageError(f"the {spawner.name} backend has no shell: spawnkit shell looks "
                         f"into tasks of process, docker and podman (task '{task}')")
    return asyncio.run(_session(spawner, target))


async def _session(spawner: Spawner, target: ShellTarget) -> int:
    await spawner.open(None)
    try:
        try:
            session = await spawner.open_shell(target.runtime_task, target.job)
        except NotImplementedError as exc:
            raise UsageError(f"{exc} (task '{target.runtime_task.identifier}')") from None
        try:
            if session.banner:
                click.echo(f"spawnkit: {session.banner}", err=True)
            return await _run(session)
        finally:
            await session.close()
    finally:
        await spawner.close()


async def _run(session: ShellSession) -> int:
    """Run the shell in this terminal until it ends; its exit status (128+n for a signal)."""
    with _signals_to_the_shell() as forward:
        try:
            proc = await asyncio.create_subprocess_exec(*session.argv, env=session.env,
                                                        cwd=session.cwd)
        except OSError as exc:
            raise UsageError(f"cannot run {session.argv[0]}: {exc.strerror or exc}") from None
        forward.append(proc)
        code = await proc.wait()
    return 128 - code if code < 0 else code


@contextlib.contextmanager
def _signals_to_the_shell() -> Iterator[list[asyncio.subprocess.Process]]:
    """While the shell runs, the terminal's keys are the shell's: a Ctrl-C or Ctrl-\\ that
    reaches this process too is ignored here (else the copy would be removed under the shell).
    A TERM or HUP (the terminal closed) is passed on to the shell, and its end is then waited
    for as usual, so what was made for it is still removed. Handlers, not SIG_IGN: the shell
    starts with the default dispositions, as an exec resets caught signals."""
    loop = asyncio.get_running_loop()
    procs: list[asyncio.subprocess.Process] = []

    def forward(sig: int) -> None:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)

    ignored = (signal.SIGINT, signal.SIGQUIT)
    passed = (signal.SIGTERM, signal.SIGHUP)
    for sig in ignored:
        loop.add_signal_handler(sig, lambda: None)
    for sig in passed:
        loop.add_signal_handler(sig, forward, sig)
    try:
        yield procs
    finally:
        for sig in (*ignored, *passed):
            loop.remove_signal_handler(sig)  # SIGINT back to KeyboardInterrupt
