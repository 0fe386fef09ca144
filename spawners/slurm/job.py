"""A task's Slurm job as the runner knows it, and the calls that signal or cancel it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from spawnkit.spawners.slurm.commands import CommandFailed, SlurmTools
from spawnkit.spawners.slurm.labels import Label
from spawnkit.spawners.slurm.state import FORMAT, UNKNOWN_IDS, parse_squeue

__all__ = ["SCANCEL_TIMEOUT", "SlurmJob", "cancel_job", "cancel_lost", "signal_job"]

LOG = logging.getLogger(__name__)

SCANCEL_TIMEOUT = 15.0


@dataclass
class SlurmJob:
    """A task's job: its ID, its task's folder, its label, and what spawnkit did to it."""

    job_id: str
    out_dir: Path
    label: Label
    stopped: bool = False
    cancelled: bool = False
    #: Taken over from a dead runner (`spawnkit resume`): it may have ended long before.
    adopted: bool = False
    #: When it was submitted (monotonic seconds), and why it can never run, once that is
    #: known (SlurmSpawner.pending_wait).
    submitted: float = field(default_factory=time.monotonic)
    never_runs: str | None = None


async def signal_job(tools: SlurmTools, job: SlurmJob, signal: str) -> str:
    """Signal the batch script (the node program) alone: "sent", "gone" (the job has ended:
    success), or "pending" (not started: nothing to signal). CommandFailed otherwise."""
    done = await tools.run("scancel", "-b", f"--signal={signal}", job.job_id,
                           timeout=SCANCEL_TIMEOUT, handle=job.job_id)
    if done.returncode == 0:
        return "sent"
    if UNKNOWN_IDS in done.stderr:
        return "gone"
    if "can not be altered now" in done.stderr or "pending" in done.stderr.lower():
        return "pending"
    raise CommandFailed(f"cannot signal Slurm job {job.job_id}", argv=done.argv,
                        engine_message=done.words, returncode=done.returncode,
                        handle=job.job_id)


async def cancel_job(tools: SlurmTools, job: SlurmJob) -> None:
    """Cancel outright, saying first that spawnkit did (Slurm does not say who)."""
    job.cancelled = True
    tagged = job.label.cancelled_by("spawnkit").comment
    await tools.run("scontrol", "update", f"JobId={job.job_id}", f"Comment={tagged}",
                    timeout=SCANCEL_TIMEOUT, handle=job.job_id)
    await tools.check("scancel", job.job_id, what=f"cannot cancel Slurm job {job.job_id}",
                      timeout=SCANCEL_TIMEOUT, handle=job.job_id)


async def cancel_lost(tools: SlurmTools, job_name: str, label: Label) -> None:
    """An sbatch that did not answer may still have made the job: find it by its label, and
    cancel it (the task is reported as not started)."""
    try:
        done = await tools.run("squeue", "--me", "-h", "-t", "all", f"--name={job_name}",
                               "-O", FORMAT, timeout=SCANCEL_TIMEOUT)
        lost = [s.job_id for s in parse_squeue(done.stdout).values()
                if s.comment == label.comment and not s.ended]
        if lost:
            await tools.run("scancel", *lost, timeout=SCANCEL_TIMEOUT)
    except CommandFailed as exc:
        LOG.warning("slurm: a job of task %s may be left to 'spawnkit gc': %s", label.task, exc)
