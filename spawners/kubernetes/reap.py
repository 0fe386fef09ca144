"""Pods and Secrets that dead runners left behind (`spawnkit gc`), found by their labels and
their owner annotation alone (and left alone when the job is held by a runner that took it
over: `spawnkit resume`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from spawnkit.core import runs
from spawnkit.core.owner import owner_alive
from spawnkit.spawners.container.spec import is_kept
from spawnkit.spawners.kubernetes.pod import LABEL_JOB, LABEL_JOB_DIR, LABEL_OWNER, LABEL_TASK
from spawnkit.spawners.kubernetes.state import pod_state

__all__ = ["describe", "orphans", "remove_all"]


def orphans(items: list[dict[str, Any]], *, pods: bool, kept: bool = False,
            spare_recent: bool = False) -> list[dict[str, Any]]:
    """The listed spawnkit objects whose runner died (on this host; see owner_alive). A Pod
    kept on purpose (--keep-containers, --keep-failed) stays once it has ended, unless `kept`
    (`spawnkit gc --kept`)."""
    found = []
    running: dict[str, bool] = {}  # job id -> a runner holds it (a resume took it over)
    for item in items:
        meta = item.get("metadata") or {}
        notes = meta.get("annotations") or {}
        owner = notes.get(LABEL_OWNER, "")
        if not owner or owner_alive(owner):
            continue
        job_id = notes.get(LABEL_JOB, "")
        if job_id not in running:  # a resume holds it, or (spare_recent) may still
            running[job_id] = runs.leave_alone(job_id, notes.get(LABEL_JOB_DIR),
                                               spare_recent=spare_recent)
        if running[job_id]:
            continue
        if pods and not kept and is_kept(meta.get("labels") or {}) and pod_state(item).ended:
            continue
        found.append(item)
    return found


def describe(item: dict[str, Any], kind: str) -> str:
    meta = item.get("metadata") or {}
    notes = meta.get("annotations") or {}
    kept = ", kept" if kind == "Pod" and is_kept(meta.get("labels") or {}) else ""
    return (f"{kind} {meta.get('name')} (job {notes.get(LABEL_JOB, '?')}, "
            f"task {notes.get(LABEL_TASK, '?')}{kept})")


async def remove_all(items: list[dict[str, Any]],
                     remove: Callable[[str], Awaitable[object]]) -> None:
    """Remove every one of them at once, in parallel (a dead runner's tasks get no grace:
    nobody is left to read their outcome)."""
    await asyncio.gather(*(remove(str((i.get("metadata") or {}).get("name"))) for i in items))
