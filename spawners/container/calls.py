"""Engine calls, off the event loop: every SDK call blocks, so each runs in a daemon thread of
a pool sized for many tasks at once (a daemon thread: a call stuck on an engine that never
answers holds neither the job nor the runner's exit). Transient errors are tried again
(`faults.RetryPolicy`), and what could not be removed is removed again at the end."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import time
from collections.abc import Callable
from typing import Any, TypeVar

from spawnkit.core.errors import BackendError
from spawnkit.spawners.container.engine import Engine
from spawnkit.spawners.container.faults import engine_message
from spawnkit.spawners.container.threads import DaemonThreadPool

__all__ = ["ENGINE_THREADS", "EngineCalls"]

LOG = logging.getLogger(__name__)

T = TypeVar("T")

#: Threads for engine calls: enough that a spawn never waits for another task's call.
ENGINE_THREADS = 32


class EngineCalls:
    """The calls of one spawner to its engine."""

    def __init__(self, spawner: str, engine: Engine) -> None:
        self.spawner = spawner
        self.engine = engine
        self._pool: DaemonThreadPool | None = None
        #: Containers whose removal failed (the engine away for a moment): tried again later.
        self.leftovers: set[str] = set()

    async def __call__(
        self, fn: Callable[..., T], *args: Any, idempotent: bool = True, retry: bool = True
    ) -> T:
        if self._pool is None:
            self._pool = DaemonThreadPool(ENGINE_THREADS,
                                          thread_name_prefix=f"spawnkit-{self.spawner}")
        call = (functools.partial(self.engine.retry, fn, *args, idempotent=idempotent)
                if retry else functools.partial(fn, *args))
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def error(self, cls: type[BackendError], message: str, exc: BaseException,
              handle: str | None = None) -> BackendError:
        """An error of this spawner, with the engine's own words."""
        return cls(message, spawner=self.spawner, handle=handle,
                   engine_message=engine_message(exc))

    async def wait_ended(self, container_id: str, within: float) -> bool:
        """True once the container has ended (or is gone), False after `within` seconds."""
        deadline = time.monotonic() + within
        step = min(0.1, max(within / 10, 0.02))
        while True:
            state = await self(self.engine.inspect, container_id)
            if state is None or not state.running:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(step)

    async def stop(self, container_id: str, grace_period: float, kill_wait: float,
                   sent: set[int]) -> None:
        """TERM, up to `grace_period` seconds for the container to end, then KILL and up to
        `kill_wait` more (Docker's `stop`, with waits of our own: the engine's would hold a
        thread for the whole grace). Each signal goes into `sent` before it is sent (an
        answer lost on the way may hide a delivered signal) and out again when the engine says
        the container was not running. Already gone or ended is stopped: no error."""
        if grace_period > 0:
            if not await self._signal(container_id, signal.SIGTERM, sent):
                return
            if await self.wait_ended(container_id, grace_period):
                return
        await self._signal(container_id, signal.SIGKILL, sent)
        await self.wait_ended(container_id, kill_wait)

    async def _signal(self, container_id: str, sig: signal.Signals, sent: set[int]) -> bool:
        sent.add(sig)
        attempts = 0

        def kill() -> bool:
            nonlocal attempts
            attempts += 1
            return self.engine.kill(container_id, sig.name)

        delivered = await self(kill, idempotent=False)
        if not delivered and attempts == 1:
            # Not running when the only try came. After a try whose answer was lost, it may
            # have been delivered (and the "not running" be its doing): it stays in `sent`.
            sent.discard(sig)
        return delivered

    async def remove_or_leave(self, container_id: str) -> None:
        """Remove the container; if the engine cannot now, try again at the end."""
        try:
            await self(self.engine.remove, container_id)
        except Exception as exc:
            LOG.warning("%s: cannot remove %s: %s", self.spawner, container_id[:12],
                        engine_message(exc))
            self.leftovers.add(container_id)

    async def close(self, *, engine_answers: bool, within: float) -> None:
        """Remove the leftovers (within a bound: the engine may have gone away again), close
        the connection, and let the threads go."""
        if self._pool is None:
            return
        if self.leftovers and engine_answers:
            leftovers, self.leftovers = sorted(self.leftovers), set()
            removals = [asyncio.ensure_future(self(self.engine.remove, c)) for c in leftovers]
            await asyncio.wait(removals, timeout=within)
            for container_id, removal in zip(leftovers, removals, strict=True):
                if removal.done() and removal.exception() is None:
                    continue
                removal.cancel()
                LOG.warning("%s: container %s is left to 'spawnkit gc'", self.spawner,
                            container_id[:12])
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self(self.engine.close, retry=False), within)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None
