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
    "LABEL_JOB",
    "LABEL_KEEP",
    "LABEL_MANAGED",
    "LABEL_OWNER",
    "LABEL_TASK",
    "WORKSPACE_TARGET",
    "container_spec",
    "entrypoint_of",
]

LABEL_MANAGED = "spawnkit.managed"
LABEL_JOB = "spawnkit.job"
LABEL_TASK = "spawnkit.task"
LABEL_OWNER = "spawnkit.owner"
#: On containers kept on purpose (--keep-containers): once ended, gc leaves them be.
LABEL_KEEP = "spawnkit.keep"

#: Where a task's `workspace` folder is mounted, and its working folder unless it sets `cwd`.
WORKSPACE_TARGET = "/workspace"


def container_spec(task: Task, job: JobContext, image: str, *, keep: bool = False) -> ContainerSpec:
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
        LABEL_TASK: task.id,
        LABEL_OWNER: job.owner,
    }
    if keep:
        labels[LABEL_KEEP] = "true"
    isolation = isolation_of(limits)
    return ContainerSpec(
        image=image,
        command=task.argv,
        name=f"spawnkit-{job.job_id}-{safe_name(task.id)}",
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
