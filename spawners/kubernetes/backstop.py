"""A Pod's own deadline, past spawnkit's: what ends a task whose runner died (`kill -9`).

The runner stops a task at its timeout. A runner that is gone stops nothing, and a Pod would
run on until a resume or `spawnkit gc`; so once the task's container runs, its Pod gets an
`activeDeadlineSeconds` past the task's deadline and grace. Kubernetes then kills it (phase
Failed, reason DeadlineExceeded: notes/kubernetes.md), and a resume reports it `timed_out`.
A live runner's own stop comes first; this is only a backstop, as Slurm's `--time` is.
"""

from __future__ import annotations

import logging
import math
import time

from spawnkit.spawners.kubernetes.api import KubeApi, api_message, is_gone
from spawnkit.spawners.kubernetes.outcome import PodHandle

__all__ = ["MARGIN", "backstop_seconds", "set_backstop"]

LOG = logging.getLogger(__name__)

#: Seconds past the deadline and grace: room for the runner's own stop, which deletes the Pod.
MARGIN = 10.0


def backstop_seconds(elapsed: float, timeout: float, grace: float) -> int:
    """activeDeadlineSeconds for a Pod created `elapsed` seconds ago whose task runs from now:
    it counts from the Pod's start, which is no earlier than its creation."""
    return max(1, math.ceil(elapsed + timeout + grace + MARGIN))


async def set_backstop(api: KubeApi, handle: PodHandle, timeout: float | None,
                       grace: float) -> None:
    """Give the Pod its deadline (nothing for a task with no timeout). Best effort: a Pod
    the API server would not change runs as before, with a warning."""
    if timeout is None:
        return
    seconds = backstop_seconds(time.monotonic() - handle.spawned_at, timeout, grace)
    try:
        await api(api.set_deadline, handle.name, seconds)
    except Exception as exc:
        if is_gone(exc):
            return  # ended and removed meanwhile: nothing left to bound
        LOG.warning("kubernetes: Pod %s: no deadline of its own (%s): should the runner die, "
                    "it runs until `spawnkit resume` or `spawnkit gc`", handle.name,
                    api_message(exc))

