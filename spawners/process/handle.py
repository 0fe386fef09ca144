"""One running task's process, as the runner knows it: its PID (its process group too), and
once the task supervisor reported them, its raw wait status and the end of its output."""

from __future__ import annotations

import asyncio
import os

from spawnkit.core.task.outcome import ExitResult

__all__ = ["ProcessHandle"]


class ProcessHandle:
    """A task's process, from its start until its outcome is collected."""

    __slots__ = ("drained", "ended_at", "exited", "pid", "reaped", "start", "status",
                 "stop_began", "timed_out")

    def __init__(self, pid: int, start: int | None) -> None:
        self.pid = pid
        self.start = start  # clock ticks since boot: tells a reused PID apart
        self.status: int | None = None  # raw wait status, once it ended
        #: Epoch seconds it ended, when learnt after the fact (a task taken over).
        self.ended_at: float | None = None
        #: Monotonic seconds (the host's clock, the supervisor's too): when the supervisor
        #: reaped it, and when the runner first began to stop it. An exit reaped before its
        #: stop began is the task's own (`ExitResult.ended_before_stop`), however late the
        #: runner heard of it.
        self.reaped: float | None = None
        self.stop_began: float | None = None
        #: The task supervisor's words when it timed the task out itself (its runner gone).
        self.timed_out: str | None = None
        loop = asyncio.get_running_loop()
        self.exited: asyncio.Future[None] = loop.create_future()
        #: Its output is whole in its files (masked output passes through the supervisor).
        self.drained: asyncio.Future[None] = loop.create_future()

    @property
    def ended(self) -> bool:
        return self.status is not None

    @property
    def exit_lost(self) -> bool:
        """It ended with no word of how (`lost`)."""
        return self.status is not None and self.status < 0

    def end(self, status: int, *, reaped: float | None = None) -> None:
        self.status = status
        self.reaped = reaped
        if not self.exited.done():
            self.exited.set_result(None)

    def lost(self) -> None:
        """The supervisor went away before it said how the task ended."""
        if self.status is None:
            self.status = -1
        for future in (self.exited, self.drained):
            if not future.done():
                future.set_result(None)

    def exit_result(self) -> ExitResult:
        status = self.status
        if status is None or self.exit_lost:
            return ExitResult(exit_code=None, error="exit status lost: the task supervisor "
                              "ended before the task did")
        first = (self.stop_began is not None and self.reaped is not None
                 and self.reaped < self.stop_began)
        if os.WIFSIGNALED(status):
            return ExitResult(exit_code=None, signal=os.WTERMSIG(status), ended_at=self.ended_at,
                              ended_before_stop=first, timed_out=self.timed_out)
        return ExitResult(exit_code=os.waitstatus_to_exitcode(status), ended_at=self.ended_at,
                          ended_before_stop=first, timed_out=self.timed_out)
