"""`spawnkit run`: a task file, or one ad hoc command after `--`."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import click

from spawnkit.cli.completion import complete_spawner
from spawnkit.cli.execute import check_result_paths, execute, report_options
from spawnkit.cli.kubeoptions import kubernetes_options
from spawnkit.cli.main import cli
from spawnkit.cli.params import Seconds
from spawnkit.cli.progress import make_progress
from spawnkit.cli.resume import resume, resume_job
from spawnkit.cli.selection import apply_selection, selection_options
from spawnkit.cli.sharding import apply_shard, shard_options
from spawnkit.cli.tails import DEFAULT_TAIL, ShowOutput
from spawnkit.core.copyout import ARTIFACTS_MAX
from spawnkit.core.errors import TaskFileError, UsageError
from spawnkit.core.job import (
    Job,
    JobSettings,
    make_job_dir,
    new_job_id,
    remove_unbegun_job_dir,
)
from spawnkit.core.plan import plan
from spawnkit.core.registry import DEFAULT_SPAWNER, make_spawner
from spawnkit.core.spawner import Spawner, SpawnerOptions
from spawnkit.core.task.description import SlurmSettings, Task
from spawnkit.core.task.stop import DEFAULT_GRACE_PERIOD
from spawnkit.core.taskfile import TASK_ID_VARIABLE, load_taskfile

__all__ = ["run"]


def _default_max_running() -> int:
    return max(2, os.cpu_count() or 2)


def check_enforced(spawner: Spawner, tasks: Sequence[Task], *, strict: bool) -> None:
    """Say which settings the backend cannot enforce; with --strict, refuse to run."""
    missing: dict[str, list[str]] = {}
    for task in tasks:
        for setting in spawner.unenforced(task):
            missing.setdefault(setting, []).append(task.id)
    if not missing:
        return
    what = ", ".join(f"{k} ({', '.join(ids)})" for k, ids in sorted(missing.items()))
    text = f"the {spawner.name} backend cannot enforce: {what}"
    if strict:
        raise UsageError(f"{text}; use a container backend, or drop --strict")
    logging.getLogger("spawnkit").warning("%s: ignored", text)


def warn_privileged(spawner: Spawner, tasks: Sequence[Task]) -> None:
    """One line for the job naming the tasks that run privileged (only ever when written)."""
    ids = [t.id for t in tasks if t.limits.privileged and "privileged" not in spawner.unenforced(t)]
    if ids:
        logging.getLogger("spawnkit").warning(
            "privileged = true: %s: every capability and the host's devices, "
            "no isolation from the host", ", ".join(ids),
        )


def with_network(tasks: Sequence[Task], network: str | None) -> list[Task]:
    """--network for the tasks whose task file sets none, as --image is for images."""
    if network is None:
        return list(tasks)
    return [
        t if t.limits.network is not None
        else replace(t, limits=replace(t.limits, network=network))
        for t in tasks
    ]


def with_slurm(tasks: Sequence[Task], partition: str | None, container: str | None) -> list[Task]:
    """--slurm-partition and --slurm-container for the tasks whose task file sets none (a
    task's own, then [defaults], win, as for --network)."""
    if partition is None and container is None:
        return list(tasks)
    out = []
    for task in tasks:
        settings = task.slurm or SlurmSettings()
        settings = replace(settings, partition=settings.partition or partition,
                           container=settings.container or container)
        out.append(replace(task, slurm=settings))
    return out


#: What `--resume` takes from the command line (what `spawnkit resume` takes, and the task
#: file to check); the job's own settings win over the rest.
_RESUME_TAKES = frozenset({p.name for p in resume.params} | {"taskfile", "resume_dir"})


def _say_ignored(ctx: click.Context) -> None:
    """One warning naming the options given on the command line that a resume does not take
    (found by a user's try: `--spawner docker --only x` were ignored without a word)."""
    ignored = sorted(
        "/".join(p.opts) for p in ctx.command.params
        if p.name not in _RESUME_TAKES and p.name is not None
        and ctx.get_parameter_source(p.name) is click.core.ParameterSource.COMMANDLINE)
    if ignored:
        click.echo(f"spawnkit: warning: --resume goes on with the job's own settings: "
                   f"{', '.join(ignored)} not taken", err=True)


@cli.command()
@kubernetes_options
@click.argument("taskfile", required=False, type=click.Path(dir_okay=False))
@click.option("--spawner", "spawner_name", shell_complete=complete_spawner,
              envvar="SPAWNKIT_SPAWNER", default=DEFAULT_SPAWNER,
              show_default=True,
              help="Backend: process, docker, podman, slurm, kubernetes (k8s), or a plug-in.")
@click.option("--max-running", type=click.IntRange(min=1), default=None,
              help="Tasks running at once [default: number of cores, at least 2].")
@click.option("--timeout", type=Seconds(min=0, min_open=True), default=None,
              help="Timeout in seconds for tasks that set none.")
@click.option("--grace", "grace_period", type=Seconds(min=0),
              default=DEFAULT_GRACE_PERIOD,
              show_default=True, help="Seconds between SIGTERM and SIGKILL.")
@click.option("--failfast", is_flag=True, help="Stop everything at the first task that fails.")
@click.option("--fail-on-flaky", is_flag=True,
              help="A task that passed only when retried fails the job.")
@click.option("--results", "results_root", type=click.Path(file_okay=False, path_type=Path),
              envvar="SPAWNKIT_RESULTS", default=Path("spawnkit-results"), show_default=True,
              help="Folder that receives one job folder per run.")
@click.option("--image", default=None, help="Image for tasks that name none (containers).")
@click.option("--engine-url", default=None, help="Engine API URL (else DOCKER_HOST etc.).")
@click.option("--keep-containers", is_flag=True, help="Do not remove ended containers.")
@click.option("--keep-failed", is_flag=True,
              help="Keep the containers of tasks that did not pass, for 'spawnkit shell "
                   "JOB_DIR TASK'; 'spawnkit gc' leaves them until 'spawnkit gc --kept'.")
@click.option("--engine-down-after", type=Seconds(min=0, min_open=True), default=20.0,
              envvar="SPAWNKIT_ENGINE_DOWN_AFTER", show_default=True,
              help="Seconds an engine may answer nothing before its running tasks end as error.")
@click.option("--network", type=click.Choice(["none", "bridge", "host"]), default=None,
              help="Network of the tasks that set none: a task's own 'network', else the one "
                   "in [defaults], wins (as with --image) [default: the engine's, bridge].")
@click.option("--slurm-partition", default=None, metavar="NAME",
              help="Slurm partition of the tasks whose task file names none (--spawner slurm).")
@click.option("--slurm-container", type=click.Choice(["docker", "podman"]), default=None,
              help="The nodes' engine for tasks with an image, where the task file names none "
                   "(--spawner slurm) [default: the command runs on the node, image ignored].")
@report_options
@click.option("--output", "show_output", type=click.Choice([o.value for o in ShowOutput]),
              default=None, help="Whose output's last lines go into the log, folded where the "
                                 "CI folds [default: failed with CI=true, else none].")
@click.option("--tail", type=click.IntRange(min=0), default=DEFAULT_TAIL, show_default=True,
              help="Lines of each stream --output shows.")
@click.option("--artifacts-max", type=click.IntRange(min=0), default=ARTIFACTS_MAX,
              show_default=True, metavar="BYTES", help="Artifacts kept per task, at most.")
@selection_options
@shard_options
@click.option("-q", "--quiet", is_flag=True, help="No progress lines: only the summary.")
@click.option("-v", "--verbose", is_flag=True, help="More progress: commands, handles, stops.")
@click.option("--no-gc", is_flag=True, help="Do not reap what dead runners left first.")
@click.option("--strict", is_flag=True,
              help="Refuse settings the backend cannot enforce, instead of a warning.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, metavar="JOB_DIR",
              help="Go on with this job, whose runner died, as 'spawnkit resume' does (the "
                   "job's own task list and settings; TASKFILE, if given, must be its file).")
@click.pass_context
def run(
    ctx: click.Context,
    taskfile: str | None,
    spawner_name: str,
    max_running: int | None,
    timeout: float | None,
    grace_period: float,
    failfast: bool,
    fail_on_flaky: bool,
    results_root: Path,
    image: str | None,
    engine_url: str | None,
    keep_containers: bool,
    keep_failed: bool,
    engine_down_after: float,
    network: str | None,
    slurm_partition: str | None,
    slurm_container: str | None,
    junit_path: str | None,
    json_path: str | None,
    show_output: str | None,
    tail: int,
    artifacts_max: int,
    only: tuple[str, ...],
    exclude: tuple[str, ...],
    keywords: tuple[str, ...],
    shard: str | None,
    durations: tuple[Path, ...],
    quiet: bool,
    verbose: bool,
    no_gc: bool,
    strict: bool,
    resume_dir: Path | None,
) -> int:
    """Run the tasks of TASKFILE, or one command: spawnkit run [OPTIONS] -- COMMAND [ARGS]."""
    if verbose:
        logging.getLogger("spawnkit").setLevel(logging.INFO)
    command: list[str] = ctx.obj.get("command", []) if ctx.obj else []
    if resume_dir is not None:
        if command:
            raise UsageError("--resume goes on with a job: give no command")
        _say_ignored(ctx)
        return resume_job(resume_dir, taskfile=taskfile, junit_path=junit_path,
                          json_path=json_path, show_output=show_output, tail=tail, quiet=quiet,
                          verbose=verbose, no_gc=no_gc)
    paths = check_result_paths(json_path, junit_path)
    if taskfile and command:
        raise UsageError("give a task file or a command after '--', not both")
    if command and (only or exclude or keywords):
        raise UsageError("--only, --exclude and -k select from a task file, not a command")
    if command and (shard or durations):
        raise UsageError("--shard and --durations split a task file, not a command")
    if command:
        tasks = [Task.make("command", command, image=image,
                           env={TASK_ID_VARIABLE: "command"})]
        task_file = None
    elif taskfile:
        loaded = load_taskfile(taskfile)
        if image is not None and image in loaded.images:
            # --image names an image the task file builds: the tasks that name none get it.
            loaded.tasks = [t if t.image else replace(t, image=image, build=loaded.images[image])
                            for t in loaded.tasks]
        chosen = apply_selection(loaded.tasks, only, exclude, keywords)
        tasks, task_file = apply_shard(plan(chosen), shard, durations), taskfile
    else:
        raise UsageError("give a task file, or a command after '--' (see 'spawnkit run --help')")
    tasks = with_slurm(with_network(tasks, network), slurm_partition, slurm_container)
    options = SpawnerOptions(
        engine_url=engine_url, image=image, keep_containers=keep_containers,
        keep_failed=keep_failed, grace_period=grace_period, engine_down_after=engine_down_after,
        artifacts_max=artifacts_max, spare_resumable=True,
    )
    spawner = make_spawner(spawner_name, options)
    if engine_url is not None and not spawner.takes_engine_url:
        raise UsageError(f"--engine-url: the {spawner.name} backend has no engine to point at "
                         "(it names a container engine's or a Kubernetes API server's URL)")
    refused = [(t.id, why) for t in tasks if (why := spawner.cannot_run(t)) is not None]
    if refused:
        raise TaskFileError(task_file or "spawnkit run", refused)
    check_enforced(spawner, tasks, strict=strict)
    warn_privileged(spawner, tasks)
    job_id = new_job_id()
    root_was_there = results_root.exists()
    try:
        job_dir = make_job_dir(results_root, job_id)
    except OSError as exc:
        raise UsageError(f"cannot make a job folder in {results_root}: {exc.strerror}") from None
    settings = JobSettings(
        max_running=max_running or _default_max_running(),
        task_timeout=timeout,
        failfast=failfast,
        grace_period=grace_period,
        task_file=task_file,
        handle_signals=True,
        reap_orphans=not no_gc,
        json_path=paths.json_path,
        junit_path=paths.junit_path,
        fail_on_flaky=fail_on_flaky,
        latest=results_root / "latest",
    )
    progress = make_progress(
        tasks, quiet=quiet, verbose=verbose, job_dir=job_dir, tail=tail,
        show_output=ShowOutput(show_output) if show_output else None,
    )
    job = Job(tasks, spawner, job_dir, job_id, settings, listeners=[progress])
    try:
        return execute(job, progress, paths.to_stdout)
    except BaseException:
        # Ended before it began (an engine that cannot be reached): no empty job folder.
        if remove_unbegun_job_dir(job_dir) and not root_was_there:
            with contextlib.suppress(OSError):
                results_root.rmdir()
        raise
