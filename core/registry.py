"""Backends by name, found through the `spawnkit.spawners` entry-point group.

spawnkit's own backends register there too (pyproject.toml), so core names none of them and
imports a backend's module only once it is picked: `spawnkit run` on the process backend never
pays for a container SDK's import, and a plug-in is a backend like any other (`run`, `gc`,
`images`).
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points

from spawnkit.core.errors import UsageError
from spawnkit.core.spawner import Spawner, SpawnerOptions

__all__ = ["DEFAULT_SPAWNER", "ENTRY_POINT_GROUP", "available", "get_spawner_class",
           "make_spawner"]

DEFAULT_SPAWNER = "process"
ENTRY_POINT_GROUP = "spawnkit.spawners"


@functools.cache
def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> list[str]:
    """Every backend name, sorted."""
    return sorted(_entry_points())


def get_spawner_class(name: str) -> type[Spawner]:
    """The Spawner class registered as `name`; UsageError naming the choices otherwise."""
    entry = _entry_points().get(name)
    if entry is None:
        raise UsageError(f"unknown spawner '{name}' (choose from: {', '.join(available())})")
    try:
        cls = entry.load()
    except Exception as exc:  # a broken plug-in is bad input, not a crash
        raise UsageError(f"spawner '{name}' ({entry.value}) cannot be loaded: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Spawner)):
        raise UsageError(f"spawner '{name}' ({entry.value}) is not a Spawner")
    return cls


def make_spawner(name: str, options: SpawnerOptions | None = None) -> Spawner:
    return get_spawner_class(name)(options)
