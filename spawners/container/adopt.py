"""A container of a dead runner, taken over by the runner that resumes its job
(`spawnkit resume`): found by its ID, or by its name when the runner died before it knew the
ID, and checked to be this job's. Its output is followed again from the engine's log, whole:
what it printed while no runner watched is masked and written like the rest.
"""

from __future__ import annotations

import time

from spawnkit.core.errors import AdoptError
from spawnkit.core.output import TaskOutput
from spawnkit.core.spawner import JobContext
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.container.calls import EngineCalls
from spawnkit.spawners.container.engine import Engine
from spawnkit.spawners.container.handle import ContainerHandle
from spawnkit.spawners.container.logs import LogFollower
from spawnkit.spawners.container.spec import LABEL_JOB, LABEL_TASK, container_name

__all__ = ["adopt_container"]

#: When the start time is not known, the engine's events are asked from this far back.
_EVENTS_BACK = 24 * 3600.0


async def adopt_container(call: EngineCalls, engine: Engine, job: JobContext,
                          runtime_task: RuntimeTask) -> ContainerHandle:
    """The task's container, followed again; AdoptError when it is gone or not this job's,
    and (never_ran) when it was made but never started: it is removed, the task runs now."""
    task, out_dir = runtime_task.task, runtime_task.output_dir
    ref = runtime_task.spawner_handle or container_name(job, task.id, runtime_task.attempt)
    state = await call(engine.inspect, ref)
    if state is None:
        raise AdoptError(f"container {ref[:12]} is gone (removed by 'spawnkit gc', or outside "
                         "spawnkit)",
                         spawner=engine.name, handle=ref)
    if state.labels.get(LABEL_JOB) != job.job_id or state.labels.get(LABEL_TASK) != task.id:
        raise AdoptError(f"container {ref[:12]} is not this task's", spawner=engine.name,
                         handle=ref)
    if state.status == "created":
        # The runner died between create and start: it never ran. Gone, it runs now.
        await call.remove_or_leave(state.id)
        raise AdoptError(f"container {state.id[:12]} was made but never started",
                         spawner=engine.name, handle=state.id, never_ran=True)
    if out_dir is None:
        raise AdoptError("task has no output folder", spawner=engine.name, handle=state.id)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Written anew from the whole log: the engine kept all of it.
    output = TaskOutput(out_dir, job.masked_for(task))
    result = runtime_task.spawning_result or {}
    runtime_task.spawner_handle = state.id
    runtime_task.spawning_result = {**result, "container_id": state.id}
    return ContainerHandle(state.id, str(result.get("name") or ref), str(result.get("image", "")),
                           time.monotonic(), float(result.get("started_wall") or
                                                   time.time() - _EVENTS_BACK),
                           logs=LogFollower(engine, state.id, output), adopted=True)
