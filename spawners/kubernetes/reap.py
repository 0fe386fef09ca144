"""Pods and Secrets that dead runners left behind (`spawnkit gc`), found by their labels and
their owner annotation alone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from spawnkit.core.owner import owner_alive
from spawnkit.spawners.kubernetes.pod import LABEL_JOB, LABEL_OWNER, LABEL_TASK
from spawnkit.spawners.kubernetes.state import pod_state

__all__ = ["describe", "orphans", "remove_all"]

_KEEP = "spawnkit.keep"


def orphans(items: list[dict[str, Any]], *, pods: bool) -> list[dict[str, Any]]:
    """The listed spawnkit objects whose runner died (on this host; see owner_alive). A Pod
    kept on purpose (--keep-containers) stays once it has ended."""
    found = []
    for item in items:
        meta = item.get("metadata") or {}
        owner = (meta.get("annotations") or {}).get(LABEL_OWNER, "")
        if not owner or owner_alive(owner):
            continue
        if pods and (meta.get("labels") or {}).get(_KEEP) == "true" and pod_state(item).ended:
            continue
        found.append(item)
    return found


def describe(item: dict[str, Any], kind: str) -> str:
    meta = item.get("metadata") or {}
    notes = meta.get("annotations") or {}
    return (f"{kind} {meta.get('name')} (job {notes.get(LABEL_JOB, '?')}, "
            f"task {notes.get(LABEL_TASK, '?')})")


async def remove_all(items: list[dict[str, Any]],
                     remove: Callable[[str], Awaitable[object]]) -> None:
    """Remove every one of them at once, in parallel (a dead runner's tasks get no grace:
    nobody is left to read their outcome)."""
    await asyncio.gather(*(remove(str((i.get("metadata") or {}).get("name"))) for i in items))
