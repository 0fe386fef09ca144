"""The task life cycle: queues a task moves through, and the Worker that moves it.

requested -> triaging -> ready -> started -> finished. Each queue move happens under
`TaskStateMachine.lock`. One Worker monitors all its started tasks, so `max_running` alone
bounds concurrency; spawning, termination and collection run as background coroutines so a
slow engine call or a grace period never stalls the other tasks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from spawnkit.core.secrets import mask_file, secret_env
from spawnkit.core.task.outcome import judge
from spawnkit.core.task.runtime import ExitResult, RuntimeTask, RuntimeTaskStatus, TaskResult
from spawnkit.core.task.statusrepo import StatusRepo

if TYPE_CHECKING:
    from spawnkit.spawners.base import Spawner

__all__ = ["TaskStateMachine", "Worker"]

LOG = logging.getLogger(__name__)

_QUEUES = ("requested", "triaging", "ready", "started", "finished")


class TaskStateMachine:
    """Represents all phases that a task can go through its life."""

    def __init__(self, tasks: Iterable[RuntimeTask], status_repo: StatusRepo) -> None:
        self._requested: collections.deque[RuntimeTask] = collections.deque(tasks)
        self._triaging: list[RuntimeTask] = []
        self._ready: list[RuntimeTask] = []
        self._started: list[RuntimeTask] = []
        self._finished: list[RuntimeTask] = []
        self._lock = asyncio.Lock()
        self._status_repo = status_repo
        self._by_id = {rt.identifier: rt for rt in self._requested}
        # Shared by every worker of this machine: a stop one worker asks for (failfast, an
        # interrupt) is carried out by all; slots are numbered across all.
        self.stop_request: tuple[RuntimeTaskStatus, str | None] | None = None
        self.slots: dict[RuntimeTask, int] = {}
        # Tasks whose requirements are being checked (they stay in `triaging` meanwhile, so
        # an abort reaches them), and those whose check passed.
        self.checking: set[RuntimeTask] = set()
        self.checked: set[RuntimeTask] = set()
        for rt in self._requested:
            self._record(rt, "requested")

    @property
    def requested(self) -> collections.deque[RuntimeTask]:
        return self._requested

    @property
    def triaging(self) -> list[RuntimeTask]:
        return self._triaging

    @property
    def ready(self) -> list[RuntimeTask]:
        return self._ready

    @property
    def started(self) -> list[RuntimeTask]:
        return self._started

    @property
    def finished(self) -> list[RuntimeTask]:
        return self._finished

    @property
    def lock(self) -> asyncio.Lock:
        return self._lock

    @property
    def status_repo(self) -> StatusRepo:
        return self._status_repo

    @property
    def tasks(self) -> list[RuntimeTask]:
        """Every task, in the order given."""
        return list(self._by_id.values())

    def get(self, task_id: str) -> RuntimeTask | None:
        return self._by_id.get(task_id)

    @property
    async def complete(self) -> bool:
        """True when nothing is left to do (awaited, as in the original)."""
        async with self._lock:
            return not (self._requested or self._triaging or self._ready or self._started)

    def _record(self, runtime_task: RuntimeTask, status: str, **data: Any) -> None:
        self._status_repo.record(runtime_task.identifier, status, **data)

    def record(self, runtime_task: RuntimeTask, status: str, **data: Any) -> None:
        """Record a status change of a task (moves between queues are recorded too)."""
        self._record(runtime_task, status, **data)

    async def finish_task(
        self,
        runtime_task: RuntimeTask,
        status_reason: RuntimeTaskStatus | str | None = None,
        *,
        exit: ExitResult | None = None,
        error: BaseException | None = None,
        result: TaskResult | None = None,
        reason: str | None = None,
    ) -> None:
        """Include a task (already popped from its queue) in `finished`, once.

        Takes no lock: it does no await between its checks and its move, so callers may
        hold `lock` or not.
        """
        if runtime_task in self._finished:
            return
        status, reason = _as_status(status_reason, reason)
        runtime_task.status = status
        if exit is not None:
            runtime_task.exit = exit
        if result is None:
            result, reason = judge(runtime_task, status, exit=exit, error=error, reason=reason)
        runtime_task.result = result
        runtime_task.reason = reason
        runtime_task.ended_at = time.time()
        self._finished.append(runtime_task)
        data: dict[str, Any] = {"result": result.value, "reason": reason}
        if exit is not None:
            data.update(exit_code=exit.exit_code, signal=exit.signal, oom=exit.oom)
        self._record(runtime_task, status.name.lower(), **data)

    async def abort_queue(
        self,
        queue_name: str,
        status_reason: RuntimeTaskStatus | str | None = None,
        *,
        reason: str | None = None,
        spare: Callable[[RuntimeTask], bool] | None = None,
    ) -> None:
        """Abort all tasks inside a specific queue, finishing each with the reason.

        `spare` keeps the tasks it is true of in the queue, in their order.
        """
        if queue_name not in _QUEUES[:-1]:
            raise ValueError(f"no such queue: {queue_name}")
        queue: collections.deque[RuntimeTask] | list[RuntimeTask] = getattr(self, queue_name)
        kept = [rt for rt in queue if spare is not None and spare(rt)]
        aborted = [rt for rt in queue if rt not in kept]
        queue.clear()
        queue.extend(kept)
        for runtime_task in aborted:
            await self.finish_task(runtime_task, status_reason, reason=reason)

    async def abort(
        self,
        status_reason: RuntimeTaskStatus | str | None = None,
        *,
        reason: str | None = None,
        spare: Callable[[RuntimeTask], bool] | None = None,
    ) -> None:
        """Abort all non-started tasks (but those `spare` keeps)."""
        for queue_name in ("requested", "triaging", "ready"):
            await self.abort_queue(queue_name, status_reason, reason=reason, spare=spare)


def _as_status(
    status_reason: RuntimeTaskStatus | str | None, reason: str | None
) -> tuple[RuntimeTaskStatus, str | None]:
    """The original takes a status or a plain string reason; a string finishes as interrupted."""
    if status_reason is None:
        return RuntimeTaskStatus.FINISHED, reason
    if isinstance(status_reason, RuntimeTaskStatus):
        return status_reason, reason
    for status in RuntimeTaskStatus:
        if status_reason in (status.name, status.value):
            return status, reason
    return RuntimeTaskStatus.INTERRUPTED, reason or status_reason


class Worker:
    """Pushes tasks through the state machine with one spawner."""

    def __init__(
        self,
        state_machine: TaskStateMachine,
        spawner: Spawner,
        max_triaging: int | None = None,
        max_running: int | None = None,
        task_timeout: float | None = None,
        failfast: bool = False,
        *,
        grace_period: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state_machine = state_machine
        self._spawner = spawner
        self._max_triaging = max_triaging
        self._max_running = max_running
        self._task_timeout = task_timeout
        self._failfast = failfast
        self._grace_period = grace_period
        self._clock = clock
        self._busy: set[RuntimeTask] = set()  # spawning, terminating or being collected
        # What this worker started: several workers may share one state machine, each
        # polling and collecting only its own tasks, through its own spawner.
        self._mine: set[RuntimeTask] = set()
        self._background: set[asyncio.Task[None]] = set()
        self._stopping: RuntimeTaskStatus | None = None
        self._stop_why: str | None = None
        self._cancelled = False
        self._wake = asyncio.Event()
        spawner.add_waker(self._wake.set)

    # -- the four phases -------------------------------------------------------------------

    async def bootstrap(self) -> bool:
        """Reads from requested, moves into triaging."""
        sm = self._state_machine
        async with sm.lock:
            # Tasks waiting on dependencies do not count: else they could fill every
            # triage slot while what they wait for sits in `requested`.
            active = sum(
                1 for rt in sm.triaging if rt.status is not RuntimeTaskStatus.WAIT_DEPENDENCIES
            )
            if not sm.requested or (
                self._max_triaging is not None and active >= self._max_triaging
            ):
                return False
            runtime_task = sm.requested.popleft()
            runtime_task.status = RuntimeTaskStatus.WAIT
            sm.triaging.append(runtime_task)
        sm.record(runtime_task, "triaging")
        return True

    async def triage(self) -> bool:
        """Reads from triaging, moves into either: ready or finished.

        The requirement check (an image lookup, a pull) runs in the background: the loop
        keeps watching running tasks meanwhile, and the task stays in `triaging`.
        """
        sm = self._state_machine
        async with sm.lock:
            runtime_task = next((rt for rt in sm.triaging if rt not in sm.checking), None)
            if runtime_task is None:
                return False
            sm.triaging.remove(runtime_task)
            if runtime_task not in sm.checked:
                sm.checking.add(runtime_task)
                sm.triaging.append(runtime_task)
                self._in_background(self._check(runtime_task))
                return True
        waiting, failed = self._dependency_state(runtime_task)
        if failed is not None:
            dep = sm.get(failed)
            dep_result = dep.result.value if dep and dep.result else "unknown"
            await sm.finish_task(
                runtime_task,
                RuntimeTaskStatus.FAIL_TRIAGE,
                result=TaskResult.SKIPPED,
                reason=f"dependency '{failed}' did not pass ({dep_result})",
            )
            await self._after_finish(runtime_task)
            return True
        async with sm.lock:
            if waiting:
                progressed = runtime_task.status is not RuntimeTaskStatus.WAIT_DEPENDENCIES
                runtime_task.status = RuntimeTaskStatus.WAIT_DEPENDENCIES
                sm.triaging.append(runtime_task)
                return progressed
            runtime_task.status = RuntimeTaskStatus.WAIT
            sm.ready.append(runtime_task)
        sm.record(runtime_task, "ready")
        return True

    async def _check(self, runtime_task: RuntimeTask) -> None:
        sm = self._state_machine
        error: Exception | None = None
        try:
            secret_env(runtime_task.task)
            await self._spawner.check_task_requirements(runtime_task)
        except Exception as exc:
            error = exc
        async with sm.lock:
            sm.checking.discard(runtime_task)
            if runtime_task not in sm.triaging:
                return  # aborted while checked: already finished
            if error is None:
                sm.checked.add(runtime_task)
                return
            sm.triaging.remove(runtime_task)
            await sm.finish_task(runtime_task, RuntimeTaskStatus.FAIL_TRIAGE, error=error)
        await self._after_finish(runtime_task)

    def _dependency_state(self, runtime_task: RuntimeTask) -> tuple[bool, str | None]:
        """(still waiting?, id of a dependency that did not pass)."""
        waiting = False
        for dep_id in runtime_task.dependencies:
            dep = self._state_machine.get(dep_id)
            if dep is None:
                return False, dep_id
            if dep.result is None:
                waiting = True
            elif not dep.result.ok and not runtime_task.task.teardown:
                # A teardown runs whatever its dependencies' results: it stops what they began.
                return False, dep_id
        return waiting, None

    async def start(self) -> bool:
        """Reads from ready, moves into either: started or finished."""
        sm = self._state_machine
        async with sm.lock:
            if not sm.ready:
                return False
            if self._max_running is not None and len(sm.started) >= self._max_running:
                return False
            runtime_task = sm.ready.pop(0)
            sm.started.append(runtime_task)
            self._busy.add(runtime_task)
            self._mine.add(runtime_task)
            taken = set(sm.slots.values())
            sm.slots[runtime_task] = next(i for i in range(len(taken) + 1) if i not in taken)
        timeout = runtime_task.task.timeout or self._task_timeout
        runtime_task.execution_timeout = None if timeout is None else self._clock() + timeout
        runtime_task.spawner_name = self._spawner.name
        self._in_background(self._spawn(runtime_task))
        return True

    async def _spawn(self, runtime_task: RuntimeTask) -> None:
        sm = self._state_machine
        try:
            runtime_task.started_at = time.time()
            await self._spawner.spawn_task(runtime_task)
        except Exception as exc:
            await self._leave_started(runtime_task, RuntimeTaskStatus.FAIL_START, error=exc)
            return
        finally:
            self._busy.discard(runtime_task)
        runtime_task.status = RuntimeTaskStatus.STARTED
        sm.record(
            runtime_task,
            "started",
            handle=runtime_task.spawner_handle,
            spawner=self._spawner.name,
            spawning_result=runtime_task.spawning_result,
            slot=sm.slots.get(runtime_task),
        )
        if self._stopping is not None and self._stops(runtime_task):
            # Stopped while the spawn was in flight: end it like the others.
            self._terminate(runtime_task, self._stopping)

    async def monitor(self) -> bool:
        """Reads from started, moves into finished."""
        sm = self._state_machine
        async with sm.lock:
            watched = [rt for rt in sm.started if rt in self._mine and rt not in self._busy]
        if not watched:
            return False
        await self._spawner.refresh(watched)
        progressed = False
        now = self._clock()
        for runtime_task in watched:
            if await self._spawner.is_task_alive(runtime_task):
                deadline = runtime_task.execution_timeout
                if deadline is not None and now >= deadline:
                    self._terminate(runtime_task, RuntimeTaskStatus.TIMEOUT)
                    progressed = True
                continue
            self._busy.add(runtime_task)
            self._in_background(self._collect(runtime_task, RuntimeTaskStatus.FINISHED))
            progressed = True
        return progressed

    async def run(self) -> None:
        """Pushes Tasks forward and makes them do something with their lives."""
        sm = self._state_machine
        idle = 0.001
        try:
            while not await sm.complete:
                if sm.stop_request is not None and self._stopping is None:
                    await self.interrupt(*sm.stop_request)  # another worker's stop
                progressed = await self.bootstrap()
                progressed = await self.triage() or progressed
                progressed = await self.start() or progressed
                progressed = await self.monitor() or progressed
                if progressed:
                    idle = 0.001
                    await asyncio.sleep(0)
                    continue
                # Nothing moved: wait for a background move, an exit the spawner saw, the
                # next poll, or the nearest deadline, whichever comes first.
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(idle, self._until_deadline()))
                idle = min(idle * 2, self._spawner.poll_interval)
        finally:
            # Cancelled, or an error of ours: never leave a task running behind us. The
            # clean-up is shielded, so a second cancel cannot cut it short.
            await asyncio.shield(self._stop_and_drain())

    async def _stop_and_drain(self) -> None:
        sm = self._state_machine
        if self._mine or sm.requested or sm.triaging or sm.ready:
            self._cancelled = True  # teardowns spared by failfast stop too: the job is over
            await self.interrupt(RuntimeTaskStatus.INTERRUPTED, "the job was cancelled")
        await self._drain()

    def _until_deadline(self) -> float:
        deadlines = [rt.execution_timeout for rt in self._mine if rt.execution_timeout]
        if not deadlines:
            return float("inf")
        return max(min(deadlines) - self._clock(), 0.0) + 0.001

    # -- stopping --------------------------------------------------------------------------

    async def interrupt(
        self, status: RuntimeTaskStatus = RuntimeTaskStatus.INTERRUPTED, why: str | None = None
    ) -> None:
        """Finish everything not started and terminate everything running."""
        sm = self._state_machine
        if self._stopping is None:
            self._stopping, self._stop_why = status, why
        if sm.stop_request is None:
            sm.stop_request = (status, why)
        # failfast spares teardowns: a CI job must still stop the services it started.
        async with sm.lock:
            reason = f"not run: {why}" if why else None
            await sm.abort(status, reason=reason, spare=lambda rt: not self._stops(rt))
            running = [rt for rt in self._mine if rt not in self._busy and self._stops(rt)]
        for runtime_task in running:
            self._terminate(runtime_task, status)
        self._wake.set()

    def _stops(self, runtime_task: RuntimeTask) -> bool:
        """Is this task to be stopped? failfast spares teardowns; nothing else is spared."""
        if self._stopping is RuntimeTaskStatus.FAILFAST and not self._cancelled:
            return not runtime_task.task.teardown
        return self._stopping is not None

    def kill_now(self) -> None:
        """No more grace: kill every running task at once (a second interrupt)."""
        self._grace_period = 0.0
        for runtime_task in list(self._mine):
            if runtime_task.spawner_handle is not None:
                self._in_background(self._spawner.terminate_task(runtime_task, 0.0))
        self._wake.set()

    async def _after_finish(self, runtime_task: RuntimeTask) -> None:
        result = runtime_task.result
        self._wake.set()
        if result is None or result.ok or result is TaskResult.SKIPPED:
            return
        if self._failfast and self._stopping is None:
            why = f"--failfast after '{runtime_task.identifier}' {result.value}"
            await self.interrupt(RuntimeTaskStatus.FAILFAST, why)

    # -- background moves ------------------------------------------------------------------

    def _in_background(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background_done)

    def _background_done(self, task: asyncio.Task[None]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.error("internal error in a worker move", exc_info=task.exception())
        self._wake.set()

    def _terminate(self, runtime_task: RuntimeTask, status: RuntimeTaskStatus) -> None:
        if runtime_task in self._busy or runtime_task.spawner_handle is None:
            return
        self._busy.add(runtime_task)
        self._in_background(self._terminate_and_collect(runtime_task, status))

    async def _terminate_and_collect(
        self, runtime_task: RuntimeTask, status: RuntimeTaskStatus
    ) -> None:
        reason = None
        if status is RuntimeTaskStatus.TIMEOUT:
            timeout = runtime_task.task.timeout or self._task_timeout
            reason = f"timed out after {timeout:g} s"
        elif self._stop_why:
            reason = f"interrupted: {self._stop_why}"
        self._state_machine.record(runtime_task, "terminating", why=status.name.lower())
        try:
            await self._spawner.terminate_task(runtime_task, self._grace_period)
        except Exception as exc:
            LOG.warning("terminating %s: %s", runtime_task.identifier, exc)
        await self._collect(runtime_task, status, reason=reason)

    async def _collect(
        self, runtime_task: RuntimeTask, status: RuntimeTaskStatus, reason: str | None = None
    ) -> None:
        try:
            exit = await self._spawner.collect_task(runtime_task)
            self._mask_secrets(runtime_task)
        except Exception as exc:
            await self._leave_started(runtime_task, status, error=exc)
            return
        finally:
            self._busy.discard(runtime_task)
        stopping = self._stopping
        ours = stopping is not None and self._stops(runtime_task) and exit.signal is not None
        if status is RuntimeTaskStatus.FINISHED and stopping is not None and ours:
            status = stopping  # killed by our own stop, not by itself
        await self._leave_started(runtime_task, status, exit=exit, reason=reason)

    def _mask_secrets(self, runtime_task: RuntimeTask) -> None:
        """What the task printed may hold its secrets: masked here, for every backend."""
        if not runtime_task.task.secrets or runtime_task.output_dir is None:
            return
        values = [v for k, v in os.environ.items() if k in runtime_task.task.secrets]
        for name in ("stdout", "stderr"):
            mask_file(runtime_task.output_dir / name, values)

    async def _leave_started(
        self,
        runtime_task: RuntimeTask,
        status: RuntimeTaskStatus,
        *,
        exit: ExitResult | None = None,
        error: BaseException | None = None,
        reason: str | None = None,
    ) -> None:
        sm = self._state_machine
        async with sm.lock:
            if runtime_task in sm.started:
                sm.started.remove(runtime_task)
            sm.slots.pop(runtime_task, None)
            self._mine.discard(runtime_task)
            await sm.finish_task(runtime_task, status, exit=exit, error=error, reason=reason)
        await self._after_finish(runtime_task)

    async def _drain(self) -> None:
        """Never leave a spawn or a kill half done, even when run() is cancelled."""
        while self._background:
            await asyncio.shield(asyncio.gather(*self._background, return_exceptions=True))
