"""The container a task becomes: command, environment, labels, limits and isolation.

Secrets go into the container's environment and nowhere else: not its labels, name or
command. Labels carry the job, the task and the owner runner, so `spawnkit gc` tells whose a
container is without any other record.
"""

from __future__ import annotations

from spawnkit.core.paths import safe_name
from spawnkit.core.secrets import secret_env
from spawnkit.core.spawner import JobContext
from spawnkit.core.task.description import Task
from spawnkit.spawners.container.engine import ContainerSpec, MountSpec
from spawnkit.spawners.container.isolation import isolation_of

__all__ = [
    "KEEP_ALL",
    "KEEP_FAILED",
    "LABEL_JOB",
    "LABEL_JOB_DIR",
    "LABEL_KEEP",
    "LABEL_MANAGED",
    "LABEL_OWNER",
    "LABEL_SERVICE",
    "LABEL_TASK",
    "WORKSPACE_TARGET",
    "container_name",
    "container_spec",
    "entrypoint_of",
    "is_kept",
]

LABEL_MANAGED = "spawnkit.managed"
LABEL_JOB = "spawnkit.job"
#: The job folder: `spawnkit gc` asks it whether a runner holds the job (one that resumed it
#: may not be in the gc's own index of runs).
LABEL_JOB_DIR = "spawnkit.job-dir"
LABEL_TASK = "spawnkit.task"
LABEL_OWNER = "spawnkit.owner"
#: On a service's container (`[[service]]`), its id (spawners.container.services).
LABEL_SERVICE = "spawnkit.service"
#: On containers kept on purpose: once ended, gc leaves them be (until `gc --kept`). Its value
#: says which: every container of the job (--keep-containers), or the ones of tasks that did
#: not pass (--keep-failed; the runner removes the others once it has read their outcome).
LABEL_KEEP = "spawnkit.keep"
KEEP_ALL = "true"
KEEP_FAILED = "failed"

#: Where a task's `workspace` folder is mounted, and its working folder unless it sets `cwd`.
WORKSPACE_TARGET = "/workspace"


def container_name(job: JobContext, task_id: str, attempt: int = 1) -> str:
    """A task's container's name: a retry's (`attempt` > 1) is its own, as the container of
    an earlier attempt may still be kept."""
    suffix = f"-attempt{attempt}" if attempt > 1 else ""
    return f"spawnkit-{job.job_id}-{safe_name(task_id)}{suffix}"


def container_spec(task: Task, job: JobContext, image: str, *, keep: bool = False,
                   attempt: int = 1, keep_failed: bool = False) -> ContainerSpec:
    """The container of `task` in `job`, on `image`."""
    limits = task.limits
    mounts = [MountSpec(m.target, m.source, m.read_only) for m in limits.mounts]
    if limits.workspace:
        mounts.append(MountSpec(WORKSPACE_TARGET, limits.workspace, limits.workspace_read_only))
    if limits.read_only:
        # A read-only root still needs somewhere to write scratch files.
        mounts.append(MountSpec("/tmp"))
    labels = {
        LABEL_MANAGED: "true",
        LABEL_JOB: job.job_id,
        LABEL_JOB_DIR: str(job.job_dir),
        LABEL_TASK: task.id,
        LABEL_OWNER: job.owner,
    }
    if keep or keep_failed:
        # A label is fixed once the container is made: a --keep-failed one says so from the
        # start, and is removed if its task passes.
        labels[LABEL_KEEP] = KEEP_ALL if keep else KEEP_FAILED
    isolation = isolation_of(limits)
    return ContainerSpec(
        image=image,
        command=task.argv,
        name=container_name(job, task.id, attempt),
        env={**task.environment, **secret_env(task)},
        workdir=task.workdir(WORKSPACE_TARGET),
        labels=labels,
        cpus=limits.cpus,
        memory=limits.memory,
        pids=isolation.pids,
        network=limits.network,
        user=limits.user,
        read_only=bool(limits.read_only),
        privileged=isolation.privileged,
        cap_add=isolation.cap_add,
        cap_drop=isolation.cap_drop,
        mounts=tuple(mounts),
        security_opt=isolation.security_opt,
        init=True,
        entrypoint=entrypoint_of(task),
    )


def entrypoint_of(task: Task) -> tuple[str, ...] | None:
    """None keeps the image's entrypoint; () replaces it (the command runs as given)."""
    if task.entrypoint == "image":
        return None
    if task.entrypoint is None or isinstance(task.entrypoint, str):
        return ()
    return task.entrypoint


def is_kept(labels: dict[str, str]) -> bool:
    """Whether a container's labels say it is kept on purpose (either way)."""
    return labels.get(LABEL_KEEP) in (KEEP_ALL, KEEP_FAILED)
