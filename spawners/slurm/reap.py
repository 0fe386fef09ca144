"""The Slurm jobs that dead runners left behind (`spawnkit gc`), found by their labels (and left
alone when a runner that took the job over holds it: `spawnkit resume`)."""

from __future__ import annotations

import asyncio
import time

from spawnkit.core import runs
from spawnkit.spawners.slurm.commands import SlurmTools
from spawnkit.spawners.slurm.labels import Label
from spawnkit.spawners.slurm.node import KILL_NOW
from spawnkit.spawners.slurm.state import ENDING, FORMAT, JobState, parse_squeue

__all__ = ["orphans", "reap"]

TIMEOUT = 15.0
#: Seconds the KILLed jobs get to end before they are cancelled outright.
KILLED_WITHIN = 3.0


def orphans(listed: dict[str, JobState], *,
            spare_recent: bool = False) -> list[tuple[JobState, Label]]:
    """The queued or running jobs of ours whose runner is dead on this host (core.owner: a
    runner elsewhere, or a label we cannot read, is never ours to take)."""
    found = []
    for state in listed.values():
        label = Label.parse(state.comment)
        if label is None or state.ended or state.state in ENDING or not label.orphaned:
            continue
        if runs.leave_alone(label.job, label.job_dir, spare_recent=spare_recent):  # resumed?
            continue
        found.append((state, label))
    return found


async def reap(tools: SlurmTools, *, dry_run: bool, spare_recent: bool = False) -> list[str]:
    """End the jobs of dead runners at once, one line each: a dead runner's tasks get no grace,
    nobody is left to read their outcome. Each is tagged first (`cancel=gc`): Slurm itself does
    not say who ended a job. A running one is KILLed through its node program (USR2): a plain
    cancel would TERM it and wait Slurm's KillWait (30 s by default) before the KILL; what is
    still there then, and what never started, is cancelled."""
    done = await tools.check("squeue", "--me", "-h", "-O", FORMAT,
                             what="cannot list the Slurm jobs", timeout=TIMEOUT)
    found = orphans(parse_squeue(done.stdout), spare_recent=spare_recent)
    if found and not dry_run:
        await asyncio.gather(*(
            tools.run("scontrol", "update", f"JobId={state.job_id}",
                      f"Comment={label.cancelled_by('gc').comment}", timeout=TIMEOUT)
            for state, label in found))
        running = [state.job_id for state, _ in found if state.started]
        if running:
            await tools.run("scancel", "-b", f"--signal={KILL_NOW.name.removeprefix('SIG')}",
                            *running, timeout=TIMEOUT)
            await _until_ended(tools, running, KILLED_WITHIN)
        await tools.check("scancel", *(state.job_id for state, _ in found),
                          what="cannot cancel the jobs of dead runners", timeout=TIMEOUT)
    return [f"Slurm job {state.job_id} (job {label.job}, task {label.task})"
            for state, label in found]


async def _until_ended(tools: SlurmTools, job_ids: list[str], within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        done = await tools.run("squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-O",
                               FORMAT, timeout=TIMEOUT)
        states = parse_squeue(done.stdout)
        if all(s.ended for s in states.values()):
            return
        await asyncio.sleep(0.1)
