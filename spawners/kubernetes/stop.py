"""How spawnkit ends a running task's Pod: TERM to every process of the task, from inside.

The kubelet's own stop (a delete with a grace period) signals only the container's main
process, about a second after the call; with `shareProcessNamespace` every process of the
task is visible from an exec in its container, so one exec signals the whole tree at once
(every process but PID 1, the sandbox's /pause, the exec itself and the Pod's stderr reader,
which must drain what the task writes on its way out), waits out the grace while any is left,
then KILLs them. An image with no `sh` cannot run that: the Pod is then deleted with the grace
period instead (the kubelet's TERM reaches only the main process then).

The kubelet reports an exit up to a second after it (its relist period), so a deadline may
pass between a task's end and spawnkit seeing it. The stop then finds it ended: the kubelet
refuses the exec (`container not found ("main")`: the runtime runs no such container), or the
exec finds no process of the task left. Nothing was sent then: the Pod is not deleted (that
would lose its log, and make the task's own exit look like a kill), the kubelet's report is
waited for, and the task is judged by its own exit (`PodHandle.ended_first`).
"""

from __future__ import annotations

import logging
import math

from spawnkit.spawners.kubernetes.api import KubeApi, api_message
from spawnkit.spawners.kubernetes.outcome import SIGKILL, SIGTERM, PodHandle
from spawnkit.spawners.kubernetes.pod import CONTAINER, READER_PID

__all__ = ["STEP", "stop_argv", "stop_pod"]

LOG = logging.getLogger(__name__)

#: Seconds between two looks for what is left of the task, while it has its grace.
STEP = 0.05
#: The kubelet's answer to an exec in a container the runtime does not run (any more): the
#: exec's websocket handshake fails with HTTP 500 and these words.
_NOT_RUNNING = f'container not found ("{CONTAINER}")'

# $1: looks left before KILL (0: KILL at once). Every process but PID 1, this shell and the
# stderr reader ($r, if the Pod has one) is the task's; `left` lists them in $L without a fork
# (a subshell would count itself). It prints GONE when none is left to signal at all, and
# KILL before it sends it, so spawnkit knows which signal it sent, if any.
_STOP = (
    "n=$1; r=; { read -r r < " + READER_PID + "; } 2>/dev/null; "
    'left() { L=; for d in /proc/[0-9]*; do p=${d#/proc/}; case $p in 1|$$|"$r") ;; '
    '*) L="$L $p";; esac; done; [ -n "$L" ]; }; '
    "left || { echo GONE; exit 0; }; "
    '[ "$n" -gt 0 ] && kill -TERM $L 2>/dev/null; '
    'while [ "$n" -gt 0 ]; do left || exit 0; sleep ' + f"{STEP}" + "; n=$((n-1)); done; "
    "echo KILL; left && kill -KILL $L 2>/dev/null; exit 0"
)


def stop_argv(grace: float) -> list[str]:
    """The exec that ends the task: TERM, up to `grace` seconds, then KILL."""
    return ["sh", "-c", _STOP, "spawnkit-stop", str(math.ceil(grace / STEP) if grace > 0 else 0)]


async def stop_pod(api: KubeApi, handle: PodHandle, grace: float, margin: float) -> bool:
    """End the task of a running Pod: True once nothing of it is left (seen from inside);
    False when the Pod was deleted with its grace instead (the kubelet ends it), which the
    caller waits for, as when the stop found the task ended already. A refused delete
    propagates."""
    sent = set(handle.sent)
    first = not handle.stop_began
    handle.sent.add(SIGTERM if grace > 0 else SIGKILL)
    try:
        code, said = await api(api.exec, handle.name, CONTAINER, stop_argv(grace),
                               grace + margin, retry=False)
        gone = said.startswith("GONE")
    except Exception as exc:
        code, said, words = None, "", api_message(exc)
        gone = _NOT_RUNNING in words
        if not gone:
            LOG.info("kubernetes: stopping %s from inside: %s; deleting it with its grace",
                     handle.name, words)
    if gone:
        # Ended before this stop: no signal of it reached the task (an earlier stop's may
        # have: then that one ended it, and stays known).
        LOG.info("kubernetes: %s had ended when its stop came", handle.name)
        handle.sent.intersection_update(sent)
        handle.ended_first = handle.ended_first or first
        return False
    if "KILL" in said:
        handle.sent.add(SIGKILL)
    if code is not None:
        # The exec ends only once nothing of the task is left (or with the container
        # itself): it has ended, whatever the kubelet reports a second later.
        handle.stopped = True
        return True
    handle.deleted = True
    await api(api.delete_pod, handle.name, int(grace + 0.999), handle.uid)
    return False
