"""`spawnkit results JOB_DIR`: rebuild a job's result files from its journal."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

import click

from spawnkit.cli.execute import check_result_paths, report_options, show_result
from spawnkit.cli.main import EXIT_FAILED, EXIT_IO, EXIT_OK, cli
from spawnkit.cli.streams import unless_gone
from spawnkit.core.errors import UsageError
from spawnkit.core.joblock import ended_unrecorded, job_in_use
from spawnkit.core.journal import JOURNAL_NAME, rebuild_results
from spawnkit.core.outputs import write_extra_outputs, write_job_outputs

__all__ = ["results"]


@cli.command()
@click.argument("job_dir", type=click.Path(path_type=Path))
@report_options
def results(job_dir: Path, junit_path: str | None, json_path: str | None) -> int:
    """Rebuild results.json, results.xml and timeline.html of JOB_DIR from its journal; with
    --json/--junit, also the copies a CI reads (the job does not remember the paths its
    runner was given: name them again where it died before writing them).

    Tasks that were still running when the runner stopped are marked as lost.
    """
    paths = check_result_paths(json_path, junit_path, job_dir)
    if not (job_dir / JOURNAL_NAME).is_file():
        raise UsageError(f"{job_dir}: no {JOURNAL_NAME} here (is it a job folder?)")
    if job_in_use(job_dir):
        # Its runner writes them when the job ends; rebuilt now, its running tasks would
        # read as lost until then.
        raise UsageError(f"{job_dir}: the job is being run: its runner writes its results "
                         "when it ends (`spawnkit logs` follows a task meanwhile)")
    try:
        result = rebuild_results(job_dir)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    complete = not ended_unrecorded(job_dir)
    if not complete:
        click.echo(f"spawnkit: warning: {job_dir}: the journal misses the last changes its "
                   "runner could not write (a full disk): tasks that ended then show as lost "
                   "or not run", err=True)
    try:
        write_job_outputs(job_dir, result, journal_complete=complete)
    finally:  # a full disk: what the journal holds is still shown
        write_extra_outputs(job_dir, result, json_path=paths.json_path,
                            junit_path=paths.junit_path)
        not_out = show_result(job_dir, result, paths.to_stdout)
    if not_out is not None:
        with contextlib.suppress(OSError), unless_gone(sys.stderr):
            click.echo(f"spawnkit: error: {not_out}", err=True)
        return EXIT_IO
    return EXIT_OK if result.passed else EXIT_FAILED
