"""The Worker: pushes tasks through the state machine with one spawner.

Its four phases (bootstrap, triage, start, monitor) each make one move; `run()` repeats them until
the machine is complete. What may wait on an engine (a check, a spawn, a termination, a collection)
is a background move in the worker's `asyncio.TaskGroup`: a slow call stalls no other task and
nothing outlives `run()`. Between moves it sleeps until an exit, a poll or a deadline is due."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from spawnkit.core.spawner import Spawner
from spawnkit.core.task.lifecycle import TaskLifecycle, check_requirements
from spawnkit.core.task.moves import Moves
from spawnkit.core.task.outcome import ExitResult, Outcome, judge
from spawnkit.core.task.retry import attempt_entry, keep_attempt, retries
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus
from spawnkit.core.task.statemachine import TaskStateMachine
from spawnkit.core.task.stop import DEFAULT_GRACE_PERIOD, StopPolicy

__all__ = ["STOP_MARGIN", "Worker"]

LOG = logging.getLogger(__name__)

#: Seconds past a stop's grace that a move waiting on an engine is still waited for.
STOP_MARGIN = 1.5


class Worker:
    """Moves the tasks of a state machine through one spawner (Avocado's Worker)."""

    def __init__(
        self,
        state_machine: TaskStateMachine,
        spawner: Spawner,
        max_triaging: int | None = None,
        max_running: int | None = None,
        task_timeout: float | None = None,
        failfast: bool = False,
        *,
        grace_period: float = DEFAULT_GRACE_PERIOD,
        masked: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state_machine = state_machine
        self._spawner = spawner
        self._max_triaging = max_triaging
        self._max_running = max_running
        self._task_timeout = task_timeout
        self._failfast = failfast
        self._grace_period = grace_period
        self._masked = tuple(masked)
        self._clock = clock
        #: Life cycles this worker started and has not finished: it polls only these.
        self._mine: dict[str, TaskLifecycle] = {}
        self._applied: StopPolicy | None = None  # the stop this worker last carried out
        #: Once a stop is carried out: the loop time past which moves still waiting on an
        #: engine are abandoned (its grace, and STOP_MARGIN more).
        self._stop_deadline: float | None = None
        self._wake = asyncio.Event()
        self._moves = Moves(self._wake.set)
        self._poll_due, self._last_poll = True, float("-inf")
        spawner.add_waker(self._exit_seen)
        state_machine.add_waker(self._wake.set)

    def __repr__(self) -> str:
        return (f"<Worker spawner={self._spawner.name!r} max_triaging={self._max_triaging} "
                f"max_running={self._max_running} task_timeout={self._task_timeout}>")

    # -- the four phases ---------------------------------------------------------------------

    async def bootstrap(self) -> bool:
        """Reads from requested, moves into triaging."""
        sm = self._state_machine
        async with sm.lock:
            return sm.take_requested(self._max_triaging) is not None

    async def triage(self) -> bool:
        """Reads from triaging, moves into either: ready or finished. The requirement check
        runs in the background (an image pull may take minutes), the task in `triaging` (a
        stop reaches it), triaged again once it passed. One whose dependencies have not all
        finished is parked, at no cost, until one does."""
        sm = self._state_machine
        async with sm.lock:
            runtime_task = sm.take_to_triage()
            if runtime_task is None:
                return False
            check = not sm.is_checked(runtime_task)
            if check:
                sm.checking(runtime_task)
            else:
                failed = self._dependency_step(runtime_task)
        if check:
            await self._moves.settle(self._moves.start(runtime_task.identifier,
                                                       self._check(runtime_task)))
            if self._moves.bound or not sm.is_checked(runtime_task):
                return True  # outside run(), a check passed goes on at once, as the original
            async with sm.lock:
                if runtime_task not in sm.triaging:  # finished meanwhile (a stop)
                    return True
                failed = self._dependency_step(runtime_task)
        if failed is not None:
            await self._finish(runtime_task, RuntimeTaskStatus.FAIL_TRIAGE,
                               outcome=sm.skipped_for(failed))
        return True

    def _dependency_step(self, runtime_task: RuntimeTask) -> str | None:
        """Under `lock`: ready, or parked; the dependency that did not pass, if one did not."""
        sm = self._state_machine
        waiting_on, failed = sm.dependency_state(runtime_task)
        if failed is None and waiting_on is not None:
            sm.park(runtime_task, waiting_on)
        elif failed is None:
            sm.make_ready(runtime_task)
        return failed

    async def start(self) -> bool:
        """Reads from ready, moves into either: started or finished."""
        sm = self._state_machine
        async with sm.lock:
            taken = sm.take_ready(self._max_running)
            if taken is None:
                return False
            runtime_task, slot = taken
            lifecycle = TaskLifecycle(runtime_task, self._spawner, masked=self._masked,
                                      clock=self._clock)
            lifecycle.set_deadline(self._task_timeout)
            sm.lifecycles[runtime_task.identifier] = lifecycle
            self._mine[runtime_task.identifier] = lifecycle
        await self._moves.settle(self._moves.start(runtime_task.identifier,
                                                   self._spawn(lifecycle, slot)))
        return True

    def adopt(self, runtime_task: RuntimeTask, started_wall: float,
              stopping: tuple[RuntimeTaskStatus, str, float] | None = None) -> None:
        """A task an earlier runner of the job started, taken over (`spawnkit resume`) once
        the spawner re-attached it: watched, stopped and collected from now on like the rest;
        the stop that runner began (`stopping`: status, reason, when) is carried on."""
        sm = self._state_machine
        slot = sm.adopt(runtime_task)
        lifecycle = TaskLifecycle(runtime_task, self._spawner, masked=self._masked,
                                  clock=self._clock)
        lifecycle.adopted(started_wall, self._task_timeout)
        sm.lifecycles[runtime_task.identifier] = self._mine[runtime_task.identifier] = lifecycle
        sm.record(runtime_task, "adopted", handle=runtime_task.spawner_handle, slot=slot,
                  spawning_result=runtime_task.spawning_result, since=started_wall)
        if stopping is not None:
            status, reason, began = stopping
            self._stop(lifecycle, status, reason, self._grace_period, began=began)

    async def monitor(self) -> bool:
        """Reads from started, moves into finished: one poll for all of this worker's tasks;
        a task past its deadline is terminated, an ended one collected."""
        now = self._clock()
        if not self._mine:
            return False
        due = self._poll_due or now - self._last_poll >= self._spawner.poll_interval
        if not due and not any(lc.past_deadline(now) for lc in self._watched()):
            return False
        self._poll_due, self._last_poll = False, now
        watched = self._watched()
        if not watched:
            return False
        await self._spawner.refresh([lc.runtime_task for lc in watched])
        moved = False
        now = self._clock()
        for lifecycle in watched:
            if await lifecycle.alive():
                if self._spawner.is_task_queued(lifecycle.runtime_task):
                    lifecycle.set_deadline(self._task_timeout)  # counts from when it runs
                elif lifecycle.past_deadline(now):
                    reason = lifecycle.timeout_reason(self._task_timeout)
                    stop = self._stop(lifecycle, RuntimeTaskStatus.TIMEOUT, reason,
                                      self._grace_period)
                    moved = await self._moves.settle(stop) or moved
                continue
            moved = await self._moves.settle(self._moves.start(lifecycle.task_id,
                                                               self._collect(lifecycle)))
        return moved

    def _watched(self) -> list[TaskLifecycle]:
        """Running and not already being stopped or collected (here or by another worker,
        which may also have finished it)."""
        for key in [k for k, lc in self._mine.items() if lc.runtime_task.outcome is not None]:
            del self._mine[key]
        return [lc for lc in self._mine.values() if lc.watchable]

    # -- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Pushes Tasks forward and makes them do something with their lives."""
        sm = self._state_machine
        async with asyncio.TaskGroup() as group:
            self._moves.bind(group)
            cancelled = True
            try:
                while not sm.is_complete():
                    if sm.stop_policy is not None and sm.stop_policy is not self._applied:
                        await self._carry_out(sm.stop_policy)  # another worker's, maybe
                    if self._overdue():
                        await self._finish_abandoned(self._moves.abandon())
                    moved = await self.bootstrap()
                    moved = await self.triage() or moved
                    moved = await self.start() or moved
                    moved = await self.monitor() or moved
                    await (asyncio.sleep(0) if moved else self._sleep())
                cancelled = False
            finally:
                # Cancelled, or an error of ours: never leave a task running behind us. The
                # clean-up is shielded, so a second cancel cannot cut it short.
                await asyncio.shield(self._wind_down(cancelled))
                self._moves.bind(None)

    async def _sleep(self) -> None:
        """Until the spawner reports an exit, a move ends, a poll or a deadline is due."""
        self._wake.clear()
        waits = [self._spawner.poll_interval] if self._mine else []
        now, loop_now = self._clock(), asyncio.get_running_loop().time()
        waits += [max(lc.runtime_task.execution_timeout - now, 0.0) + 0.001
                  for lc in self._mine.values()
                  if lc.watchable and lc.runtime_task.execution_timeout is not None]
        if self._stop_deadline is not None:
            waits.append(max(self._stop_deadline - loop_now, 0.0) + 0.001)
        with contextlib.suppress(TimeoutError):  # the wake-up itself, not an error
            async with asyncio.timeout(min(waits, default=None)):
                await self._wake.wait()

    def _exit_seen(self) -> None:
        self._poll_due = True
        self._wake.set()

    async def _wind_down(self, cancelled: bool) -> None:
        sm = self._state_machine
        if cancelled and (self._mine or sm.requested or sm.triaging or sm.ready):
            await self.interrupt(RuntimeTaskStatus.INTERRUPTED, "the job was cancelled",
                                 spare_teardowns=False)
        await self._finish_abandoned(await self._moves.drain(lambda: self._stop_deadline))

    def _overdue(self) -> bool:
        deadline = self._stop_deadline
        return bool(self._moves) and deadline is not None and (
            asyncio.get_running_loop().time() >= deadline)

    async def _finish_abandoned(self, task_ids: list[str]) -> None:
        """Tasks whose move waited on an engine past the stop's deadline: finished now."""
        sm = self._state_machine
        policy = sm.stop_policy or StopPolicy(RuntimeTaskStatus.INTERRUPTED,
                                                "the job was cancelled")
        for task_id in task_ids:
            runtime_task = sm.get(task_id)
            if runtime_task is not None and runtime_task.outcome is None:
                await self._finish(runtime_task, policy.status, reason=policy.abandoned_reason(
                    runtime_task.spawner_handle is not None, self._spawner.name))

    # -- background moves --------------------------------------------------------------------

    async def _check(self, runtime_task: RuntimeTask) -> None:
        sm = self._state_machine
        try:
            await check_requirements(runtime_task, self._spawner)
        except Exception as exc:
            if runtime_task in sm.triaging:  # not aborted meanwhile
                await self._finish(runtime_task, RuntimeTaskStatus.FAIL_TRIAGE, error=exc)
            return
        async with sm.lock:
            sm.checked(runtime_task, again=self._moves.bound)

    async def _spawn(self, lifecycle: TaskLifecycle, slot: int) -> None:
        sm = self._state_machine
        runtime_task = lifecycle.runtime_task
        # Said before it may run: a runner killed meanwhile leaves a task that may have run
        # (lost), not one that surely did not (not run).
        sm.record(runtime_task, "spawning", slot=slot)
        try:
            await lifecycle.spawn()
        except Exception as exc:
            status = RuntimeTaskStatus.FAIL_START
            await self._attempt_ended(runtime_task, status, judge(
                status, ran=runtime_task.spawner_handle is not None, error=exc))
            return
        lifecycle.set_deadline(self._task_timeout)  # from when it runs, not from its creation
        runtime_task.status = RuntimeTaskStatus.STARTED
        sm.monitored.append(runtime_task)
        sm.record(runtime_task, "started", handle=runtime_task.spawner_handle, slot=slot,
                  spawner=self._spawner.name, spawning_result=runtime_task.spawning_result)
        policy = sm.stop_policy
        if policy is not None and policy.stops(runtime_task.task):
            # Stopped while the spawn was in flight: end it like the others.
            self._stop(lifecycle, policy.status, policy.stopped_reason, policy.grace_period,
                       policy.not_run_reason)

    async def _collect(self, lifecycle: TaskLifecycle) -> None:
        """Read the exit of an ended (or stopped) task and finish it, judged."""
        exit: ExitResult | None = None
        error: Exception | None = None
        try:
            exit = await lifecycle.collect()
        except Exception as exc:
            error = exc
        status, outcome = lifecycle.judge(exit, error)
        await self._attempt_ended(lifecycle.runtime_task, status, outcome)

    async def _attempt_ended(self, runtime_task: RuntimeTask, status: RuntimeTaskStatus,
                             outcome: Outcome) -> None:
        """Again, if its retry policy wants it (a start that failed too), else finished."""
        sm = self._state_machine
        if retries(runtime_task, outcome, stopping=sm.stop_policy is not None):
            async with sm.lock:
                entry = attempt_entry(runtime_task, outcome, keep_attempt(runtime_task))
                sm.record(runtime_task, "retrying", **entry)
                self._mine.pop(runtime_task.identifier, None)
                sm.requeue(runtime_task)
            return
        await self._finish(runtime_task, status, outcome=outcome)

    def _stop(self, lifecycle: TaskLifecycle, status: RuntimeTaskStatus, reason: str,
              grace: float, not_run: str | None = None, *,
              began: float | None = None) -> asyncio.Task[None] | None:
        """Terminate a running task in the background, then collect it (None: stopping)."""
        if not lifecycle.stop(status, reason, grace, not_run=not_run, began=began):
            return None
        self._state_machine.record(lifecycle.runtime_task, "terminating", why=status.word,
                                   reason=reason)
        return self._moves.start(lifecycle.task_id, self._collect(lifecycle))

    async def _finish(self, runtime_task: RuntimeTask, status: RuntimeTaskStatus, *,
                      outcome: Outcome | None = None, error: BaseException | None = None,
                      reason: str | None = None) -> None:
        sm = self._state_machine
        async with sm.lock:
            sm.finish(runtime_task, status, outcome=outcome, error=error, reason=reason)
            self._mine.pop(runtime_task.identifier, None)
        self._wake.set()
        policy = StopPolicy.failfast_after(runtime_task, self._grace_period)
        if self._failfast and sm.stop_policy is None and policy is not None:
            await self._carry_out(sm.request_stop(policy))

    # -- stopping ----------------------------------------------------------------------------

    async def interrupt(self, status: RuntimeTaskStatus = RuntimeTaskStatus.INTERRUPTED,
                        why: str | None = None, *, spare_teardowns: bool | None = None) -> None:
        """Finish everything not started and terminate everything running (failfast spares
        teardown tasks: a CI job must still stop the services it started)."""
        spare = status is RuntimeTaskStatus.FAILFAST if spare_teardowns is None else spare_teardowns
        policy = StopPolicy(status, why or "interrupted", spare_teardowns=spare,
                            grace_period=self._grace_period)
        await self._carry_out(self._state_machine.request_stop(policy))

    async def _carry_out(self, policy: StopPolicy, *, everyone: bool = False) -> None:
        """Abort what has not started and stop what runs, as the policy says: this worker's
        tasks (another worker carries the same policy out on its next turn), or `everyone`'s."""
        sm = self._state_machine
        self._applied = policy
        self._start_stop_clock(policy)
        async with sm.lock:
            sm.abort_unstarted(policy.status, reason=policy.not_run_reason, policy=policy)
        # Checks of tasks that will never run: nobody waits for them (a pull may never answer).
        self._moves.cancel({rt.identifier for rt in sm.finished if rt.spawner_handle is None})
        running = sm.lifecycles if everyone else self._mine
        for lifecycle in list(running.values()):
            if lifecycle.spawned and policy.stops(lifecycle.runtime_task.task):
                self._stop(lifecycle, policy.status, policy.stopped_reason,
                           policy.grace_period, policy.not_run_reason)
        self._wake.set()

    def _start_stop_clock(self, policy: StopPolicy) -> None:
        self._spawner.stopping()
        deadline = asyncio.get_running_loop().time() + policy.grace_period + STOP_MARGIN
        if self._stop_deadline is None or deadline < self._stop_deadline:
            self._stop_deadline = deadline

    def kill_now(self) -> None:
        """No more grace: kill every running task at once, wait on no engine (a 2nd interrupt)."""
        sm = self._state_machine
        if sm.stop_policy is not None:
            sm.stop_policy = sm.stop_policy.kill_now()
            self._start_stop_clock(sm.stop_policy)
        self._grace_period = 0.0
        for lifecycle in list(sm.lifecycles.values()):
            lifecycle.kill_now()
        self._wake.set()

    async def terminate_tasks_timeout(self) -> None:
        """Terminate all running tasks with a timeout (Avocado calls it on a fresh Worker
        once a job's timeout expires); what never started is not run."""
        await self._terminate_tasks(RuntimeTaskStatus.TIMEOUT, "the job's timeout expired")

    async def terminate_tasks_interrupted(self) -> None:  # as interrupted (by the user)
        await self._terminate_tasks(RuntimeTaskStatus.INTERRUPTED, "interrupted by the user")

    async def _terminate_tasks(self, status: RuntimeTaskStatus, why: str) -> None:
        # Whoever started them, stop and collect them here (a collection happens once).
        policy = StopPolicy(status, why, grace_period=self._grace_period)
        await self._carry_out(self._state_machine.request_stop(policy), everyone=True)
        await self._finish_abandoned(await self._moves.drain(lambda: self._stop_deadline))
