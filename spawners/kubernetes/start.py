"""The wait for a task's Pod to start: a task counts as started once its container runs.

A Pod may wait long for a node or an image, or for ever (an image that cannot be pulled
leaves it Pending for good), so the wait has bounds, and a Pod that cannot start ends as a
StartError in the kubelet's or the scheduler's own words: at once for a reason that never
clears, after `pull_wait` of pull errors (a registry may be away for a moment), after
`pending_wait` for anything else (no node fits).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from spawnkit.core.errors import StartError
from spawnkit.spawners.kubernetes.outcome import PodHandle
from spawnkit.spawners.kubernetes.state import PULL_ERRORS, PodState
from spawnkit.spawners.kubernetes.watch import PodWatch

__all__ = ["wait_started"]


async def wait_started(
    watch: PodWatch,
    refresh: Callable[[], Awaitable[None]],
    handle: PodHandle,
    *,
    workdir_words: str,
    pull_wait: float,
    pending_wait: float,
    poll: float,
    stopping: Callable[[], bool],
) -> PodState | None:
    """Until the container runs (or has ended); StartError when it cannot start. Returns
    early, the Pod still Pending, once `stopping()`: the worker then ends it as any other."""
    stuck_since: float | None = None
    while True:
        await refresh()
        if watch.down is not None:
            raise StartError(f"not started: {watch.down.message}", spawner="kubernetes",
                             handle=handle.name, engine_message=watch.down.engine_message)
        state = watch.get(handle.name, handle.uid)
        now = time.monotonic()
        if state is None:
            if watch.seen_since(handle.spawned_at):
                raise StartError(f"Pod {handle.name} was deleted before it started",
                                 spawner="kubernetes", handle=handle.name)
        elif state.cwd_missing:
            raise StartError.folder_missing(workdir_words, "kubernetes", handle.name)
        elif not state.pending:
            return state
        else:
            fatal = state.fatal()
            if fatal is not None:
                raise StartError(f"Pod {handle.name} cannot start", spawner="kubernetes",
                                 handle=handle.name, engine_message=fatal)
            pulling = state.waiting is not None and state.waiting[0] in PULL_ERRORS
            stuck_since = (stuck_since or now) if pulling else None
            if stuck_since is not None and now - stuck_since >= pull_wait:
                raise StartError(f"image '{handle.image}' cannot be pulled (for {pull_wait:g} s)",
                                 spawner="kubernetes", handle=handle.name,
                                 engine_message=state.stuck())
            if now - handle.spawned_at >= pending_wait:
                raise StartError(f"Pod {handle.name} still Pending after {pending_wait:g} s",
                                 spawner="kubernetes", handle=handle.name,
                                 engine_message=state.stuck() or "no reason given")
        if stopping():
            return state
        await asyncio.sleep(poll)
