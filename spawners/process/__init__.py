"""The process backend: tasks as local process groups (the embedded default)."""

from spawnkit.spawners.process.handle import ProcessHandle
from spawnkit.spawners.process.spawner import ProcessSpawner

__all__ = ["ProcessHandle", "ProcessSpawner"]
