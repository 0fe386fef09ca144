"""When an engine that stopped answering counts as down.

A container backend asks its engine for one listing per poll. An engine that answers none of
them for `down_after` seconds in a row (refused, reset, or no answer at all from a hung
daemon) is down: its running tasks then end as error instead of looking alive forever. The
outages seen are kept, so a container that died in one (a daemon restart kills them) is told
apart from a task that failed by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["EngineWatch", "Outage"]


@dataclass
class Outage:
    """A span in which the engine answered no listing."""

    since: float  # monotonic time the first unanswered listing was asked for
    message: str  # the engine's words for the last failure, or that it said nothing
    until: float | None = None  # monotonic time it answered again; None while it lasts


class EngineWatch:
    """The answers to the per-poll listing, and what they say of the engine."""

    def __init__(self, down_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.down_after = down_after
        self._clock = clock
        self._unanswered_since: float | None = None
        self.current: Outage | None = None

    def asked(self, at: float) -> None:
        """A listing was asked for at `at` (monotonic)."""
        if self._unanswered_since is None:
            self._unanswered_since = at

    def answered(self) -> Outage | None:
        """A listing was answered: any outage ends. Returns the outage that ended."""
        self._unanswered_since = None
        ended, self.current = self.current, None
        if ended is not None:
            ended.until = self._clock()
        return ended

    def failed(self, message: str) -> Outage:
        """A listing failed (after its retries): an outage begins, or goes on."""
        return self._note(message)

    def down(self) -> Outage | None:
        """The outage once no listing has been answered for `down_after` seconds, else None.

        A listing still waiting for its answer counts: a hung daemon fails no call.
        """
        if not self.is_down():
            return None
        return self.current or self._note("no answer: the engine accepts calls but never replies")

    def _note(self, message: str) -> Outage:
        since = self._unanswered_since if self._unanswered_since is not None else self._clock()
        if self.current is None:
            self.current = Outage(since, message)
        else:
            self.current.message = message
        return self.current

    def unanswered_for(self) -> float:
        """Seconds since the oldest listing not answered (0 when the last one was)."""
        if self._unanswered_since is None:
            return 0.0
        return max(self._clock() - self._unanswered_since, 0.0)

    def is_down(self) -> bool:
        return self._unanswered_since is not None and self.unanswered_for() >= self.down_after
