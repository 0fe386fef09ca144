"""The Slurm backend: each task a Slurm batch job (handle = the Slurm job ID).

`SlurmSpawner` is looked up lazily: the nodes import `spawnkit.spawners.slurm.node` for every
job, and must not pay for the runner's modules (core's life cycle, the container backends).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spawnkit.spawners.slurm.spawner import SlurmSpawner

__all__ = ["SlurmSpawner"]


def __getattr__(name: str) -> object:
    if name == "SlurmSpawner":
        from spawnkit.spawners.slurm.spawner import SlurmSpawner

        return SlurmSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
