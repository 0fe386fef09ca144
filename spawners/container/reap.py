"""Containers that dead runners left behind (`spawnkit gc`), found by their labels (and left
alone when the job is held by a runner that took it over: `spawnkit resume`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from spawnkit.core import runs
from spawnkit.core.owner import owner_alive
from spawnkit.spawners.container.engine import ContainerSummary
from spawnkit.spawners.container.spec import (
    LABEL_JOB,
    LABEL_JOB_DIR,
    LABEL_OWNER,
    LABEL_SERVICE,
    LABEL_TASK,
    is_kept,
)

__all__ = ["BEING_MADE", "ORPHAN_GRACE", "describe", "orphans", "remove_all"]

#: Engine words for a container made but not started (Docker says created; Podman also
#: configured or initialized on the way).
BEING_MADE = frozenset({"created", "configured", "initialized"})

#: A container still being made (created, not started) is never reaped before this age,
#: whoever its owner: its runner may be between create and start.
ORPHAN_GRACE = 5.0


def orphans(
    listed: list[ContainerSummary], *, grace: float = ORPHAN_GRACE, now: float | None = None,
    kept: bool = False, spare_recent: bool = False,
) -> list[ContainerSummary]:
    """The listed spawnkit containers whose runner died (on this host; see owner_alive).

    A running or ended one goes at once; one not yet started only once it is old enough to
    not be half made; one kept on purpose (--keep-containers, --keep-failed) only while it
    still runs, or with `kept` (`spawnkit gc --kept`). A kept container whose runner is alive
    stays whatever `kept` says: that runner may still be reading it. A job a resume holds
    is left, and with `spare_recent` one that may still be resumed (core.runs.leave_alone).
    """
    now = time.time() if now is None else now
    found = []
    running: dict[str, bool] = {}  # job id -> left alone (a resume holds it, or may)
    for container in listed:
        owner = container.labels.get(LABEL_OWNER, "")
        if not owner or owner_alive(owner):
            continue
        job_id = container.labels.get(LABEL_JOB, "")
        if job_id not in running:
            running[job_id] = runs.leave_alone(job_id, container.labels.get(LABEL_JOB_DIR),
                                               spare_recent=spare_recent)
        if running[job_id]:
            continue
        if container.status in BEING_MADE and now - container.created < grace:
            continue
        if not kept and is_kept(container.labels) and not container.running:
            continue
        found.append(container)
    return found


def describe(container: ContainerSummary) -> str:
    job_id = container.labels.get(LABEL_JOB, "?")
    service = container.labels.get(LABEL_SERVICE)
    what = f"service {service}" if service else f"task {container.labels.get(LABEL_TASK, '?')}"
    kept = ", kept" if is_kept(container.labels) else ""
    return f"container {container.id[:12]} (job {job_id}, {what}{kept})"


async def remove_all(
    containers: list[ContainerSummary], remove: Callable[[str], Awaitable[None]]
) -> None:
    """Remove (killing at once) every one of them, in parallel: a dead runner's tasks get no
    grace, there is nobody left to read their outcome."""
    await asyncio.gather(*(remove(c.id) for c in containers))
