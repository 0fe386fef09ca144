"""One running task's container: the state spawnkit keeps of it, in one object (as Nomad's
drivers keep one handle per task), not in maps keyed by container ID."""

from __future__ import annotations

from dataclasses import dataclass, field

from spawnkit.spawners.container.logs import LogFollower

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
    #: Its live output, masked into the task's files.
    logs: LogFollower | None = None
    #: The signals spawnkit sent it: a death by one of them is then known, and ours.
    sent: set[int] = field(default_factory=set)
    #: The engine's exit event came: it has ended, whatever the last listing said.
    died: bool = False
    #: Taken over from a dead runner (`spawnkit resume`): it may have ended long before.
    adopted: bool = False
    #: spawnkit's first stop found it ended already (the engine tells of an exit a moment
    #: after it, so a deadline may pass in between): its own exit stands.
    ended_first: bool = False

    @property
    def stopped(self) -> bool:
        """spawnkit stopped it: this runner's signals, or a stop a dead runner began that
        found it ended (a resume carries that stop on)."""
        return bool(self.sent) or (self.adopted and self.ended_first)

    @property
    def short(self) -> str:
        return self.id[:12]
