"""Backends by name: one dict, extended by the `spawnkit.spawners` entry-point group."""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from spawnkit.core.errors import UsageError
from spawnkit.spawners.base import Spawner

__all__ = ["DEFAULT_SPAWNER", "SPAWNERS", "available", "get_spawner_class"]

DEFAULT_SPAWNER = "process"

#: Built-in backends as "module:Class", imported only when picked (no SDK import for process).
SPAWNERS: dict[str, str] = {
    "process": "spawnkit.spawners.process:ProcessSpawner",
    "docker": "spawnkit.spawners.docker:DockerSpawner",
    "podman": "spawnkit.spawners.podman:PodmanSpawner",
}

ENTRY_POINT_GROUP = "spawnkit.spawners"


def available() -> dict[str, str]:
    """Every backend name with where it comes from; built-ins win over plug-ins."""
    found = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    found.update(SPAWNERS)
    return found


def get_spawner_class(name: str) -> type[Spawner]:
    target = available().get(name)
    if target is None:
        names = ", ".join(sorted(available()))
        raise UsageError(f"unknown spawner '{name}' (choose from: {names})")
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, attr)
    if not (isinstance(cls, type) and issubclass(cls, Spawner)):
        raise UsageError(f"spawner '{name}' ({target}) is not a Spawner")
    return cls
