"""The job's Pods as one label-selector listing per poll sees them, for every task at once.

Liveness, the wait for a Pod to start, and the wait for its end all read the same listing:
the API server sees one call per poll interval whatever the number of tasks (a listing of
100 Pods costs it about 5 ms). A listing unanswered for `down_after` seconds in a row
(refused, or no answer at all from a hung server) makes the API server down, as for the
container engines (`ListingWatch`): the job's running tasks then end as error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from spawnkit.spawners.container.watch import ListingWatch, Outage
from spawnkit.spawners.kubernetes.api import api_message
from spawnkit.spawners.kubernetes.state import PodState, pod_state

__all__ = ["PodWatch"]


class PodWatch(ListingWatch[list[dict[str, Any]]]):
    """The last listing of the job's Pods, asked for at most once per `poll_interval`."""

    def __init__(self, url: str, down_after: float, poll_interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("kubernetes", "the API server", "the Kubernetes API server", url,
                         down_after, poll_interval, clock)
        self._seen: dict[str, PodState] = {}

    def _message(self, exc: BaseException) -> str:
        return api_message(exc)

    def _take(self, listed: list[dict[str, Any]], outage: Outage | None) -> None:
        self._seen = {s.name: s for s in map(pod_state, listed)}

    def seen_since(self, when: float) -> bool:
        """Whether the last listing was asked for after `when` (monotonic): a Pod made
        before then is in it, or is gone."""
        return self._taken > when

    def get(self, name: str, uid: str | None = None) -> PodState | None:
        """Pod `name` as the last listing showed it; with `uid`, only that Pod: a Pod made
        again under the same name (without the `sh` wrapper) is not its predecessor, which a
        listing taken before it may still show."""
        state = self._seen.get(name)
        if state is not None and uid and state.uid != uid:
            return None
        return state

    async def wait_end(self, refresh: Callable[[], Awaitable[None]], name: str, since: float,
                       within: float, uid: str | None = None) -> PodState | None:
        """Pod `name` (made at `since`; `uid`: that Pod only) once it has ended, is stuck for
        good, or is gone (None); as it is after `within` seconds otherwise, or once the
        server is down."""
        deadline = self._clock() + within
        while True:
            await refresh()
            state = self.get(name, uid)
            if state is None and self.seen_since(since):
                return None
            if state is not None and (state.ended or state.fatal() is not None):
                return state
            if self._clock() >= deadline or self.down is not None:
                return state
            await asyncio.sleep(self._poll_interval)
