"""The last steps of `run` and `resume`: run the job with its progress, print the summary, and
turn the result into the exit status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import click

from spawnkit.cli.main import EXIT_FAILED, EXIT_IO, EXIT_OK
from spawnkit.cli.progress import Progress
from spawnkit.cli.report import print_summary
from spawnkit.cli.streams import silence, unless_gone
from spawnkit.core.errors import ResultsUnwritable, UsageError
from spawnkit.core.job import Job
from spawnkit.core.joblock import LOCK_NAME
from spawnkit.core.journal import JOURNAL_NAME
from spawnkit.core.junit import junit_xml
from spawnkit.core.outputs import JOB_OUTPUTS, cannot_write
from spawnkit.core.results import JobResult

__all__ = ["STDOUT", "ResultPaths", "check_result_paths", "execute", "report_options",
           "show_result"]

F = TypeVar("F", bound=Callable[..., object])


def report_options(func: F) -> F:
    """`--junit PATH` and `--json PATH`, as run, resume and results take them."""
    func = click.option(
        "--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True), default=None,
        help="Also write results.json here ('-': to stdout, the summary to stderr).")(func)
    return click.option(
        "--junit", "junit_path", type=click.Path(dir_okay=False, allow_dash=True),
        default=None, help="Also write the JUnit XML report here ('-': to stdout).")(func)


#: What a job folder holds of its own: no copy is written over one.
_JOB_FILES = (*JOB_OUTPUTS, JOURNAL_NAME, LOCK_NAME)

#: `--json -`, `--junit -`: that document on standard output, the summary then on stderr (so
#: `spawnkit run FILE --json - | jq ...` reads JSON alone). The word as given: `./-` is a file.
STDOUT = "-"


@dataclass(frozen=True)
class ResultPaths:
    """Where --json and --junit go: files the job writes, or one document on stdout."""

    json_path: Path | None
    junit_path: Path | None
    to_stdout: str | None  # "json", "junit" or None


def check_result_paths(json_path: str | Path | None, junit_path: str | Path | None,
                       job_dir: Path | None = None) -> ResultPaths:
    """--json and --junit can be written (UsageError before the run, not an error after it):
    each a file of its own, and none of the job's own (`job_dir`, where it is known)."""
    if json_path == STDOUT and junit_path == STDOUT:
        raise UsageError("--json and --junit cannot both be '-': standard output takes one "
                         "document")
    own = ({os.path.realpath(job_dir / name) for name in _JOB_FILES}
           if job_dir is not None else set())
    files: dict[str, Path | None] = {}
    for flag, given in (("--json", json_path), ("--junit", junit_path)):
        path = None if given is None or given == STDOUT else Path(given)
        why = cannot_write(path) if path is not None else None
        if path is not None and os.path.realpath(path) in own:
            why = "it is one of the job's own files"
        if why is not None:
            raise UsageError(f"cannot write {flag} {path}: {why}")
        files[flag] = path
    both = [p for p in files.values() if p is not None]
    if len(both) == 2 and os.path.realpath(both[0]) == os.path.realpath(both[1]):
        raise UsageError(f"--json and --junit name the same file, {both[0]}: one would be "
                         "lost")
    to_stdout = "json" if json_path == STDOUT else "junit" if junit_path == STDOUT else None
    return ResultPaths(files["--json"], files["--junit"], to_stdout)


def show_result(job_dir: Path, result: JobResult, to_stdout: str | None) -> str | None:
    """The summary on stdout; with `--json -` / `--junit -`, that document there first (what a
    pipeline reads is out before anything else can fail) and the summary on stderr. Returns
    what the OS said when stdout would not take the document (exit 74, as for the job's own
    files)."""
    if to_stdout is None:
        try:
            with unless_gone(sys.stdout):  # `| head`: the status still says whether all passed
                print_summary(result, sys.stdout)
        except OSError as exc:  # `> /dev/full`
            silence(sys.stdout)  # what is left in its buffer: not again at the exit
            return (f"cannot write the summary to standard output: {exc.strerror or exc} "
                    f"(the results are in {job_dir})")
        return None
    not_out = _document_to_stdout(job_dir, result, to_stdout)
    with contextlib.suppress(OSError), unless_gone(sys.stderr):  # the document says it
        print_summary(result, sys.stderr)
    return not_out


def _document_to_stdout(job_dir: Path, result: JobResult, kind: str) -> str | None:
    document = (junit_xml(result, job_dir) if kind == "junit"
                else (json.dumps(result.as_dict(), indent=2) + "\n").encode())
    try:
        with unless_gone(sys.stdout):
            sys.stdout.flush()
            sys.stdout.buffer.write(document)
            sys.stdout.buffer.flush()
    except OSError as exc:
        return (f"cannot write --{kind} to standard output: {exc.strerror or exc} (the "
                f"results are in {job_dir})")
    return None


def execute(job: Job, progress: Progress, to_stdout: str | None = None) -> int:
    """0 every task passed, 1 one did not, 128+N stopped by signal N (130 SIGINT, 143
    SIGTERM, as shells report them), 74 its result files could not be written (the summary
    is printed all the same). A job with no task (a share left empty) passes. `to_stdout`
    ("json", "junit"): that document goes to stdout, and the summary to stderr."""
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
    not_out = show_result(job.job_dir, result, to_stdout)
    # A stderr that takes nothing (`2>/dev/full`) changes no exit status.
    with contextlib.suppress(OSError), unless_gone(sys.stderr):
        for error in (unwritten, not_out):
            if error is not None:
                click.echo(f"spawnkit: error: {error}", err=True)
        if unwritten is None and not_out is None:
            click.echo(f"results: {job.job_dir}", err=True)
    if job.stopped_by is not None:
        return 128 + job.stopped_by  # what a CI runner's cancel expects, written or not
    if unwritten is not None or not_out is not None:
        return EXIT_IO
    return EXIT_OK if result.passed else EXIT_FAILED
