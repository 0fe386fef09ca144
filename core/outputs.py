"""Everything a job folder holds about a job's results, written in one place.

The command line calls this after a run, and so does the rebuild of a job from its journal,
so both leave the same files: results.json, results.xml (JUnit) and timeline.html.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from spawnkit.core.errors import ResultsUnwritable
from spawnkit.core.junit import write_junit
from spawnkit.core.results import JobResult, write_json
from spawnkit.core.timeline import write_timeline

__all__ = ["JOB_OUTPUTS", "cannot_write", "write_extra_outputs", "write_job_outputs"]

LOG = logging.getLogger(__name__)

#: File names in a job folder, in the order they are written.
JOB_OUTPUTS = ("results.json", "results.xml", "timeline.html")


def write_job_outputs(
    job_dir: Path, result: JobResult, *, journal_complete: bool = True
) -> dict[str, Path]:
    """Write the result files of `result` into `job_dir`; returns name -> path.

    The tasks' output files first (the ones of tasks that never started), then results.json:
    it is the record the others are drawn from. ResultsUnwritable when the file system
    refuses one (`journal_complete`: whether the journal could be written whole, so the
    files can be rebuilt from it later).
    """
    paths = {name: job_dir / name for name in JOB_OUTPUTS}
    _never_started_output(job_dir, result)
    try:
        write_json(paths["results.json"], result.as_dict())
        write_junit(paths["results.xml"], result, job_dir)
        write_timeline(paths["timeline.html"], result)
    except OSError as exc:
        raise ResultsUnwritable(str(job_dir), exc.strerror or str(exc),
                                rebuildable=journal_complete) from exc
    return paths


def _never_started_output(job_dir: Path, result: JobResult) -> None:
    """Every output file results.json names is there: a task (or a retry) that never started,
    skipped or stopped first, gets empty ones, so a CI step that reads each task's output
    needs no special case. An existing file is left as it is."""
    for record in result.tasks:
        earlier = [str(a[s]) for a in record.attempts for s in ("stdout", "stderr") if a.get(s)]
        for name in (record.stdout, record.stderr, *earlier):
            path = job_dir / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch(exist_ok=True)
            except OSError as exc:
                LOG.warning("cannot write %s: %s", path, exc.strerror or exc)


def write_extra_outputs(
    job_dir: Path,
    result: JobResult,
    *,
    json_path: Path | None = None,
    junit_path: Path | None = None,
) -> None:
    """Copies where a CI system wants them (`--json`, `--junit`), with tails from `job_dir`.
    One that cannot be written is a warning: the other is written all the same, and the job's
    own files hold the results."""
    for flag, given in (("--json", json_path), ("--junit", junit_path)):
        if given is None:
            continue
        # Through a symbolic link, not over it (the file is replaced by a rename).
        path = Path(os.path.realpath(given))
        try:
            if flag == "--json":
                write_json(path, result.as_dict())
            else:
                write_junit(path, result, job_dir)
        except OSError as exc:
            LOG.warning("cannot write %s %s: %s (the results are in %s)", flag, given,
                        exc.strerror or exc, job_dir)


def cannot_write(path: Path) -> str | None:
    """Why a result file cannot be written at `path`, or None: a file is tried in its folder
    and removed, with any folder made for the try (writing the result makes them again)."""
    if path.is_dir():
        return "it is a folder"
    if path.exists() and not path.is_file():
        return "not a regular file (it would be replaced by one)"
    path = Path(os.path.realpath(path))
    made = []  # deepest first
    for folder in (path.parent, *path.parent.parents):
        if folder.exists():
            if not folder.is_dir():
                return f"{folder} is not a folder"
            break
        made.append(folder)
    probe = path.with_name(f".{path.name}.probe")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    finally:
        for folder in made:
            with contextlib.suppress(OSError):
                folder.rmdir()
    return None
