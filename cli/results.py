"""`spawnkit results JOB_DIR`: rebuild a job's result files from its journal."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from spawnkit.cli.main import EXIT_FAILED, EXIT_OK, cli
from spawnkit.cli.report import print_summary
from spawnkit.cli.streams import unless_gone
from spawnkit.core.errors import UsageError
from spawnkit.core.joblock import ended_unrecorded, job_in_use
from spawnkit.core.journal import JOURNAL_NAME, rebuild_results
from spawnkit.core.outputs import write_job_outputs

__all__ = ["results"]


@cli.command()
@click.argument("job_dir", type=click.Path(path_type=Path))
def results(job_dir: Path) -> int:
    """Rebuild results.json, results.xml and timeline.html of JOB_DIR from its journal.

    Tasks that were still running when the runner stopped are marked as lost.
    """
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
        with unless_gone(sys.stdout):  # `| head`: the status still says whether all passed
            print_summary(result, sys.stdout)
    return EXIT_OK if result.passed else EXIT_FAILED
