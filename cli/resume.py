"""`spawnkit resume JOB_DIR`: go on with a job whose runner died, in the same job folder."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

import click

from spawnkit.cli.execute import ResultPaths, check_result_paths, execute, report_options
from spawnkit.cli.main import cli
from spawnkit.cli.progress import make_progress
from spawnkit.cli.tails import DEFAULT_TAIL, ShowOutput
from spawnkit.core.errors import UsageError
from spawnkit.core.job import Job, JobSettings
from spawnkit.core.registry import make_spawner
from spawnkit.core.resume import read_takeover
from spawnkit.core.runs import STATE_VARIABLE
from spawnkit.core.services import service_secret_names
from spawnkit.core.spawner import SpawnerOptions
from spawnkit.core.taskcodec import from_json

__all__ = ["resume", "resume_job"]


@cli.command()
@click.argument("job_dir", type=click.Path(file_okay=False, path_type=Path))
@report_options
@click.option("--output", "show_output", type=click.Choice([o.value for o in ShowOutput]),
              default=None, help="Whose output's last lines go into the log (as for run).")
@click.option("--tail", type=click.IntRange(min=0), default=DEFAULT_TAIL, show_default=True,
              help="Lines of each stream --output shows.")
@click.option("-q", "--quiet", is_flag=True, help="No progress lines: only the summary.")
@click.option("-v", "--verbose", is_flag=True, help="More progress: commands, handles, stops.")
@click.option("--no-gc", is_flag=True, help="Do not reap what other dead runners left first.")
def resume(job_dir: Path, junit_path: str | None, json_path: str | None,
           show_output: str | None, tail: int, quiet: bool, verbose: bool, no_gc: bool) -> int:
    """Go on with the job of JOB_DIR, whose runner is gone: tasks still running are taken
    over (not restarted), those that ended meanwhile are collected, those not begun run now;
    the job's own backend, task list and settings. Refused while its runner is alive."""
    return resume_job(job_dir, junit_path=junit_path, json_path=json_path,
                      show_output=show_output, tail=tail, quiet=quiet, verbose=verbose,
                      no_gc=no_gc)


def resume_job(job_dir: Path, *, taskfile: str | None = None, junit_path: str | None,
               json_path: str | None, show_output: str | None, tail: int, quiet: bool,
               verbose: bool, no_gc: bool) -> int:
    """`resume`, and `run --resume` (whose TASKFILE, if given, must be the job's)."""
    if verbose:
        logging.getLogger("spawnkit").setLevel(logging.INFO)
    paths = check_result_paths(json_path, junit_path)
    job_dir = job_dir.resolve()  # `latest` is a link; the nodes of a cluster need the path
    takeover = read_takeover(job_dir)
    # Every secret of the job, from the environment again: without one, what a task printed
    # while no runner watched could not be masked, nor a task not begun be given it.
    needed = {n for t in takeover.tasks for n in t.secrets} | service_secret_names(takeover.tasks)
    missing = sorted(n for n in needed if n not in os.environ)
    if missing:
        raise UsageError(f"{job_dir}: the job's secrets must be in the environment to resume "
                         f"it: {', '.join(missing)} not set")
    try:
        options = from_json(SpawnerOptions, takeover.header.get("options") or {})
        recorded = from_json(JobSettings, takeover.header.get("settings") or {})
    except (TypeError, KeyError, ValueError) as exc:
        raise UsageError(f"{job_dir}: the job's settings in its journal cannot be read: "
                         f"{exc}") from None
    ran = recorded.task_file
    if ran is not None and recorded.workdir is not None:
        ran = os.path.join(recorded.workdir, ran)  # as given to its runner, where it ran
    if taskfile is not None and (ran is None or not _same_file(taskfile, ran)):
        raise UsageError(f"{job_dir}: the job ran {ran or 'a command'}, not {taskfile}")
    paths = _go_where_it_ran(recorded.workdir, paths)
    spawner = make_spawner(takeover.spawner, dataclasses.replace(options, spare_resumable=True))
    settings = dataclasses.replace(recorded, handle_signals=True, reap_orphans=not no_gc,
                                   json_path=paths.json_path, junit_path=paths.junit_path)
    progress = make_progress(takeover.tasks, quiet=quiet, verbose=verbose, job_dir=job_dir,
                             tail=tail, show_output=ShowOutput(show_output) if show_output
                             else None)
    progress.ended_before({task_id: str(standing.final.get("result"))
                           for task_id, standing in takeover.standings.items()
                           if standing.final is not None})
    job = Job(takeover.tasks, spawner, job_dir, takeover.job_id, settings,
              listeners=[progress], takeover=takeover)
    return execute(job, progress, paths.to_stdout)


def _go_where_it_ran(workdir: str | None, paths: ResultPaths) -> ResultPaths:
    """Into the runner's working folder, where a task with no `cwd` ran (found by a user's
    try: one resumed from elsewhere ran there). The result copies stay where they were asked
    for from here."""
    if workdir is None or os.path.realpath(workdir) == os.path.realpath(os.getcwd()):
        return paths
    if not os.path.isdir(workdir):
        click.echo(f"spawnkit: warning: the job ran in {workdir}, which is gone: its tasks "
                   f"with no cwd run in {os.getcwd()}", err=True)
        return paths
    paths = dataclasses.replace(
        paths, json_path=paths.json_path.absolute() if paths.json_path else None,
        junit_path=paths.junit_path.absolute() if paths.junit_path else None)
    state = os.environ.get(STATE_VARIABLE)
    if state:  # the index of running jobs stays the one named from here
        os.environ[STATE_VARIABLE] = os.path.abspath(state)
    os.chdir(workdir)
    return paths


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)
