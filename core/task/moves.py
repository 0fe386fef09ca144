"""A worker's background moves: the awaits that may wait on an engine, each tied to its task.

A requirement check, a spawn, a termination and a collection each run as a task of the
worker's `asyncio.TaskGroup`, so a slow engine call stalls no other task and nothing outlives
the worker. Once a stop's own deadline has passed (its grace, and a little more), what still
waits on an engine that does not answer is abandoned: the call goes on in its thread, nobody
waits for it, and the job can end and say so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

__all__ = ["Moves"]

LOG = logging.getLogger(__name__)


class Moves:
    """The moves in flight of one worker, by task id."""

    def __init__(self, on_done: Callable[[], None]) -> None:
        self._on_done = on_done
        self._group: asyncio.TaskGroup | None = None
        self._by_task: dict[asyncio.Task[None], str] = {}

    def bind(self, group: asyncio.TaskGroup | None) -> None:
        self._group = group

    @property
    def bound(self) -> bool:
        """Inside the worker's `run()`: moves run in the background."""
        return self._group is not None

    def start(self, task_id: str, move: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        group = self._group
        if group is None:
            task = asyncio.ensure_future(move)
        else:
            # The group closes what it refuses (Python 3.13 on): it is given a wrapper, so
            # the move itself is still there to run.
            wrapper = _run(move)
            try:
                task = group.create_task(wrapper)
                # A wrapper cancelled before its first step never starts the move: closed,
                # not left to warn that it was never awaited.
                task.add_done_callback(lambda _task: move.close())
            except RuntimeError:
                # Shutting down on an error of ours while the worker's wind-down stops what
                # runs: the move still runs, awaited by `drain` instead.
                wrapper.close()
                task = asyncio.ensure_future(move)
                task.add_done_callback(_say_error)
        self._by_task[task] = task_id
        task.add_done_callback(self._done)
        return task

    async def settle(self, move: asyncio.Task[None] | None) -> bool:
        """Outside the worker's `run()` (no group bound: the original's phases driven by a
        loop of the caller's own), wait for the move a phase began, as the original's phases
        await theirs: the phase returns with its move made. Inside, return at once.
        Whether there was a move."""
        if move is not None and not self.bound:
            await asyncio.wait([move])
        return move is not None

    def _done(self, task: asyncio.Task[None]) -> None:
        self._by_task.pop(task, None)
        self._on_done()

    def __bool__(self) -> bool:
        return bool(self._by_task)

    def cancel(self, task_ids: set[str]) -> None:
        """Stop waiting for these tasks' moves (their tasks are finished already)."""
        for task, task_id in list(self._by_task.items()):
            if task_id in task_ids:
                task.cancel()

    def abandon(self) -> list[str]:
        """Cancel every move still in flight; the ids of their tasks."""
        task_ids = sorted(set(self._by_task.values()))
        for task in list(self._by_task):
            task.cancel()
        return task_ids

    async def drain(self, until: Callable[[], float | None]) -> list[str]:
        """Wait for every move, new ones too, until `until()` (a monotonic deadline, or None
        for none) passes; then abandon the rest. The ids of the tasks abandoned."""
        loop = asyncio.get_running_loop()
        while self._by_task:
            deadline = until()
            timeout = None if deadline is None else max(deadline - loop.time(), 0.0)
            done, _pending = await asyncio.wait(set(self._by_task), timeout=timeout)
            if not done and deadline is not None and loop.time() >= deadline:
                abandoned = self.abandon()
                if self._by_task:
                    await asyncio.wait(set(self._by_task))
                return abandoned
        return []


async def _run(move: Coroutine[Any, Any, None]) -> None:
    await move


def _say_error(task: asyncio.Task[None]) -> None:
    """A move outside the group: its error is nobody's to raise, so it is logged."""
    error = None if task.cancelled() else task.exception()
    if error is not None:
        LOG.error("while winding down: %s: %s", type(error).__name__, error)
