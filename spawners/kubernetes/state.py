"""What a Pod's status says of its task: running, ended (and how), or stuck before its start.

Read from the raw JSON of a listing. The order matters, as measured on a real kubelet
(notes/kubernetes.md): a Pod past `activeDeadlineSeconds` is Failed with reason
DeadlineExceeded while its container still shows `running` for ever, so the Pod's own reason
comes first; an image that cannot be pulled leaves the Pod Pending for ever (ErrImagePull,
ImagePullBackOff, ErrImagePull again...), so "stuck" is a state with a reason and a bound.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from spawnkit.spawners.kubernetes.pod import CONTAINER, CWD_CHECK, CWD_MISSING

__all__ = ["PULL_ERRORS", "PodState", "Terminated", "pod_state"]

#: Waiting reasons that may clear by themselves (a registry back, a kubelet retry): an error
#: only once they last `pull_wait` seconds.
PULL_ERRORS = frozenset({"ErrImagePull", "ImagePullBackOff", "RegistryUnavailable"})
#: Waiting reasons that never clear by themselves: an error at once.
FATAL_WAITING = frozenset({
    "ErrImageNeverPull", "InvalidImageName", "CreateContainerConfigError",
    "CreateContainerError", "RunContainerError", "CrashLoopBackOff",
})


@dataclass(frozen=True)
class Terminated:
    exit_code: int | None
    reason: str | None
    message: str | None
    #: When it ended (the kubelet's `finishedAt`), epoch seconds; None when not said.
    finished_at: float | None = None
    #: When its container started (`startedAt`), epoch seconds, whole as `finishedAt` is.
    started_at: float | None = None


@dataclass(frozen=True)
class PodState:
    """One Pod as a listing showed it."""

    name: str
    uid: str
    phase: str
    node: str | None
    #: The Pod's own reason and message (DeadlineExceeded, Evicted, OutOfcpu...).
    reason: str | None
    message: str | None
    deleting: bool
    terminated: Terminated | None
    running: bool
    #: Why it has not started: (reason, message) of a waiting container, or the scheduler's.
    waiting: tuple[str, str] | None
    #: The working folder the task names is not in the image.
    cwd_missing: bool
    annotations: dict[str, str]
    labels: dict[str, str]
    created: str | None
    #: The runtime's ID of each container that has one (`containerd://ID` without its
    #: scheme), by container name: the kubelet's errors name a container by it.
    container_ids: dict[str, str] = field(default_factory=dict)

    @property
    def ended(self) -> bool:
        return self.terminated is not None or self.phase in ("Succeeded", "Failed")

    @property
    def pending(self) -> bool:
        return not self.ended and not self.running

    def fatal(self) -> str | None:
        """Why it can never start, if that is known now."""
        if self.cwd_missing:
            return "working folder missing"
        if self.waiting is not None and self.waiting[0] in FATAL_WAITING:
            return f"{self.waiting[0]}: {self.waiting[1]}"
        return None

    @property
    def no_shell(self) -> bool:
        """The task's container could not start for want of `sh` in its image (the wrapper
        that keeps its stderr apart runs in it)."""
        term = self.terminated
        return term is not None and term.reason in ("StartError", "ContainerCannotRun") and (
            'exec: "sh"' in (term.message or ""))

    def stuck(self) -> str | None:
        """Why it has not started yet, in the kubelet's or the scheduler's words."""
        if self.waiting is None:
            return None
        return f"{self.waiting[0]}: {self.waiting[1]}" if self.waiting[1] else self.waiting[0]

    def describe(self) -> str:
        words = f"Pod {self.name} ({self.phase}"
        if self.reason:
            words += f", {self.reason}"
        return words + ")"


def _terminated(status: dict[str, Any]) -> Terminated | None:
    term = (status.get("state") or {}).get("terminated")
    if not term:
        return None
    return Terminated(term.get("exitCode"), term.get("reason"), term.get("message"),
                      _epoch(term.get("finishedAt")), _epoch(term.get("startedAt")))


def _epoch(stamp: object) -> float | None:
    """An RFC 3339 time of the API ("2026-11-30T08:00:00Z") as epoch seconds."""
    try:
        return datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pod_state(item: dict[str, Any]) -> PodState:
    meta = item.get("metadata") or {}
    status = item.get("status") or {}
    spec = item.get("spec") or {}
    main: dict[str, Any] = {}
    ids: dict[str, str] = {}
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") == CONTAINER:
            main = cs
        if cs.get("containerID"):
            ids[str(cs.get("name"))] = str(cs["containerID"]).partition("://")[2]
    waiting: tuple[str, str] | None = None
    cwd_missing = False
    for cs in [*(status.get("initContainerStatuses") or []), main]:
        state = cs.get("state") or {}
        if state.get("waiting", {}).get("reason") not in (None, "ContainerCreating",
                                                          "PodInitializing"):
            waiting = (state["waiting"]["reason"], state["waiting"].get("message") or "")
        term = state.get("terminated")
        if cs.get("name") == CWD_CHECK and term and term.get("exitCode") == CWD_MISSING:
            cwd_missing = True
    if waiting is None:
        for cond in status.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                waiting = (cond.get("reason") or "Unschedulable", cond.get("message") or "")
    return PodState(
        name=str(meta.get("name", "")),
        uid=str(meta.get("uid", "")),
        phase=str(status.get("phase") or "Pending"),
        node=spec.get("nodeName"),
        reason=status.get("reason"),
        message=status.get("message"),
        deleting=meta.get("deletionTimestamp") is not None,
        terminated=_terminated(main),
        running=bool((main.get("state") or {}).get("running")),
        waiting=waiting,
        cwd_missing=cwd_missing,
        annotations=dict(meta.get("annotations") or {}),
        labels=dict(meta.get("labels") or {}),
        created=meta.get("creationTimestamp"),
        container_ids=ids,
    )
