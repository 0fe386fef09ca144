"""Everything a job folder holds about a job's results, written in one place.

The command line calls this after a run, and so does the rebuild of a job from its journal,
so both leave the same files: results.json, results.xml (JUnit) and timeline.html.
"""

from __future__ import annotations

from pathlib import Path

from spawnkit.core.junit import write_junit
from spawnkit.core.results import JobResult, write_json
from spawnkit.core.timeline import write_timeline

__all__ = ["JOB_OUTPUTS", "write_extra_outputs", "write_job_outputs"]

#: File names in a job folder, in the order they are written.
JOB_OUTPUTS = ("results.json", "results.xml", "timeline.html")


def write_job_outputs(job_dir: Path, result: JobResult) -> dict[str, Path]:
    """Write the result files of `result` into `job_dir`; returns name -> path.

    results.json goes first: it is the record the others are drawn from.
    """
    paths = {name: job_dir / name for name in JOB_OUTPUTS}
    write_json(paths["results.json"], result.as_dict())
    write_junit(paths["results.xml"], result, job_dir)
    write_timeline(paths["timeline.html"], result)
    return paths


def write_extra_outputs(
    job_dir: Path,
    result: JobResult,
    *,
    json_path: Path | None = None,
    junit_path: Path | None = None,
) -> None:
    """Copies where a CI system wants them (`--json`, `--junit`), with tails from `job_dir`."""
    if json_path is not None:
        write_json(json_path, result.as_dict())
    if junit_path is not None:
        write_junit(junit_path, result, job_dir)
