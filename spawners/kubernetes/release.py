"""What becomes of a task's Pod once its outcome is read: its JUnit reports and artifacts
kept (from the workspace), then the Pod deleted, or kept on purpose (`--keep-containers`,
`--keep-failed`: labelled so, with a note that says how to look at it); its Secret is deleted
either way (a kept Pod runs nothing that would need it)."""

from __future__ import annotations

import asyncio
import logging
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from spawnkit.core.copyout import FileSource, HostFolder
from spawnkit.core.errors import StartError
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.kubernetes.api import KubeApi, api_message
from spawnkit.spawners.kubernetes.outcome import PodHandle
from spawnkit.spawners.kubernetes.pod import CONTAINER

__all__ = ["free_name", "keep_files", "kept_note", "remove"]

LOG = logging.getLogger(__name__)


async def keep_files(api: KubeApi,
                     keep: Callable[[RuntimeTask, ExitResult | None, FileSource], None],
                     runtime_task: RuntimeTask, exit: ExitResult) -> None:
    """JUnit reports and artifacts, from the workspace (the node's folder, this host's on
    a one-node cluster), through `keep` (Spawner.keep_files). An ended container takes no
    exec: copying out of its own file system (exec + tar, as `kubectl cp`) would need it
    kept alive, which is not done yet."""
    task = runtime_task.task
    if not (task.junit or task.artifacts):
        return
    folder = task.host_workdir()
    if folder is None:
        runtime_task.notes.append(
            "junit/artifacts not kept: on kubernetes they are read from a workspace")
        return
    await api(keep, runtime_task, exit, HostFolder(Path(folder)), retry=False)


def kept_note(pod: str, namespace: str) -> str:
    """The task's note: which Pod stays, and how to look at it."""
    ns = shlex.quote(namespace)
    return (f"Pod {pod} kept: kubectl --namespace {ns} describe pod {pod}; "
            f"its output: kubectl --namespace {ns} logs {pod} -c {CONTAINER}")


async def remove(api: KubeApi, handle: PodHandle, *, keep_pod: bool) -> None:
    """Delete the Pod (at once: it has ended, or never ran) unless `keep_pod`, and its
    Secret; what cannot be deleted is left to `spawnkit gc`."""
    try:
        if not keep_pod:
            handle.deleted = True
            await api(api.delete_pod, handle.name, 0, handle.uid or None)
        if handle.secret is not None:
            await api(api.delete_secret, handle.secret)
    except Exception as exc:
        LOG.warning("kubernetes: cannot delete Pod %s or its Secret (left to 'spawnkit "
                    "gc'): %s", handle.name, api_message(exc))


async def free_name(api: KubeApi, handle: PodHandle, within: float, poll: float) -> None:
    """Delete a Pod that never ran its task (and its Secret, if the handle still names it),
    and wait until its name is free for the next one (StartError after `within` seconds)."""
    await remove(api, handle, keep_pod=False)
    deadline = time.monotonic() + within
    while await api(api.pod, handle.name) is not None:
        if time.monotonic() >= deadline:
            raise StartError(f"Pod {handle.name} was not deleted within {within:g} s",
                             spawner="kubernetes", handle=handle.name)
        await asyncio.sleep(poll)
