"""A task's Slurm job as the runner knows it, and the calls that signal or cancel it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from spawnkit.spawners.slurm.commands import CommandFailed, SlurmTools
from spawnkit.spawners.slurm.labels import Label
from spawnkit.spawners.slurm.state import FORMAT, UNKNOWN_IDS, JobState, never_fits, parse_squeue

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
    #: A stop found it ended by itself: its own exit stands (`ExitResult.ended_before_stop`).
    ended_first: bool = False
    #: A stop found it still in the queue (cancelled there, unless it began meanwhile).
    queued_at_stop: bool = False
    #: Taken over from a dead runner (`spawnkit resume`): it may have ended long before.
    adopted: bool = False
    #: Since when (monotonic seconds) it has waited in the queue for a reason no wait ends
    #: (state.never_fits), and, past SlurmSpawner.pending_wait, why it can never run.
    never_fits_since: float | None = None
    never_runs: str | None = None

    def waits_in_vain(self, state: JobState | None, pending_wait: float) -> bool:
        """True once squeue has said for `pending_wait` seconds that the job waits for a
        reason no wait ends (`never_runs` then says so); the clock starts again if the
        reason changes."""
        if state is None or state.state != "PENDING" or not never_fits(state.reason):
            self.never_fits_since = None
            return False
        now = time.monotonic()
        self.never_fits_since = self.never_fits_since or now
        if now - self.never_fits_since < pending_wait:
            return False
        self.never_runs = (f"Slurm job {self.job_id} still {state.words()} after "
                           f"{pending_wait:g} s, a reason no wait in the queue ends: Slurm will "
                           f"not run it as asked ('scontrol show job {self.job_id}' says why)")
        return True


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
