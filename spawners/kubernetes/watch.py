"""The job's Pods as one label-selector listing per poll sees them, for every task at once.

Liveness, the wait for a Pod to start, and the wait for its end all read the same listing:
the API server sees one call per poll interval whatever the number of tasks (a listing of
100 Pods costs it about 5 ms). A listing unanswered for `down_after` seconds in a row
(refused, or no answer at all from a hung server) makes the API server down, as for the
container engines (`EngineWatch`): the job's running tasks then end as error.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from spawnkit.core.errors import BackendError
from spawnkit.spawners.container.watch import EngineWatch
from spawnkit.spawners.kubernetes.api import api_message
from spawnkit.spawners.kubernetes.state import PodState, pod_state

__all__ = ["PodWatch"]

LOG = logging.getLogger(__name__)


class PodWatch:
    """The last listing of the job's Pods, asked for at most once per `poll_interval`."""

    def __init__(self, url: str, down_after: float, poll_interval: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._url = url
        self._poll_interval = poll_interval
        self._clock = clock
        self._watch = EngineWatch(down_after, clock)
        self._seen: dict[str, PodState] = {}
        self._taken = float("-inf")  # when the listing in `_seen` was asked for
        self._asked = float("-inf")
        self._listing: asyncio.Future[list[dict[str, Any]]] | None = None
        self._lock = asyncio.Lock()
        #: Set once the API server has answered no listing for `down_after` seconds.
        self.down: BackendError | None = None

    async def refresh(self, ask: Callable[[], Awaitable[list[dict[str, Any]]]],
                      on_answer: Callable[[], None]) -> None:
        """A fresh listing, unless one asked for less than a poll ago serves. A listing that
        does not answer is waited for one poll at most (and still counts towards down)."""
        async with self._lock:
            now = self._clock()
            if now - self._taken < self._poll_interval * 0.9:
                return
            if self._listing is None:
                self._asked = now
                self._watch.asked(now)
                self._listing = asyncio.ensure_future(ask())
                self._listing.add_done_callback(lambda _: on_answer())
            listing = self._listing
            done, _ = await asyncio.wait({listing}, timeout=self._poll_interval)
            if done:
                self._listing = None
                self._read(listing)
            self._check_down()

    def _read(self, listing: asyncio.Future[list[dict[str, Any]]]) -> None:
        try:
            items = listing.result()
        except Exception as exc:
            message = api_message(exc)
            if self._watch.current is None:
                LOG.warning("kubernetes: the API server does not answer (%s); running tasks "
                            "end as error if it stays so for %g s", message,
                            self._watch.down_after)
            self._watch.failed(message)
            return
        outage = self._watch.answered()
        if outage is not None and outage.until is not None:
            LOG.warning("kubernetes: the API server answers again, after %.1f s",
                        outage.until - outage.since)
        self.down = None
        self._seen = {s.name: s for s in map(pod_state, items)}
        self._taken = self._asked

    def _check_down(self) -> None:
        if self.down is not None:
            return
        outage = self._watch.down()
        if outage is None:
            return
        self.down = BackendError(
            f"the Kubernetes API server at {self._url} has not answered for "
            f"{self._watch.down_after:g} s ({outage.message})",
            spawner="kubernetes", engine_message=outage.message,
        )
        LOG.warning("kubernetes: %s: its running tasks end as error", self.down)

    def seen_since(self, when: float) -> bool:
        """Whether the last listing was asked for after `when` (monotonic): a Pod made
        before then is in it, or is gone."""
        return self._taken > when

    def get(self, name: str) -> PodState | None:
        return self._seen.get(name)

    async def wait_end(self, refresh: Callable[[], Awaitable[None]], name: str, since: float,
                       within: float) -> PodState | None:
        """Pod `name` (made at `since`) once it has ended, is stuck for good, or is gone
        (None); as it is after `within` seconds otherwise, or once the server is down."""
        deadline = self._clock() + within
        while True:
            await refresh()
            state = self.get(name)
            if state is None and self.seen_since(since):
                return None
            if state is not None and (state.ended or state.fatal() is not None):
                return state
            if self._clock() >= deadline or self.down is not None:
                return state
            await asyncio.sleep(self._poll_interval)

    def close(self) -> None:
        listing, self._listing = self._listing, None
        if listing is not None:
            listing.cancel()
            listing.add_done_callback(lambda f: f.cancelled() or f.exception())
