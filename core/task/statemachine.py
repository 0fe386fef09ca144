"""The task life cycle: the queues a task moves through, and the moves between them.

requested -> triaging -> ready -> started -> finished, as in Avocado's nrunner, whose names
(`requested`, `triaging`, `ready`, `started`, `monitored`, `finished`, `lock`, `cache_lock`,
`complete`, `task_size`, `tasks_by_id`, `add_new_task`, `abort`, `abort_queue`,
`finish_task`) keep their meaning. The state machine owns its moves: each is a method, O(1),
made under `lock` by whichever worker calls it, and recorded in the status repo. Several
workers may share one state machine; the stop in force (a `StopPolicy`) is shared too.

`Worker` (spawnkit.core.task.worker) is importable from here, as in the original.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from collections import deque
from collections.abc import Callable, Collection, Iterable
from typing import TYPE_CHECKING, Any

from spawnkit.core.results import finished_entry
from spawnkit.core.task.outcome import Cause, ExitResult, Outcome, TaskResult, judge
from spawnkit.core.task.queues import TaskQueue
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus, finishing_status
from spawnkit.core.task.statusrepo import StatusRepo
from spawnkit.core.task.stop import StopPolicy

if TYPE_CHECKING:
    from spawnkit.core.task.description import Task
    from spawnkit.core.task.lifecycle import TaskLifecycle

__all__ = ["TaskStateMachine", "Worker"]

LOG = logging.getLogger(__name__)

_ABORTABLE = ("requested", "triaging", "ready")


class TaskStateMachine:
    """Represents all phases that a task can go through its life."""

    def __init__(self, tasks: Iterable[RuntimeTask], status_repo: StatusRepo, *,
                 restored: Collection[str] = ()) -> None:
        self._requested = TaskQueue("requested", tasks)
        self._triaging = TaskQueue("triaging")
        self._ready = TaskQueue("ready")
        self._started = TaskQueue("started")
        self._monitored = TaskQueue("monitored")
        self._finished = TaskQueue("finished")
        self._lock = asyncio.Lock()
        self._cache_lock = asyncio.Lock()
        self._status_repo = status_repo
        self._by_id: dict[str, RuntimeTask] = {rt.identifier: rt for rt in self._requested}
        #: The stop in force, shared by every worker of this machine.
        self.stop_policy: StopPolicy | None = None
        # Triage bookkeeping: tasks of `triaging` that need a triage step now, whose
        # requirement check runs or passed, and those parked until a dependency finishes.
        self._to_triage: deque[RuntimeTask] = deque()
        self._checking: set[str] = set()
        self._checked: set[str] = set()
        self._waiting: dict[str, list[RuntimeTask]] = {}  # dependency id -> tasks parked on it
        self._n_waiting = 0
        # Slots: a number per running task, the lowest free first, across all workers.
        self._slots: dict[str, int] = {}
        self._free_slots: list[int] = []
        #: The life cycle of every started task, whichever worker started it: any worker
        #: (a fresh one calling terminate_tasks_timeout, say) can stop any task.
        self.lifecycles: dict[str, TaskLifecycle] = {}
        self._wakers: list[Callable[[], None]] = []
        for rt in self._requested:
            if rt.identifier not in restored:  # a taken-over job's own record has them
                self._record(rt, "requested")

    # -- the original's names ----------------------------------------------------------------

    @property
    def requested(self) -> TaskQueue:
        return self._requested

    @property
    def triaging(self) -> TaskQueue:
        return self._triaging

    @property
    def ready(self) -> TaskQueue:
        return self._ready

    @property
    def started(self) -> TaskQueue:
        return self._started

    @property
    def monitored(self) -> TaskQueue:
        """Started tasks a worker is watching right now (Avocado's name)."""
        return self._monitored

    @property
    def finished(self) -> TaskQueue:
        return self._finished

    @property
    def lock(self) -> asyncio.Lock:
        return self._lock

    @property
    def cache_lock(self) -> asyncio.Lock:
        return self._cache_lock

    @property
    def status_repo(self) -> StatusRepo:
        return self._status_repo

    @property
    def task_size(self) -> int:
        return len(self._by_id)

    @property
    def tasks_by_id(self) -> dict[str, Task]:
        """Task id -> task description (Avocado's name and shape)."""
        return {key: rt.task for key, rt in self._by_id.items()}

    @property
    def tasks(self) -> list[RuntimeTask]:
        """Every runtime task, in the order given."""
        return list(self._by_id.values())

    def get(self, task_id: str) -> RuntimeTask | None:
        return self._by_id.get(task_id)

    @property
    async def complete(self) -> bool:
        """True when nothing is left to do (awaited, as in the original), read under `lock`.
        It gives the event loop a turn: a loop of the caller's own over the four phases
        (`while not await sm.complete: ...`) lets the spawner's events and moves go on."""
        async with self._lock:
            pending = not self.is_complete()
        await asyncio.sleep(0)
        return not pending

    def is_complete(self) -> bool:
        """`complete`, without the lock or the turn (for code that holds the lock)."""
        return not (self._requested or self._triaging or self._ready or self._started)

    async def add_new_task(self, runtime_task: RuntimeTask) -> None:
        """Request one more task, ahead of those already requested (as the original)."""
        async with self._lock:
            self._by_id[runtime_task.identifier] = runtime_task
            self._requested.appendleft(runtime_task)
        self._record(runtime_task, "requested")
        self._wake()

    def add_waker(self, waker: Callable[[], None]) -> None:
        """Called whenever a task finishes, is added or a stop comes: every worker of the
        machine looks again (a task another worker finished may free what it waits for)."""
        self._wakers.append(waker)

    def _wake(self) -> None:
        for waker in self._wakers:
            waker()

    def record(self, runtime_task: RuntimeTask, status: str, **data: Any) -> None:
        """Record a status change of a task (the moves record themselves)."""
        self._record(runtime_task, status, **data)

    def _record(self, runtime_task: RuntimeTask, status: str, **data: Any) -> None:
        self._status_repo.record(runtime_task.identifier, status, **data)

    # -- finishing ---------------------------------------------------------------------------

    async def finish_task(
        self,
        runtime_task: RuntimeTask,
        status_reason: RuntimeTaskStatus | str | None = None,
        *,
        exit: ExitResult | None = None,
        error: BaseException | None = None,
        outcome: Outcome | None = None,
        reason: str | None = None,
    ) -> None:
        """Include a task in `finished`, once, judged; it leaves whatever queue held it.
        Takes `lock` (as the original): a caller that holds it calls `finish`."""
        async with self._lock:
            self.finish(runtime_task, status_reason, exit=exit, error=error, outcome=outcome,
                        reason=reason)

    def finish(
        self,
        runtime_task: RuntimeTask,
        status_reason: RuntimeTaskStatus | str | None = None,
        *,
        exit: ExitResult | None = None,
        error: BaseException | None = None,
        outcome: Outcome | None = None,
        reason: str | None = None,
    ) -> None:
        """`finish_task`, for a caller that holds `lock`."""
        if runtime_task in self._finished:
            return
        status, reason = finishing_status(status_reason, reason)
        if outcome is None:
            outcome = judge(status, ran=runtime_task.spawner_handle is not None, exit=exit,
                            error=error, reason=reason)
        for queue in (self._requested, self._triaging, self._ready, self._started,
                      self._monitored):
            queue.discard(runtime_task)
        key = runtime_task.identifier
        if key in self._slots:
            heapq.heappush(self._free_slots, self._slots.pop(key))
        self._checking.discard(key)
        self._checked.discard(key)
        self.lifecycles.pop(key, None)
        runtime_task.status = status
        runtime_task.outcome = outcome
        self._finished.append(runtime_task)
        self._record(runtime_task, status.word, **finished_entry(runtime_task, outcome))
        # What waited for this task takes its next triage step.
        for dependent in self._waiting.pop(key, ()):
            self._n_waiting -= 1
            if dependent in self._triaging:
                self._to_triage.append(dependent)
        self._wake()

    async def abort_queue(
        self, queue_name: str, status_reason: RuntimeTaskStatus | str | None = None, *,
        reason: str | None = None, policy: StopPolicy | None = None,
    ) -> None:
        """Abort all tasks inside a specific queue, finishing each with the reason, under
        `lock`. With a `policy`, only the tasks it stops: the others stay queued, in order.
        `finished` holds nothing to abort; `started` and `monitored` are refused (ValueError):
        a task finished there would run on unwatched (the original's orphans)."""
        async with self._lock:
            self._abort(queue_name, status_reason, reason, policy)

    async def abort(
        self, status_reason: RuntimeTaskStatus | str | None = None, *,
        reason: str | None = None, policy: StopPolicy | None = None,
    ) -> None:
        """Abort all non-started tasks (with a `policy`: those it stops), under `lock`."""
        async with self._lock:
            self.abort_unstarted(status_reason, reason=reason, policy=policy)

    def abort_unstarted(
        self, status_reason: RuntimeTaskStatus | str | None = None, *,
        reason: str | None = None, policy: StopPolicy | None = None,
    ) -> None:
        """`abort`, for a caller that holds `lock`."""
        for queue_name in _ABORTABLE:
            self._abort(queue_name, status_reason, reason, policy)

    def _abort(self, queue_name: str, status_reason: RuntimeTaskStatus | str | None,
               reason: str | None, policy: StopPolicy | None) -> None:
        if queue_name == "finished":
            return
        if queue_name in ("started", "monitored"):
            raise ValueError(f"{queue_name} tasks run: a Worker stops them "
                             "(terminate_tasks_interrupted), abort_queue does not")
        if queue_name not in _ABORTABLE:
            raise ValueError(f"no such queue: {queue_name}")
        queue: TaskQueue = getattr(self, queue_name)
        for runtime_task in queue:
            if policy is None or policy.stops(runtime_task.task):
                self.finish(runtime_task, status_reason, reason=reason)

    def request_stop(self, policy: StopPolicy) -> StopPolicy:
        """Put a stop in force (the first one's reason stands; a later one may tighten it)."""
        current = self.stop_policy
        self.stop_policy = policy if current is None else current.tightened(policy)
        self._wake()
        return self.stop_policy

    # -- the moves a worker makes, each O(1) -------------------------------------------------

    def take_requested(self, max_triaging: int | None) -> RuntimeTask | None:
        """requested -> triaging, while fewer than `max_triaging` are being triaged (tasks
        parked on a dependency do not count: they could fill every triage slot while what
        they wait for is still requested)."""
        active = len(self._triaging) - self._n_waiting
        if not self._requested or (max_triaging is not None and active >= max_triaging):
            return None
        runtime_task = self._requested.popleft()
        runtime_task.status = RuntimeTaskStatus.WAIT
        self._triaging.append(runtime_task)
        self._to_triage.append(runtime_task)
        self._record(runtime_task, "triaging")
        return runtime_task

    def take_to_triage(self) -> RuntimeTask | None:
        """The next task of `triaging` due for a triage step."""
        while self._to_triage:
            runtime_task = self._to_triage.popleft()
            if runtime_task in self._triaging:
                return runtime_task
        return None

    def is_checked(self, runtime_task: RuntimeTask) -> bool:
        return runtime_task.identifier in self._checked

    def checking(self, runtime_task: RuntimeTask) -> None:
        """Its requirement check runs (in the background); it stays in `triaging`."""
        self._checking.add(runtime_task.identifier)

    def checked(self, runtime_task: RuntimeTask, *, again: bool = True) -> bool:
        """Its check passed: due for its next triage step (`again`: queued for it; else the
        caller takes it now). False if it left triage since."""
        key = runtime_task.identifier
        self._checking.discard(key)
        if runtime_task not in self._triaging:
            return False
        self._checked.add(key)
        if again:
            self._to_triage.append(runtime_task)
        return True

    def park(self, runtime_task: RuntimeTask, dependency: str) -> None:
        """Wait in `triaging` until `dependency` finishes (recorded once, when it begins to
        wait: a wait on its next dependency is no change of status)."""
        if runtime_task.status is not RuntimeTaskStatus.WAIT_DEPENDENCIES:
            runtime_task.status = RuntimeTaskStatus.WAIT_DEPENDENCIES
            self._record(runtime_task, RuntimeTaskStatus.WAIT_DEPENDENCIES.word, on=dependency)
        self._waiting.setdefault(dependency, []).append(runtime_task)
        self._n_waiting += 1

    def make_ready(self, runtime_task: RuntimeTask) -> None:
        """triaging -> ready."""
        self._triaging.discard(runtime_task)
        runtime_task.status = RuntimeTaskStatus.WAIT
        self._ready.append(runtime_task)
        self._record(runtime_task, "ready")

    # -- a job taken over (`spawnkit resume`) -------------------------------------------------

    def restore_finished(self, runtime_task: RuntimeTask, status: RuntimeTaskStatus,
                         outcome: Outcome) -> None:
        """requested -> finished, as the journal says it ended (nothing is recorded again)."""
        self._requested.discard(runtime_task)
        runtime_task.status, runtime_task.outcome = status, outcome
        self._finished.append(runtime_task)

    def adopt(self, runtime_task: RuntimeTask) -> int:
        """requested -> started and monitored: a task an earlier runner started that still
        runs (or ended while no runner watched). Its slot number."""
        self._requested.discard(runtime_task)
        runtime_task.status = RuntimeTaskStatus.STARTED
        self._started.append(runtime_task)
        self._monitored.append(runtime_task)
        return self._take_slot(runtime_task)

    def _take_slot(self, runtime_task: RuntimeTask) -> int:
        free = self._free_slots
        slot = heapq.heappop(free) if free else len(self._slots)
        self._slots[runtime_task.identifier] = slot
        return slot

    def requeue(self, runtime_task: RuntimeTask) -> None:
        """started -> ready, at the front: an attempt ended and the task runs again."""
        for queue in (self._started, self._monitored):
            queue.discard(runtime_task)
        key = runtime_task.identifier
        if key in self._slots:
            heapq.heappush(self._free_slots, self._slots.pop(key))
        self.lifecycles.pop(key, None)
        runtime_task.next_attempt()
        runtime_task.status = RuntimeTaskStatus.WAIT
        self._ready.appendleft(runtime_task)
        self._wake()

    def take_ready(self, max_running: int | None) -> tuple[RuntimeTask, int] | None:
        """ready -> started (and its slot number), while fewer than `max_running` run."""
        if not self._ready or (max_running is not None and len(self._started) >= max_running):
            return None
        runtime_task = self._ready.popleft()
        self._started.append(runtime_task)
        return runtime_task, self._take_slot(runtime_task)

    def skipped_for(self, dependency: str) -> Outcome:
        """The outcome of a task not run because `dependency` did not pass."""
        dep = self._by_id.get(dependency)
        result = dep.result.value if dep and dep.result else "unknown"
        return Outcome(TaskResult.SKIPPED, Cause.DEPENDENCY,
                       f"dependency '{dependency}' did not pass ({result})")

    def dependency_state(self, runtime_task: RuntimeTask) -> tuple[str | None, str | None]:
        """(a dependency not finished yet, a dependency that did not pass), None when none.

        A teardown runs whatever its dependencies' results: it stops what they began.
        """
        for dep_id in runtime_task.dependencies:
            dep = self._by_id.get(dep_id)
            if dep is None:
                return None, dep_id
            if dep.result is None:
                return dep_id, None
            if not dep.result.ok and not runtime_task.task.teardown:
                return None, dep_id
        return None, None


from spawnkit.core.task.worker import Worker  # noqa: E402  (the original's import path)
