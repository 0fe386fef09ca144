"""The Kubernetes backend: each task a Pod of its own (handle = the Pod's name).

`KubernetesSpawner` is looked up lazily: the `kubernetes` client takes most of a second to
import, and `spawnkit gc` on a machine without a cluster must not pay for it before it knows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spawnkit.spawners.kubernetes.spawner import KubernetesSpawner

__all__ = ["KubernetesSpawner"]


def __getattr__(name: str) -> object:
    if name == "KubernetesSpawner":
        from spawnkit.spawners.kubernetes.spawner import KubernetesSpawner

        return KubernetesSpawner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
