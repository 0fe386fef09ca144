"""How a task's Pod ended, as an `ExitResult` (how spawnkit ends a running one: `stop.py`).

An exit code from 129 to 159 is a death by signal only when that is known: spawnkit sent the
signal (or deleted the Pod), or someone else deleted it. Kubernetes itself never names a
signal: `state.terminated.signal` stays empty, and `exit 137` reads the same as a SIGKILL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from spawnkit.core.execerror import cannot_start_line
from spawnkit.core.task.outcome import ExitResult
from spawnkit.spawners.kubernetes.state import PodState

__all__ = ["SIGKILL", "SIGTERM", "PodHandle", "cannot_execute", "exit_result"]

SIGKILL, SIGTERM = 9, 15

#: How runc says it could not execute the command itself, at the end of the kubelet's
#: message (`exec: "PROGRAM": WHY: unknown`; quotes escaped when CRI-O wraps it), and crun
#: (``executable file `PROGRAM` not found in $PATH``).
_EXEC_FAILED = (
    re.compile(r'exec: \\?"(?P<program>[^"\\]*)\\?": (?P<why>.*?)(?:: unknown)?$'),
    re.compile(r"(?P<why>executable file `(?P<program>[^`]*)` not found.*?)(?:: unknown)?$"),
)


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
    #: spawnkit's stop saw every process of the task end, from inside the Pod.
    stopped: bool = False
    #: spawnkit's first stop found the task ended already (the kubelet reports an exit up to
    #: a second late, so a deadline may pass in between): nothing was sent, and its own exit
    #: stands (`ExitResult.ended_before_stop`).
    ended_first: bool = False
    #: Taken over from a dead runner (`spawnkit resume`): it may have ended long before.
    adopted: bool = False
    #: Its container was seen running, or ended: its command began.
    began: bool = False
    #: spawnkit deleted it while it was still Pending: its command never began.
    never_ran: bool = False

    @property
    def stop_began(self) -> bool:
        """A stop of spawnkit's has reached for it: a signal, an ended stop, a delete."""
        return bool(self.sent or self.stopped or self.deleted)


def _died_of(code: int | None) -> int | None:
    return code - 128 if code is not None and 128 < code < 160 else None


def exit_result(state: PodState | None, handle: PodHandle) -> ExitResult:
    """The exit of an ended Pod; `state` None when it is gone before its end was read."""
    if handle.never_ran and (state is None or state.pending):
        return ExitResult(exit_code=None, never_ran=True)
    if state is None:
        if handle.deleted or handle.sent:
            # Ours, ended before its status could be read (a stop with no grace left).
            return ExitResult(exit_code=None, signal=SIGKILL if SIGKILL in handle.sent or (
                handle.deleted and not handle.sent) else None)
        return ExitResult(exit_code=None, error=(
            f"Pod {handle.name} was deleted outside spawnkit before its outcome was read"))
    if state.reason == "DeadlineExceeded":
        # The backstop past the task's timeout (kubernetes/backstop.py): no runner stopped it.
        said = f": {state.message}" if state.message else ""
        return ExitResult(exit_code=None, timed_out=(
            "timed out (stopped by Kubernetes at the Pod's activeDeadlineSeconds, set past the "
            f"task's timeout: no runner was watching{said})"))
    if state.reason == "Evicted" or (
            state.phase == "Failed" and state.terminated is None):
        words = state.reason or "Failed"
        return ExitResult(exit_code=None, error=f"Pod {state.name}: {words}: {state.message}"
                          if state.message else f"Pod {state.name}: {words}")
    term = state.terminated
    if term is None and handle.stopped:
        # Ended by spawnkit's stop, before the kubelet said with which exit code.
        return ExitResult(exit_code=None)
    if term is None:
        if state.pending:
            why = state.stuck() or "not started"
            return ExitResult(exit_code=None, error=f"Pod {state.name} never started: {why}")
        return ExitResult(exit_code=None, error=f"{state.describe()} has no exit status")
    if term.reason in ("StartError", "ContainerCannotRun"):
        failed = cannot_execute(state)
        if failed is not None:
            return ExitResult(exit_code=failed[0])
        # The runtime could not start it (a limit it refuses, say): the command never ran,
        # whatever exit code the kubelet wrote (128). Docker's and Podman's say so too.
        return ExitResult(exit_code=None, error=f"Pod {state.name}: its container could not "
                          f"start: {term.message or term.reason}")
    oom = term.reason == "OOMKilled"
    died_of = _died_of(term.exit_code)
    ours = handle.deleted and died_of in (SIGTERM, SIGKILL)
    known = died_of is not None and (died_of in handle.sent or ours or (
        state.deleting and not handle.deleted))
    first = handle.ended_first
    if known and not oom:
        return ExitResult(exit_code=None, signal=died_of, ended_before_stop=first)
    return ExitResult(exit_code=term.exit_code, oom=oom, ended_before_stop=first)


def cannot_execute(state: PodState | None) -> tuple[int, str] | None:
    """(exit code, line for its stderr) when the runtime could not execute the task's command
    itself (a Pod without spawnkit's `sh` wrapper: `entrypoint = "image"`, an image with no
    `sh`): 127 when it is not there, 126 when it may not be executed, 1 otherwise, as a
    container's init and a shell say it (core.execerror), on every backend."""
    term = state.terminated if state is not None else None
    if term is None or term.reason not in ("StartError", "ContainerCannotRun"):
        return None
    found = next((m for p in _EXEC_FAILED if (m := p.search(term.message or ""))), None)
    if found is None:
        return None
    why = found["why"].rstrip('"\\')
    lowered = why.lower()
    code = (127 if "not found" in lowered or "no such file" in lowered
            else 126 if "permission denied" in lowered else 1)
    return code, cannot_start_line(found["program"], why)
