"""When an engine that stopped answering counts as down.

A container backend asks its engine for one listing per poll. An engine that answers none of
them for `down_after` seconds in a row (refused, reset, or no answer at all from a hung
daemon) is down: its running tasks then end as error instead of looking alive forever. The
outages seen are kept, so a container that died in one (a daemon restart kills them) is told
apart from a task that failed by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from spawnkit.core.errors import BackendError
from spawnkit.spawners.container.engine import ALIVE_STATES, ContainerSummary
from spawnkit.spawners.container.faults import engine_message

__all__ = ["ContainerWatch", "EngineWatch", "ListingWatch", "Outage"]

LOG = logging.getLogger(__name__)

ListingT = TypeVar("ListingT")


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


class ListingWatch(Generic[ListingT]):
    """One listing of the job's containers (or Pods) per poll interval, for every task at once,
    and what the engine's silence means. A listing that does not answer is waited for one poll
    at most and looked at again at the next (its wait still counts towards down): a daemon
    that never replies must not stall the worker.

    A subclass takes an answered listing in (`_take`) and reads the engine's errors
    (`_message`). `subject` names the engine in warnings ("the engine"), `server` in the
    error its running tasks end with ("the docker engine").
    """

    def __init__(self, spawner: str, subject: str, server: str, url: str, down_after: float,
                 poll_interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._spawner, self._subject, self._server, self._url = spawner, subject, server, url
        self._poll_interval = poll_interval
        self._clock = clock
        self._watch = EngineWatch(down_after, clock)
        self._taken = float("-inf")  # monotonic time the listing taken in was asked for
        self._asked = float("-inf")
        self._listing: asyncio.Future[ListingT] | None = None
        self._lock = asyncio.Lock()
        #: Set once the engine has answered no listing for `down_after` seconds.
        self.down: BackendError | None = None

    async def refresh(self, ask: Callable[[], Awaitable[ListingT]],
                      on_answer: Callable[[], None]) -> None:
        # The worker may poll more often than poll_interval (after every move it makes): a
        # fresh enough listing serves those polls too, so the engine sees one call per interval.
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

    def _take(self, listed: ListingT, outage: Outage | None) -> None:
        """An answered listing; `outage`: the one it ends, if it ends one."""
        raise NotImplementedError

    def _message(self, exc: BaseException) -> str:
        raise NotImplementedError

    def _read(self, listing: asyncio.Future[ListingT]) -> None:
        try:
            listed = listing.result()
        except Exception as exc:
            message = self._message(exc)
            if self._watch.current is None:
                LOG.warning("%s: %s does not answer (%s); its running tasks end as error if it "
                            "stays so for %g s", self._spawner, self._subject, message,
                            self._watch.down_after)
            self._watch.failed(message)
            return
        outage = self._watch.answered()
        if outage is not None and outage.until is not None:
            LOG.warning("%s: %s answers again, after %.1f s", self._spawner, self._subject,
                        outage.until - outage.since)
        self._take(listed, outage)
        self.down = None
        self._taken = self._asked

    def _check_down(self) -> None:
        if self.down is not None:
            return
        outage = self._watch.down()
        if outage is None:
            return
        self.down = BackendError(
            f"{self._server} at {self._url} has not answered for "
            f"{self._watch.down_after:g} s ({outage.message})",
            spawner=self._spawner,
            engine_message=outage.message,
        )
        LOG.warning("%s: %s: its running tasks end as error", self._spawner, self.down)

    def close(self) -> None:
        listing, self._listing = self._listing, None
        if listing is not None:
            # A listing nobody waits for now (a daemon that never replied): its failure, if
            # any, is read here rather than reported as never retrieved.
            listing.cancel()
            listing.add_done_callback(lambda f: f.cancelled() or f.exception())


class ContainerWatch(ListingWatch[list[ContainerSummary]]):
    """The job's containers as the last listing saw them: their liveness, and the containers
    that ended across an outage (a daemon's restart kills them)."""

    def __init__(
        self,
        spawner: str,
        engine: str,
        url: str,
        down_after: float,
        poll_interval: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(spawner, "the engine", f"the {engine} engine", url, down_after,
                         poll_interval, clock)
        self._seen: dict[str, str] = {}  # container id -> state
        #: Containers seen ending across an outage: id -> what the engine said then.
        self._victims: dict[str, str] = {}

    def _message(self, exc: BaseException) -> str:
        return engine_message(exc)

    def _take(self, listed: list[ContainerSummary], outage: Outage | None) -> None:
        fresh = {c.id: c.status for c in listed}
        if outage is not None and outage.until is not None:
            # A daemon's restart kills its containers: those alive before the outage (or
            # started since the last listing before it) and ended after it may have died of
            # it, not of their own doing.
            for cid, status in fresh.items():
                if status not in ALIVE_STATES and self._seen.get(cid, "running") in ALIVE_STATES:
                    self._victims[cid] = outage.message
        self._seen = fresh

    @property
    def outage(self) -> Outage | None:
        """The outage going on now, if the engine answers no listing."""
        return self._watch.current

    def unanswered_for(self) -> float:
        """Seconds since the oldest listing not answered."""
        return self._watch.unanswered_for()

    def alive(self, container_id: str, spawned_at: float) -> bool:
        """As the last listing saw it; a container started after that listing was asked
        for is not in it yet, and counts as alive."""
        if spawned_at >= self._taken:
            return True
        return self._seen.get(container_id) in ALIVE_STATES

    def victim_of_outage(self, container_id: str) -> str | None:
        """What the engine said during an outage this container ended across, if one did."""
        return self._victims.pop(container_id, None)
