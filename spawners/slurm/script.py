"""A task as a Slurm job: the batch script, the sbatch options and the environment.

The script runs the node program (spawners.slurm.node), which runs the command under the
output helper: output masked on the node, into the task's folder (which must be on storage
the nodes share), the exact exit in `exit-status`. Slurm's own output file gets only what
the node program and slurmstepd say (`slurm.log`), never the command's output.

The environment has the same meaning as on the process backend: the runner's, less every
secret of the job the task does not declare (and any variable holding such a value), plus
the task's variables and its own secrets. sbatch runs in exactly that environment with
`--export=ALL`, so every secret travels by name through sbatch's environment, never on a
command line or in a file of ours (--export=NONE or a list of names would instead make the
node build root's login environment, slower and different per site).
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from spawnkit.core.task.description import SlurmSettings, Task

__all__ = [
    "EXIT_STATUS",
    "FORBIDDEN_OPTIONS",
    "SLURM_LOG",
    "JobRequest",
    "forbidden_options",
    "job_script",
    "sbatch_options",
]

#: Slurm's output file in the task's folder: slurmstepd's and the node program's words.
SLURM_LOG = "slurm.log"
EXIT_STATUS = "exit-status"  # core.maskpipe's file (not imported: it is the node's module)

#: sbatch options spawnkit sets itself: an `extra` naming one would break the backend.
FORBIDDEN_OPTIONS = (
    "--output", "-o", "--error", "-e", "--export", "--export-file", "--comment", "--parsable",
    "--wrap", "--requeue", "--no-requeue", "--chdir", "-D", "--clusters", "-M", "--array",
    "-a", "--job-name", "-J", "--open-mode", "--input", "-i", "--wait", "-W", "--test-only",
)


def forbidden_options(settings: SlurmSettings | None) -> list[str]:
    """The `extra` options that spawnkit sets itself (and so may not be given), however
    written: sbatch takes any unambiguous beginning of a long option for it (getopt_long's
    `--comm` is `--comment`), and a short one's value may follow it in the same word."""
    if settings is None:
        return []
    bad = []
    for option in settings.extra:
        name = option.split("=", 1)[0]
        if name.startswith("--") and len(name) > 2:
            hit = any(f.startswith(name) for f in FORBIDDEN_OPTIONS if f.startswith("--"))
        else:
            hit = name[:2] in FORBIDDEN_OPTIONS
        if hit:
            bad.append(option)
    return bad


@dataclass(frozen=True)
class JobRequest:
    """What one task asks of sbatch."""

    task: Task
    out_dir: Path
    comment: str
    job_name: str
    #: The task's working folder, which must exist on the node (None: none asked for).
    cwd: str | None
    #: Where the batch script starts: the task's folder, else the runner's (sbatch's default;
    #: a node without it starts in /tmp, as Slurm does).
    chdir: str
    #: Seconds until spawnkit's own deadline, for the --time backstop (None: no deadline).
    remaining: float | None = None
    grace: float = 0.0
    #: The command to run on the node (the task's, or the container engine's).
    argv: tuple[str, ...] = ()
    #: Run once the command has ended (a container's removal).
    cleanup: tuple[str, ...] | None = None
    partition: str | None = None
    extra_applied: Mapping[str, object] = field(default_factory=dict)


def backstop_minutes(remaining: float, grace: float) -> int:
    """Slurm's --time, in whole minutes, past spawnkit's own deadline and grace: Slurm
    enforces it tens of seconds late anyway, so it only ends what spawnkit could not."""
    return max(1, math.ceil((remaining + grace + 60.0) / 60.0))


def sbatch_options(request: JobRequest) -> tuple[list[str], dict[str, object]]:
    """sbatch's arguments (the script comes on stdin), and what was applied (for results)."""
    task = request.task
    settings = task.slurm or SlurmSettings()
    limits = task.limits
    options = [
        "--parsable",
        "--no-requeue",  # else a node failure puts the job back in the queue: it runs twice
        "--export=ALL",
        f"--job-name={request.job_name}",
        f"--comment={request.comment}",
        f"--output={request.out_dir / SLURM_LOG}",
        f"--chdir={request.chdir}",
    ]
    applied: dict[str, object] = {}
    partition = request.partition or settings.partition
    for flag, value in (("partition", partition), ("account", settings.account),
                        ("qos", settings.qos)):
        if value is not None:
            options.append(f"--{flag}={value}")
            applied[flag] = value
    if limits.cpus is not None:
        cpus = max(1, math.ceil(limits.cpus))  # whole cpus: Slurm allocates no fractions
        options.append(f"--cpus-per-task={cpus}")
        applied["cpus_per_task"] = cpus
    if limits.memory is not None:
        mem = f"{max(1, math.ceil(limits.memory / 1024))}K"
        options.append(f"--mem={mem}")
        applied["mem"] = mem
    if request.remaining is not None:
        minutes = backstop_minutes(request.remaining, request.grace)
        options.append(f"--time={minutes}")
        applied["time_minutes"] = minutes
    # Last: a site's own options win over ours (a --time of its own, say).
    options += list(settings.extra)
    if settings.extra:
        applied["extra"] = list(settings.extra)
    applied.update(request.extra_applied)
    return options, applied


def job_script(request: JobRequest, python: str) -> str:
    """The batch script: the node program, with the task's spec (names, never values)."""
    task = request.task
    spec = {
        "out": str(request.out_dir),
        "cwd": request.cwd,
        "argv": list(request.argv or task.argv),
        "mask_env": list(task.secrets),
        "cleanup": list(request.cleanup) if request.cleanup else None,
    }
    return (
        "#!/bin/sh\n"
        f"# spawnkit: task {json.dumps(task.id)}; the command runs under the output helper.\n"
        f"exec {shlex.quote(python)} -I -m spawnkit.spawners.slurm.node "
        f"{shlex.quote(json.dumps(spec))}\n"
    )
