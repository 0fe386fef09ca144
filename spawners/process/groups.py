"""Process groups on Linux: is anything of the group alive, signal it, kill it with grace."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time

from spawnkit.core.procfs import is_alive, live_processes

LOG = logging.getLogger(__name__)

__all__ = [
    "group_alive",
    "group_members",
    "kill_group",
    "signal_group",
]

def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of a group."""
    group = str(pgid)
    return [pid for pid, fields in live_processes() if fields[2] == group]


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # killpg(0) also answers for zombies: look closer.
    return bool(group_members(pgid))


def signal_group(pgid: int, sig: int) -> bool:
    """Signal the group; False when it is already gone."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    return True


async def kill_group(
    pgid: int, grace_period: float, *, poll: float = 0.02, single: bool = False
) -> None:
    """TERM the whole group, wait up to `grace_period`, then KILL what is left.

    With `single`, the one process `pgid` instead of its group.
    """
    send = _signal_one if single else signal_group
    alive = is_alive if single else group_alive
    if not send(pgid, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace_period
    while time.monotonic() < deadline:
        if not alive(pgid):
            return
        await asyncio.sleep(poll)
    if grace_period > 0:  # said with -v: the task did not end on its TERM
        LOG.info("process%s %d outlived its %g s grace: SIGKILL", "" if single else " group",
                 pgid, grace_period)
    send(pgid, signal.SIGKILL)
    # A KILLed process is gone once the kernel tears it down: bounded wait, no hang.
    deadline = time.monotonic() + 5.0
    while alive(pgid) and time.monotonic() < deadline:
        await asyncio.sleep(poll)


def _signal_one(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True
