"""Containers that dead runners left behind (`spawnkit gc`), found by their labels alone."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from spawnkit.core.owner import owner_alive
from spawnkit.spawners.container.engine import ContainerSummary
from spawnkit.spawners.container.spec import LABEL_JOB, LABEL_KEEP, LABEL_OWNER, LABEL_TASK

__all__ = ["BEING_MADE", "ORPHAN_GRACE", "describe", "orphans", "remove_all"]

#: Engine words for a container made but not started (Docker says created; Podman also
#: configured or initialized on the way).
BEING_MADE = frozenset({"created", "configured", "initialized"})

#: A container still being made (created, not started) is never reaped before this age,
#: whoever its owner: its runner may be between create and start.
ORPHAN_GRACE = 5.0


def orphans(
    listed: list[ContainerSummary], *, grace: float = ORPHAN_GRACE, now: float | None = None
) -> list[ContainerSummary]:
    """The listed spawnkit containers whose runner died (on this host; see owner_alive).

    A running or ended one goes at once; one not yet started only once it is old enough to
    not be half made; one kept on purpose (--keep-containers) only while it still runs.
    """
    now = time.time() if now is None else now
    found = []
    for container in listed:
        owner = container.labels.get(LABEL_OWNER, "")
        if not owner or owner_alive(owner):
            continue
        if container.status in BEING_MADE and now - container.created < grace:
            continue
        if container.labels.get(LABEL_KEEP) == "true" and not container.running:
            continue
        found.append(container)
    return found


def describe(container: ContainerSummary) -> str:
    job_id = container.labels.get(LABEL_JOB, "?")
    task_id = container.labels.get(LABEL_TASK, "?")
    return f"container {container.id[:12]} (job {job_id}, task {task_id})"


async def remove_all(
    containers: list[ContainerSummary], remove: Callable[[str], Awaitable[None]]
) -> None:
    """Remove (killing at once) every one of them, in parallel: a dead runner's tasks get no
    grace, there is nobody left to read their outcome."""
    await asyncio.gather(*(remove(c.id) for c in containers))
