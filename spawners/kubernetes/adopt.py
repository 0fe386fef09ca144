"""A Pod of a dead runner, taken over by the runner that resumes its job (`spawnkit resume`).

Found by its name (the journal's handle; when the runner died while making it, the name its
task and attempt give), and checked to be this job's and this task's (its annotations) and the
very Pod the runner made (its uid, when the journal has it). Its output is followed again from
the start, into fresh masked files: the API keeps a container's whole log until its Pod is
deleted, so what the task printed while no runner watched is masked and written like the rest.
A Pod still Pending is taken over too: the kubelet starts it without a runner.
"""

from __future__ import annotations

import time
from typing import Any

from spawnkit.core.errors import AdoptError
from spawnkit.core.output import TaskOutput
from spawnkit.core.spawner import JobContext
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.kubernetes.api import KubeApi, api_message
from spawnkit.spawners.kubernetes.logs import PodLog
from spawnkit.spawners.kubernetes.outcome import PodHandle
from spawnkit.spawners.kubernetes.pod import LABEL_JOB, LABEL_TASK, STDERR_READER, pod_name
from spawnkit.spawners.kubernetes.state import pod_state

__all__ = ["adopt_pod"]


def _has_secret(item: dict[str, Any], name: str) -> bool:
    """Whether the Pod takes values from a Secret of its own name (the job made it)."""
    for container in (item.get("spec") or {}).get("containers") or []:
        for var in container.get("env") or []:
            ref = (var.get("valueFrom") or {}).get("secretKeyRef") or {}
            if ref.get("name") == name:
                return True
    return False


async def adopt_pod(api: KubeApi, job: JobContext,
                    runtime_task: RuntimeTask) -> tuple[PodHandle, PodLog]:
    """The task's Pod and its output, followed again; AdoptError when the Pod is gone, is
    not this task's, or is another Pod under the same name."""
    task, out_dir = runtime_task.task, runtime_task.output_dir
    name = runtime_task.spawner_handle or pod_name(job.job_id, task.id, runtime_task.attempt)
    try:
        item = await api(api.pod, name)
    except Exception as exc:
        raise AdoptError(f"cannot read Pod {name}: {api_message(exc)}", spawner="kubernetes",
                         handle=name) from exc
    if item is None:
        raise AdoptError(f"Pod {name} is gone (deleted outside spawnkit, or never made)",
                         spawner="kubernetes", handle=name)
    state = pod_state(item)
    if state.annotations.get(LABEL_JOB) != job.job_id or (
            state.annotations.get(LABEL_TASK) != task.id):
        raise AdoptError(f"Pod {name} is not this task's", spawner="kubernetes", handle=name)
    result = runtime_task.spawning_result or {}
    if result.get("uid") and result["uid"] != state.uid:
        raise AdoptError(f"Pod {name} was made anew since (another uid)", spawner="kubernetes",
                         handle=name)
    if out_dir is None:
        raise AdoptError("task has no output folder", spawner="kubernetes", handle=name)
    split = any(c.get("name") == STDERR_READER
                for c in (item.get("spec") or {}).get("containers") or [])
    # Written anew from the whole log: the API kept all of it.
    log = PodLog(api, name, state.uid, TaskOutput(out_dir, job.masked_for(task)), split=split)
    log.known(state.container_ids)
    if not state.pending:
        log.start()
    handle = PodHandle(name, state.uid, str(result.get("image") or ""), time.monotonic(),
                       secret=name if _has_secret(item, name) else None, adopted=True,
                       began=not state.pending)
    runtime_task.spawner_handle = name
    runtime_task.spawning_result = {**result, "pod": name, "uid": state.uid,
                                    "namespace": api.namespace, "node": state.node}
    return handle, log
