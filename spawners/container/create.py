"""Making a task's container: a create that a retry cannot make twice, and the check that the
image has the working folder the task asks for."""

from __future__ import annotations

import dataclasses

from spawnkit.core.errors import StartError
from spawnkit.spawners.container.calls import EngineCalls
from spawnkit.spawners.container.engine import ContainerSpec, Engine
from spawnkit.spawners.container.faults import status_code
from spawnkit.spawners.container.spec import LABEL_JOB

__all__ = ["check_image_folder", "create_once"]


def create_once(engine: Engine, spec: ContainerSpec) -> str:
    """Create (blocking); a name already taken by this very task's container (a create
    retried after its answer was lost) is that container, not a failure."""
    try:
        return engine.create(spec)
    except Exception as exc:
        if status_code(exc) != 409 or spec.name is None:
            raise
        existing = engine.inspect(spec.name)
        if existing is None or existing.labels.get(LABEL_JOB) != spec.labels[LABEL_JOB]:
            raise
        if existing.status != "created":
            raise
        return existing.id


async def check_image_folder(call: EngineCalls, engine: Engine, spec: ContainerSpec,
                             words: str) -> None:
    """A working folder the image must have: Docker would make it, Podman refuses, so look
    first (in a container made and removed for that: an engine shows files only of a
    container) and say it the same way on every backend (StartError)."""
    probe = dataclasses.replace(spec, name=None, workdir=None, command=["true"], mounts=())
    probe_id = await call(engine.create, probe, idempotent=False)
    try:
        there = await call(engine.path_exists, probe_id, spec.workdir)
    finally:
        await call.remove_or_leave(probe_id)
    if not there:
        raise StartError.folder_missing(words, call.spawner)
