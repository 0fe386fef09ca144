"""The process backend: tasks as local process groups (the embedded default).

`ProcessSpawner` is looked up lazily: the task supervisor runs as a module of this package
(`python -m spawnkit.spawners.process.supervisor`), and must not import the runner's side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spawnkit.spawners.process.spawner import ProcessSpawner

__all__ = ["ProcessSpawner"]


def __getattr__(name: str) -> object:
    if name == "ProcessSpawner":
        from spawnkit.spawners.process.spawner import ProcessSpawner

        return ProcessSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
