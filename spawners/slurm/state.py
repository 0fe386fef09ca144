"""A Slurm job's state as one `squeue` call reports it, for all of a job's tasks at once.

`squeue -h -t all -j ID,ID,... -O ...` answers for pending, running and ended jobs alike (an
ended one for MinJobAge seconds: 300 by default), with the raw wait status of the batch
script (`exit_code`: 768 is exit 3, 9 is SIGKILL), which `-o` cannot print. Unknown IDs are
left out; when every ID is unknown, squeue fails with "Invalid job id specified", which means
"none known", not an outage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from spawnkit.core.task.outcome import signal_name

__all__ = [
    "ENDING",
    "FORMAT",
    "NEVER_FITS",
    "NOT_STARTED",
    "TERMINAL",
    "UNKNOWN_IDS",
    "JobState",
    "never_fits",
    "parse_squeue",
    "wait_status_words",
]

#: squeue's --Format: fields ended by "|" (an empty width means no padding and no cut);
#: the comment last, as it is ours and free text.
FIELDS = ("JobID", "State", "Reason", "exit_code", "NodeList", "Comment")
FORMAT = ",".join(f"{name}:|" for name in FIELDS)

#: States of a job that has ended: nothing of it runs any more.
TERMINAL = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "REVOKED", "SPECIAL_EXIT", "TIMEOUT",
})
#: Ending: the batch script is done or killed, the node is cleaning up (epilog, KillWait).
ENDING = frozenset({"COMPLETING", "STAGE_OUT"})
#: Not started yet: a signal to its batch script has nowhere to go.
NOT_STARTED = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "RESV_DEL_HOLD"})

#: Pending reasons that say the job asks for what the cluster, as configured, will not give
#: it (more CPUs than a node of the partition has, a time past its limit, an account or QOS
#: it may not use): no wait in the queue ends them (Slurm's JOB REASON CODES). sbatch takes
#: such a job unless the cluster sets EnforcePartLimits. Per-job limits of a QOS or an
#: association (`QOSMaxCpuPerJobLimit`, `AssocMaxWallDurationPerJobLimit`, ...) too.
NEVER_FITS = frozenset({"BadConstraints", "PartitionConfig", "PartitionTimeLimit",
                        "InvalidAccount", "InvalidQOS", "AccountNotAllowed", "QOSNotAllowed"})


def never_fits(reason: str) -> bool:
    """Whether a pending job's reason is one no wait in the queue ends."""
    return reason in NEVER_FITS or (reason.startswith(("QOSMax", "AssocMax"))
                                    and "PerJob" in reason)


#: What squeue and scancel say of a job the controller does not know (any more).
UNKNOWN_IDS = "Invalid job id specified"


@dataclass(frozen=True)
class JobState:
    """One job as squeue reported it."""

    job_id: str
    state: str  # PENDING, RUNNING, COMPLETING, COMPLETED, FAILED, CANCELLED, ...
    reason: str  # None, NonZeroExitCode, JobLaunchFailure, OutOfMemory, TimeLimit, ...
    wait_status: int | None  # the batch script's raw wait status, once it has ended
    node: str  # where it runs or ran ("" while pending)
    comment: str  # our label (core.owner, job, task), "" when none

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL

    @property
    def started(self) -> bool:
        return self.state not in NOT_STARTED

    def words(self) -> str:
        """The state as a person reads it: `FAILED (JobLaunchFailure, exit 1) on vm`."""
        details = [self.reason] if self.reason and self.reason != "None" else []
        if self.ended and self.wait_status:  # 0 says nothing (nor does Slurm, often)
            details.append(wait_status_words(self.wait_status))
        text = self.state + (f" ({', '.join(details)})" if details else "")
        return f"{text} on {self.node}" if self.node else text


def wait_status_words(status: int) -> str:
    """`exit 3`, `signal 9 (SIGKILL)`: a raw wait status in words."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        return f"signal {number} ({signal_name(number)})"
    if os.WIFEXITED(status):
        return f"exit {os.WEXITSTATUS(status)}"
    return f"wait status {status}"


def _status(text: str) -> int | None:
    text = text.strip()
    return int(text) if text.isdigit() else None


def _field(text: str) -> str:
    text = text.strip()
    return "" if text == "(null)" else text


def parse_squeue(text: str) -> dict[str, JobState]:
    """job ID -> state, from the output of `squeue -h -O FORMAT`. Lines that are not a job
    (a warning squeue printed on stdout) are skipped."""
    jobs: dict[str, JobState] = {}
    for line in text.splitlines():
        parts = line.split("|", len(FIELDS) - 1)
        if len(parts) != len(FIELDS) or not parts[0].strip().isdigit():
            continue
        job_id, state, reason, status, node, comment = parts
        # The last field keeps squeue's trailing "|"; a comment of ours never ends with one.
        words = state.split()
        jobs[job_id.strip()] = JobState(
            job_id.strip(), words[0] if words else "", _field(reason), _status(status),
            _field(node), _field(comment.rstrip().removesuffix("|")),
        )
    return jobs
