"""One task's way through a spawner: check, spawn, poll, terminate, collect, mask, judge.

A `TaskLifecycle` is the one object that owns a running task's state (as Nomad keeps one
handle per task): its deadline, whether and why it was told to stop, and its exit once
collected. The worker drives many of them; the scheduler's driver (`SpawnkitSteps`) drives one
at a time. Both get the same checks, the same termination, the same masking of secrets and the
same verdict, because both go through here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from spawnkit.core.errors import RequirementError, StartError
from spawnkit.core.junitreports import REPORTS_FOLDER, read_reports
from spawnkit.core.masking import mask_file
from spawnkit.core.secrets import secret_env, secret_values
from spawnkit.core.services import ensure_services, services_ended
from spawnkit.core.spawner import Spawner
from spawnkit.core.task.outcome import ExitResult, Outcome, judge
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus

__all__ = ["TaskLifecycle", "check_requirements"]

LOG = logging.getLogger(__name__)


async def check_requirements(runtime_task: RuntimeTask, spawner: Spawner) -> None:
    """Triage: the task's secrets are set, the spawner can run it and its services are
    ready (else raises)."""
    secret_env(runtime_task.task)
    if await spawner.check_task_requirements(runtime_task) is False:
        raise RequirementError("the spawner says its requirements are not met",
                               spawner=spawner.name)
    await ensure_services(runtime_task, spawner)


class TaskLifecycle:
    """The life of one runtime task on one spawner. Each step happens at most once."""

    def __init__(
        self,
        runtime_task: RuntimeTask,
        spawner: Spawner,
        *,
        masked: Iterable[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime_task = runtime_task
        self.spawner = spawner
        #: Secret values to mask in the task's output: its own and any other the job holds.
        own = secret_values(runtime_task.task)
        self.masked = tuple(dict.fromkeys([*own, *masked]))
        self._clock = clock
        #: Why it was told to stop before its end (TIMEOUT, INTERRUPTED, FAILFAST), if it was.
        self.stopped: tuple[RuntimeTaskStatus, str] | None = None
        #: The reason to give should the stop find it never ran (still in a batch queue).
        self._not_run: str | None = None
        self._spawned = False
        self._stop_began: float | None = None
        self._termination: asyncio.Future[None] | None = None
        self._collection: asyncio.Future[ExitResult] | None = None

    @property
    def task_id(self) -> str:
        return self.runtime_task.identifier

    @property
    def spawned(self) -> bool:
        return self.runtime_task.spawner_handle is not None

    # -- check and spawn ---------------------------------------------------------------------

    async def check(self) -> None:
        await check_requirements(self.runtime_task, self.spawner)

    def set_deadline(self, default_timeout: float | None) -> None:
        timeout = self.runtime_task.task.timeout or default_timeout
        self.runtime_task.execution_timeout = None if timeout is None else self._clock() + timeout

    def adopted(self, started_wall: float, default_timeout: float | None) -> None:
        """A task an earlier runner of the job started (`spawnkit resume`): it counts as
        spawned, and its timeout counts from its original start (`started_wall`, epoch
        seconds: the earlier runner's monotonic clock may be another machine's, or from
        before a reboot)."""
        self._spawned = True
        self.runtime_task.spawned_at = started_wall
        timeout = self.runtime_task.task.timeout or default_timeout
        self.runtime_task.execution_timeout = None if timeout is None else (
            self._clock() + max(started_wall + timeout - time.time(), 0.0))

    async def spawn(self) -> None:
        """Start it (StartError, or any backend error, propagates; RequirementError when a
        service it needs has ended since its check)."""
        # Its check may be long past (it waited for its dependencies, or a slot): a service
        # that ended meanwhile is its users' reason, not something to start the task against.
        await ensure_services(self.runtime_task, self.spawner, again=True)
        self.runtime_task.spawned_at = time.time()
        if await self.spawner.spawn_task(self.runtime_task) is False:
            raise StartError("the spawner could not start it", spawner=self.spawner.name)
        self._spawned = True

    # -- monitor -----------------------------------------------------------------------------

    async def alive(self) -> bool:
        """What the spawner's last refresh saw."""
        return await self.spawner.is_task_alive(self.runtime_task)

    def past_deadline(self, now: float | None = None) -> bool:
        deadline = self.runtime_task.execution_timeout
        return deadline is not None and (self._clock() if now is None else now) >= deadline

    @property
    def watchable(self) -> bool:
        """Running, as far as we know, and nobody is stopping or collecting it."""
        return self._spawned and self._termination is None and self._collection is None

    # -- terminate ---------------------------------------------------------------------------

    def stop(self, status: RuntimeTaskStatus, reason: str, grace_period: float, *,
             not_run: str | None = None, began: float | None = None) -> bool:
        """Tell it to stop, once: TERM, grace, KILL, in the background. False when it was
        already told (the first reason stands) or never started. `not_run`: the reason
        should the backend find that its command never began (`ExitResult.never_ran`).
        `began`: epoch seconds an earlier runner began this stop (`spawnkit resume` carries
        it on): a task found ended ended of it, unless it is known to have ended before."""
        if self._termination is not None or self._collection is not None or not self.spawned:
            return False
        self.stopped, self._not_run, self._stop_began = (status, reason), not_run, began
        self._termination = asyncio.ensure_future(self._terminate(grace_period))
        return True

    def kill_now(self) -> None:
        """A second signal: whatever grace is left, KILL now."""
        if self.spawned and not (self._collection is not None and self._collection.done()):
            kill = asyncio.ensure_future(self.spawner.terminate_task(self.runtime_task, 0.0))
            kill.add_done_callback(_log_failure(self.task_id))

    async def _terminate(self, grace_period: float) -> None:
        try:
            await self.spawner.terminate_task(self.runtime_task, grace_period)
        except Exception as exc:
            # collect() then finds out what became of it (and ends it if it still runs).
            LOG.warning("terminating %s: %s", self.task_id, exc)

    async def terminated(self) -> None:
        if self._termination is not None:
            await asyncio.shield(self._termination)

    def timeout_reason(self, default_timeout: float | None) -> str:
        timeout = self.runtime_task.task.timeout or default_timeout
        return f"timed out after {timeout:g} s"

    # -- collect and judge -------------------------------------------------------------------

    async def collect(self) -> ExitResult:
        """The exit, read once (a second caller gets the same answer); output masked."""
        if self._collection is None:
            self._collection = asyncio.ensure_future(self._collect())
        return await asyncio.shield(self._collection)

    async def _collect(self) -> ExitResult:
        await self.terminated()
        try:
            exit = await self.spawner.collect_task(self.runtime_task)
        finally:
            # Even when the outcome cannot be read, what the task printed is masked.
            self.mask_output()
            self._read_reports()
        if self.stopped is not None and self._ended_first(exit):
            # The journal says it was being stopped: say why its own exit stands.
            self.runtime_task.notes.append(
                f"it had ended by itself when its stop ({self.stopped[1]}) came: judged by "
                "its own exit")
        if self.status_after(exit)[0] is RuntimeTaskStatus.FINISHED and not exit.successful:
            # A service it needs may have ended under it: its failure may well be that end.
            self.runtime_task.notes += await services_ended(self.runtime_task, self.spawner)
        return exit

    def _read_reports(self) -> None:
        """Count the test cases of the JUnit reports the backend kept, for results.json."""
        rt = self.runtime_task
        if not rt.task.junit or rt.output_dir is None:
            return
        reports = read_reports(rt.output_dir / REPORTS_FOLDER)
        rt.notes += reports.notes
        rt.tests = reports.counts if reports.cases else None

    def mask_output(self) -> None:
        """Its output (what it wrote into its kept reports and artifacts was masked as it
        was copied: core.copyout)."""
        out_dir = self.runtime_task.output_dir
        if not self.masked or out_dir is None:
            return
        for name in ("stdout", "stderr"):
            mask_file(out_dir / name, self.masked)

    def status_after(
        self, exit: ExitResult | None = None
    ) -> tuple[RuntimeTaskStatus, str | None]:
        """The status it finishes with: what stopped it (a timeout, an interrupt, failfast)
        wins over the exit it caused, whatever that was: a task that handled TERM and exited
        0 was still stopped. Not over an exit that came first: a task the stop found ended
        by itself (`exit.ended_before_stop`) finished, as if its end had been seen in time.
        One the backend timed out itself while no runner watched (`exit.timed_out`) is timed
        out, as the runner would have done."""
        if exit is not None and exit.timed_out and (self.stopped is None
                                                    or self._ended_first(exit)):
            return RuntimeTaskStatus.TIMEOUT, exit.timed_out
        if self.stopped is None or self._ended_first(exit):
            return RuntimeTaskStatus.FINISHED, None
        return self.stopped

    def _ended_first(self, exit: ExitResult | None) -> bool:
        if exit is None or not exit.ended_before_stop:
            return False
        began = self._stop_began
        # A second's margin: Kubernetes says when a container ended in whole seconds.
        return began is None or (exit.ended_at is not None and exit.ended_at + 1.0 < began)

    def judge(
        self, exit: ExitResult | None = None, error: BaseException | None = None
    ) -> tuple[RuntimeTaskStatus, Outcome]:
        status, reason = self.status_after(exit)
        if self.stopped is not None and exit is not None and exit.never_ran:
            # Spawned, but stopped before its command began (a job still in the queue).
            return status, judge(status, ran=False, reason=self._not_run or f"not run: {reason}")
        return status, judge(status, ran=self.spawned, exit=exit, error=error, reason=reason)


def _log_failure(task_id: str) -> Callable[[asyncio.Future[None]], None]:
    def done(future: asyncio.Future[None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            LOG.warning("killing %s: %s", task_id, future.exception())

    return done
