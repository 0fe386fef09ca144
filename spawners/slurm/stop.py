"""The stop of a task's Slurm job: TERM to its batch script, a grace, KILL, then an outright
cancel. A job that has not started is cancelled at once."""

from __future__ import annotations

import contextlib

from spawnkit.spawners.slurm.commands import SlurmTools
from spawnkit.spawners.slurm.job import SlurmJob, cancel_job, signal_job
from spawnkit.spawners.slurm.node import KILL_NOW, STOP_MARKER
from spawnkit.spawners.slurm.script import EXIT_STATUS
from spawnkit.spawners.slurm.watch import QueueWatch

__all__ = ["CANCEL_WAIT", "KILL_WAIT", "stop_job"]

#: After KILL (USR2 to the node program): seconds until the job is cancelled outright.
KILL_WAIT = 3.0
#: After an outright cancel: Slurm TERMs every process, KILLs after its KillWait (30 s by
#: default), then the job ends.
CANCEL_WAIT = 40.0

_KILL = KILL_NOW.name.removeprefix("SIG")


async def stop_job(tools: SlurmTools, watch: QueueWatch, job: SlurmJob,
                   grace_period: float) -> None:
    """End the job within about `grace_period` + KILL_WAIT seconds (+ CANCEL_WAIT when the
    node does not answer). Already ended, or no longer known to the controller, is stopped:
    no error. CommandFailed when Slurm refuses the cancel. A first stop that finds the
    command ended by itself sends nothing and says so (`job.ended_first`)."""
    if not (job.stopped or job.ended_first or (job.out_dir / STOP_MARKER).exists()) and (
            job.out_dir / EXIT_STATUS).exists():
        # The node recorded the command's own exit (and no stop of a runner before us came
        # first): its job ends without us. A stop asked again (collect finds the job still
        # there) goes on below.
        job.ended_first = True
        return
    # A fresh answer: the last one may be a second old, and a job queued then may run now.
    state = await watch.wait_ended(job.job_id, 0.0)
    if (state is not None and state.ended) or (state is None
                                                and watch.seen_since_submit(job.job_id)):
        job.ended_first = job.ended_first or not job.stopped
        return
    job.stopped = True
    with contextlib.suppress(OSError):
        (job.out_dir / STOP_MARKER).touch()
    if state is None or not state.started:
        job.queued_at_stop = True
        # Nothing of it runs to be signalled: scancel itself tries a signal to a pending job
        # again for a minute and a half ("can not be altered now"). One that starts in the
        # meantime is Slurm's to end (TERM, its KillWait, KILL): it takes no signal of ours
        # once cancelled.
        await cancel_job(tools, job)
        await watch.wait_ended(job.job_id, CANCEL_WAIT)
        return
    if grace_period > 0:
        sent = await signal_job(tools, job, "TERM")
        if sent == "gone":
            return
        if sent == "sent":
            state = await watch.wait_ended(job.job_id, grace_period)
            if state is None or state.ended:
                return
    if await signal_job(tools, job, _KILL) == "sent":
        state = await watch.wait_ended(job.job_id, KILL_WAIT)
        if state is None or state.ended:
            return
    await cancel_job(tools, job)
    await watch.wait_ended(job.job_id, CANCEL_WAIT)
