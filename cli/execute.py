"""The last steps of `run` and `resume`: run the job with its progress, print the summary, and
turn the result into the exit status."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from spawnkit.cli.main import EXIT_FAILED, EXIT_IO, EXIT_OK
from spawnkit.cli.progress import Progress
from spawnkit.cli.report import print_summary
from spawnkit.cli.streams import unless_gone
from spawnkit.core.errors import ResultsUnwritable, UsageError
from spawnkit.core.job import Job
from spawnkit.core.outputs import cannot_write
from spawnkit.core.results import JobResult

__all__ = ["check_result_paths", "execute"]


def check_result_paths(json_path: Path | None, junit_path: Path | None) -> None:
    """--json and --junit can be written (UsageError before the run, not an error after it)."""
    for flag, path in (("--json", json_path), ("--junit", junit_path)):
        why = cannot_write(path) if path is not None else None
        if why is not None:
            raise UsageError(f"cannot write {flag} {path}: {why}")


def execute(job: Job, progress: Progress) -> int:
    """0 every task passed, 1 one did not, 128+N stopped by signal N (130 SIGINT, 143
    SIGTERM, as shells report them), 74 its result files could not be written (the summary
    is printed all the same). A job with no task (a share left empty) passes."""
    progress.start()
    result: JobResult | None = None
    unwritten: ResultsUnwritable | None = None
    try:
        result = asyncio.run(job.run())
    except ResultsUnwritable as exc:  # a full disk: what the run found is still said
        if exc.result is None:
            raise
        result, unwritten = exc.result, exc
    finally:
        progress.close(result)
    with unless_gone(sys.stdout):
        print_summary(result, sys.stdout)
    with unless_gone(sys.stderr):
        if unwritten is not None:
            click.echo(f"spawnkit: error: {unwritten}", err=True)
        else:
            click.echo(f"results: {job.job_dir}", err=True)
    if job.stopped_by is not None:
        return 128 + job.stopped_by  # what a CI runner's cancel expects, written or not
    if unwritten is not None:
        return EXIT_IO
    return EXIT_OK if result.passed or not job.tasks else EXIT_FAILED
