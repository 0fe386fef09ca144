"""How a task's Pod ended, as an `ExitResult`, and how spawnkit ends a running one.

Ending: TERM to every process of the task, from inside its Pod. The kubelet's own stop (a
delete with a grace period) signals only the container's main process, about a second after
the call; with `shareProcessNamespace` every process of the task is visible from an exec in
its container, so one exec of `kill -TERM -1` (all but PID 1, the sandbox's /pause, and the
caller) reaches the whole tree at once, waits out the grace while any is left, then KILLs them.
An image with no `sh` cannot run that: the Pod is then deleted with the grace period instead.

An exit code from 129 to 159 is a death by signal only when that is known: spawnkit sent the
signal (or deleted the Pod), or someone else deleted it. Kubernetes itself never names a
signal: `state.terminated.signal` stays empty, and `exit 137` reads the same as a SIGKILL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from spawnkit.core.task.outcome import ExitResult
from spawnkit.spawners.kubernetes.state import PodState

__all__ = ["SIGKILL", "SIGTERM", "STEP", "PodHandle", "exit_result", "stop_argv"]

SIGKILL, SIGTERM = 9, 15
#: Seconds between two looks for what is left of the task, while it has its grace.
STEP = 0.05

# $1: looks left before KILL (0: KILL at once). Every process but PID 1 and this shell is the
# task's. It prints KILL before it sends it, so spawnkit knows which signal it sent.
_STOP = (
    'n=$1; [ "$n" -gt 0 ] && kill -TERM -1 2>/dev/null; '
    "while [ \"$n\" -gt 0 ]; do left=; for d in /proc/[0-9]*; do "
    'case ${d#/proc/} in 1|$$) ;; *) left=1; break;; esac; done; '
    '[ -z "$left" ] && exit 0; sleep ' + f"{STEP}" + '; n=$((n-1)); done; '
    "echo KILL; kill -KILL -1 2>/dev/null; exit 0"
)


def stop_argv(grace: float) -> list[str]:
    """The exec that ends the task: TERM, up to `grace` seconds, then KILL."""
    return ["sh", "-c", _STOP, "spawnkit-stop", str(math.ceil(grace / STEP) if grace > 0 else 0)]


@dataclass
class PodHandle:
    """A task's Pod, from its creation until its outcome is collected."""

    name: str
    uid: str
    image: str
    #: Monotonic time its creation returned: a listing asked for before then cannot show it.
    spawned_at: float
    secret: str | None = None
    #: The signals spawnkit sent its processes.
    sent: set[int] = field(default_factory=set)
    #: spawnkit deleted the Pod (its grace, or none): a death by 143 or 137 is then ours.
    deleted: bool = False


def _died_of(code: int | None) -> int | None:
    return code - 128 if code is not None and 128 < code < 160 else None


def exit_result(state: PodState | None, handle: PodHandle) -> ExitResult:
    """The exit of an ended Pod; `state` None when it is gone before its end was read."""
    if state is None:
        if handle.deleted or handle.sent:
            # Ours, ended before its status could be read (a stop with no grace left).
            return ExitResult(exit_code=None, signal=SIGKILL if SIGKILL in handle.sent or (
                handle.deleted and not handle.sent) else None)
        return ExitResult(exit_code=None, error=(
            f"Pod {handle.name} was deleted outside spawnkit before its outcome was read"))
    if state.reason in ("DeadlineExceeded", "Evicted") or (
            state.phase == "Failed" and state.terminated is None):
        words = state.reason or "Failed"
        return ExitResult(exit_code=None, error=f"Pod {state.name}: {words}: {state.message}"
                          if state.message else f"Pod {state.name}: {words}")
    term = state.terminated
    if term is None:
        if state.pending:
            why = state.stuck() or "not started"
            return ExitResult(exit_code=None, error=f"Pod {state.name} never started: {why}")
        return ExitResult(exit_code=None, error=f"{state.describe()} has no exit status")
    oom = term.reason == "OOMKilled"
    died_of = _died_of(term.exit_code)
    ours = handle.deleted and died_of in (SIGTERM, SIGKILL)
    known = died_of is not None and (died_of in handle.sent or ours or (
        state.deleting and not handle.deleted))
    if known and not oom:
        return ExitResult(exit_code=None, signal=died_of)
    return ExitResult(exit_code=term.exit_code, oom=oom)
