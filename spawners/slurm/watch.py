"""The job's Slurm jobs as the last `squeue` saw them: one call per poll serves every task's
liveness, every termination and every collection, and tells when the controller is down.

One call at a time is in flight; a caller waits for it at most one poll interval, so a
controller that does not answer (squeue retries for about 18 s) never stalls the worker, and
its silence counts towards `down_after`, the bound the container engines have too. A cheap
`scontrol ping` (milliseconds, even with the controller down) gives the outage its words.

Polls are frequent (`fast`) while something is about to change: a job submitted in the last
`young` seconds, or a termination or collection waiting for an end; otherwise one per `slow`
seconds, so a long job does not cost the controller ten calls a second.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from spawnkit.core.errors import BackendError
from spawnkit.spawners.slurm.commands import CommandFailed, Completed, SlurmTools, one_line
from spawnkit.spawners.slurm.state import FORMAT, UNKNOWN_IDS, JobState, parse_squeue

__all__ = ["QueueWatch", "ping_words"]

LOG = logging.getLogger(__name__)

#: Seconds a poll's squeue may take before it is killed (and the poll is unanswered).
POLL_TIMEOUT = 30.0
PING_TIMEOUT = 5.0


def ping_words(done: Completed) -> str:
    """What `scontrol ping` says of the controller: its first line ("Slurmctld(primary) at
    vm is DOWN"), without the banner that follows."""
    for line in (done.stdout + "\n" + done.stderr).splitlines():
        if line.strip() and not line.strip().startswith("*"):
            return one_line(line)
    return done.words


class QueueWatch:
    def __init__(
        self,
        tools: SlurmTools,
        down_after: float,
        *,
        fast: float,
        slow: float,
        young: float,
        notify: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._tools = tools
        self.down_after = down_after
        self.fast, self.slow, self.young = fast, slow, young
        self._notify = notify
        self._clock = clock
        self._jobs: dict[str, float] = {}  # job id -> monotonic time it was submitted
        self._seen: dict[str, JobState] = {}
        self._taken = float("-inf")  # when the answer in _seen was asked for
        self._asked = float("-inf")
        self._call: asyncio.Future[dict[str, JobState]] | None = None
        self._ping: asyncio.Future[str | None] | None = None
        self._pinged = float("-inf")
        self._unanswered_since: float | None = None
        self._waiters = 0
        self._lock = asyncio.Lock()
        #: The engine's words for the outage going on, if one is.
        self.outage: str | None = None
        #: Set once the controller has answered no poll for `down_after` seconds.
        self.down: BackendError | None = None

    # -- the jobs ------------------------------------------------------------------------------

    def track(self, job_id: str) -> None:
        self._jobs[job_id] = self._clock()

    def forget(self, job_id: str) -> None:
        self._jobs.pop(job_id, None)
        self._seen.pop(job_id, None)

    def state(self, job_id: str) -> JobState | None:
        """What the last answer said of the job; None when it was not in it."""
        return self._seen.get(job_id)

    def seen_since_submit(self, job_id: str) -> bool:
        """The last answer was asked for after the job was submitted: if the job is not in
        it, the controller does not know it (any more)."""
        submitted = self._jobs.get(job_id)
        return submitted is not None and self._taken > submitted

    def alive(self, job_id: str) -> bool:
        state = self._seen.get(job_id)
        if state is not None:
            return not state.ended
        # Submitted after the last poll was asked for: not in it yet.
        return not self.seen_since_submit(job_id)

    # -- polling -------------------------------------------------------------------------------

    def _gap(self, now: float) -> float:
        if self._waiters or any(now - t < self.young for t in self._jobs.values()):
            return self.fast
        return self.slow

    async def refresh(self) -> None:
        """Poll, unless a fresh enough answer is in; wait for it at most one fast interval."""
        async with self._lock:
            if not self._jobs:
                return
            now = self._clock()
            if self._call is None:
                if now - self._asked < self._gap(now) * 0.9:
                    return
                self._asked = now
                if self._unanswered_since is None:
                    self._unanswered_since = now
                self._call = asyncio.ensure_future(self._squeue(list(self._jobs)))
                # An answer that comes after we stopped waiting: the worker polls again.
                self._call.add_done_callback(lambda _: self._notify())
            call, asked = self._call, self._asked
            done, _ = await asyncio.wait({call}, timeout=self.fast)
            if done:
                self._call = None
                self._read(call, asked)
            else:
                self._ask_ping()
            self._check_down()

    async def _squeue(self, job_ids: list[str]) -> dict[str, JobState]:
        done = await self._tools.run("squeue", "-h", "-t", "all", "-j", ",".join(job_ids),
                                     "-O", FORMAT, timeout=POLL_TIMEOUT)
        if done.returncode != 0:
            if UNKNOWN_IDS in done.stderr:
                return {}  # none of them known: not an outage
            raise CommandFailed("squeue failed", argv=done.argv, engine_message=done.words,
                                returncode=done.returncode)
        return parse_squeue(done.stdout)

    def _read(self, call: asyncio.Future[dict[str, JobState]], asked: float) -> None:
        try:
            fresh = call.result()
        except Exception as exc:
            words = exc.engine_message if isinstance(exc, BackendError) else None
            self._note_outage(words or one_line(str(exc)))
            self._ask_ping()
            return
        if self.outage is not None:
            since = self._unanswered_since or asked
            LOG.warning("slurm: the controller answers again, after %.1f s",
                        self._clock() - since)
        self.outage, self.down, self._unanswered_since = None, None, None
        self._seen = {job_id: fresh[job_id] for job_id in self._jobs if job_id in fresh}
        self._taken = asked

    def _note_outage(self, words: str) -> None:
        if self.outage is None:
            LOG.warning("slurm: the controller does not answer (%s); its running tasks end as "
                        "error if it stays so for %g s", words, self.down_after)
        self.outage = words

    def _ask_ping(self) -> None:
        """`scontrol ping` answers in milliseconds even when the controller is down: the
        outage's words, without waiting for squeue's own retries."""
        now = self._clock()
        if self._ping is not None or now - self._pinged < 1.0:
            return
        self._pinged = now
        self._ping = asyncio.ensure_future(self._ping_words())
        self._ping.add_done_callback(self._pinged_back)

    async def _ping_words(self) -> str | None:
        done = await self._tools.run("scontrol", "ping", timeout=PING_TIMEOUT)
        return None if done.returncode == 0 and "is UP" in done.stdout else ping_words(done)

    def _pinged_back(self, ping: asyncio.Future[str | None]) -> None:
        self._ping = None
        if ping.cancelled():
            return
        exc = ping.exception()
        words = (exc.engine_message if isinstance(exc, BackendError) else str(exc)) if exc \
            else ping.result()
        if words and self._unanswered_since is not None:
            self._note_outage(words)

    def _check_down(self) -> None:
        since = self._unanswered_since
        if self.down is not None or since is None or self._clock() - since < self.down_after:
            return
        words = self.outage or "no answer to squeue"
        self.down = BackendError(
            f"the Slurm controller has not answered for {self.down_after:g} s ({words})",
            spawner="slurm", engine_message=words,
        )
        LOG.warning("slurm: %s: its running tasks end as error", self.down)

    # -- waiting for an end --------------------------------------------------------------------

    async def wait_ended(self, job_id: str, within: float) -> JobState | None:
        """The job's state once it has ended, polling with everyone else's polls; the last
        state seen if `within` runs out first; None when the controller does not know the
        job or is down."""
        deadline = self._clock() + within
        self._waiters += 1
        try:
            while True:
                await self.refresh()
                state = self._seen.get(job_id)
                if state is not None and state.ended:
                    return state
                if self.down is not None or (state is None and self.seen_since_submit(job_id)):
                    return None
                if self._clock() >= deadline:
                    return state
                await asyncio.sleep(min(self.fast, max(deadline - self._clock(), 0.0)) or 0.001)
        finally:
            self._waiters -= 1

    def close(self) -> None:
        for pending in (self._call, self._ping):
            if pending is not None:
                pending.cancel()
                # Its failure, if any, is read here rather than reported as never retrieved.
                pending.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._call = self._ping = None
