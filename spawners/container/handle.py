"""One running task's container: the state spawnkit keeps of it, in one object (as Nomad's
drivers keep one handle per task), not in maps keyed by container ID."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ContainerHandle"]


@dataclass
class ContainerHandle:
    """A task's container, from its start until its outcome is collected."""

    id: str
    name: str
    image: str
    #: Monotonic time its start returned: a listing asked for before then cannot show it.
    spawned_at: float
    #: Epoch time just before its start, to ask the engine's event log about it.
    started_wall: float
    #: spawnkit signalled it: a kill is then ours, not out of memory or from outside.
    signalled: bool = False

    @property
    def short(self) -> str:
        return self.id[:12]
