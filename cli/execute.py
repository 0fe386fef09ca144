"""The last steps of `run` and `resume`: run the job with its progress, print the summary, and
turn the result into the exit status."""

from __future__ import annotations

import asyncio
import sys

import click

from spawnkit.cli.main import EXIT_FAILED, EXIT_OK
from spawnkit.cli.progress import Progress
from spawnkit.cli.report import print_summary
from spawnkit.core.job import Job
from spawnkit.core.results import JobResult

__all__ = ["execute"]


def execute(job: Job, progress: Progress) -> int:
    """0 every task passed, 1 one did not, 128+N stopped by signal N (130 SIGINT, 143
    SIGTERM, as shells report them). A job with no task (a share left empty) passes."""
    progress.start()
    result: JobResult | None = None
    try:
        result = asyncio.run(job.run())
    finally:
        progress.close(result)
    print_summary(result, sys.stdout)
    click.echo(f"results: {job.job_dir}", err=True)
    if job.stopped_by is not None:
        return 128 + job.stopped_by
    return EXIT_OK if result.passed or not job.tasks else EXIT_FAILED
