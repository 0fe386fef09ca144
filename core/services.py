"""A job's services (`[[service]]`): started before the first task that needs one, ready once
their readiness command exits 0, stopped after the last task that needs them.

The `ServiceManager` belongs to the Job and drives the spawner's service hooks
(`Spawner.start_service`, `service_alive`, `service_ready`, `stop_service`, `close_services`):

- A task's requirement check (core.task.lifecycle) waits for its services (`ensure`); tasks
  checked at the same time share one start. A service that cannot start, ends before it is
  ready, or is not ready within its `ready_timeout` (counted from its start) fails the
  check of every task that needs it: `error` (cause: requirement), the reason naming the
  service and its output's last lines. It is then stopped at once: nothing can use it. A
  task's services are looked at again as it starts (`ensure(again=True)`): one that ended
  on its own while the task waited for its dependencies or a slot is its reason too.
- Once every task that names a service has finished (passed, failed, skipped, not run: the
  status record says so, `task_finished`), it is stopped with the job's grace period.
- At the end of the job (`close`, shielded by the Job) everything still running is stopped,
  within the grace period and `CLOSE_MARGIN` more; a first signal starts that at once
  (`stop_all`), a second one takes the grace away (`kill_now`). What could not be stopped in
  time is left to `spawnkit gc`, which finds it by its labels or its supervisor.

Each service's output is in `<job folder>/services/<id>/stdout` and `stderr`.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from spawnkit.core.errors import BackendError, RequirementError
from spawnkit.core.output import last_lines
from spawnkit.core.paths import safe_name
from spawnkit.core.spawner import Spawner
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import ExitResult, describe_exit
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus
from spawnkit.core.task.service import Service, host_variable
from spawnkit.core.task.statusrepo import StatusEntry, StatusRepo

__all__ = ["CLOSE_MARGIN", "KILL_MARGIN", "TAIL_LINES", "ServiceManager", "ensure_services",
           "service_secret_names", "service_secret_values", "services_ended",
           "with_service_hosts"]

LOG = logging.getLogger(__name__)

#: Seconds past the grace period that the end of a job waits for its services to stop.
CLOSE_MARGIN = 5.0
#: Seconds a second signal still waits for services being killed.
KILL_MARGIN = 1.5
#: Lines of a failed service's output that go into its tasks' reason.
TAIL_LINES = 3

_FINAL = frozenset(s.word for s in RuntimeTaskStatus.finished_statuses())


def with_service_hosts(task: Task, spawner: Spawner) -> Task:
    """The task with `SPAWNKIT_SERVICE_<ID>_HOST` for each of its services, as this backend
    reaches them (the id on a container network, 127.0.0.1 on the process backend)."""
    if not task.services:
        return task
    hosts = {host_variable(s.id): spawner.service_host(s.id) for s in task.services}
    return replace(task, env=tuple(sorted({**dict(task.env), **hosts}.items())))


def service_secret_names(tasks: Iterable[Task]) -> set[str]:
    """The secrets the tasks' services declare: no task sees one it does not declare."""
    return {name for task in tasks for service in task.services for name in service.secrets}


def service_secret_values(tasks: Iterable[Task]) -> list[str]:
    """Their values: masked in every output of the job, as tasks' secrets are."""
    return [v for task in tasks for service in task.services for v in service.secret_values()]


async def ensure_services(runtime_task: RuntimeTask, spawner: Spawner, *,
                          again: bool = False) -> None:
    """Triage: the task's services run and are ready (else RequirementError naming one).
    `again`, as it starts: none of them ended on its own since (a stop of ours is left to
    end the task as it ends the others)."""
    if not runtime_task.task.services:
        return
    if spawner.services is None:
        raise RequirementError("services ([[service]]) run only as part of a job "
                               "(spawnkit run)", spawner=spawner.name)
    await spawner.services.ensure(runtime_task.task, again=again)


async def services_ended(runtime_task: RuntimeTask, spawner: Spawner) -> list[str]:
    """After a task failed: a note for each of its services that ended while it ran (a
    running task is left to run when a service ends; this says what it may have met)."""
    if not runtime_task.task.services or spawner.services is None:
        return []
    try:
        return await spawner.services.ended_under(runtime_task.task)
    except Exception as exc:  # a note, never a reason for the task's outcome to be lost
        LOG.warning("services of %s: %s", runtime_task.identifier, _words(exc))
        return []


@dataclass(eq=False)
class _State:
    """One service through the job: who still needs it, and where its start and stop are."""

    service: Service
    out_dir: Path
    #: Ids of the tasks that name it and have not finished.
    users: set[str] = field(default_factory=set)
    #: Started and ready: its handle; else a RequirementError.
    start: asyncio.Future[str] | None = None
    #: The backend's start alone (never cancelled: a start cut short may leave it running).
    launch: asyncio.Future[str] | None = None
    stop: asyncio.Future[ExitResult | None] | None = None
    handle: str | None = None
    #: Why it cannot serve (it never became ready, or it ended): every user's reason.
    failure: asyncio.Future[str] | None = None
    #: Ids of the tasks it was found ready for.
    served: set[str] = field(default_factory=set)


class ServiceManager:
    """The services of one job on one spawner."""

    def __init__(self, spawner: Spawner, job_dir: Path, tasks: Sequence[Task], *,
                 grace_period: float) -> None:
        self._spawner = spawner
        self._job_dir = job_dir
        self._grace = grace_period
        self._states: dict[str, _State] = {}
        for task in tasks:
            for service in task.services:
                state = self._states.get(service.id)
                if state is None:
                    folder = job_dir / "services" / safe_name(service.id)
                    state = self._states[service.id] = _State(service, folder)
                state.users.add(task.id)
        self._closing = False
        #: Loop time by which the stops must be over (set by a signal).
        self._deadline = math.inf

    @classmethod
    def for_job(cls, spawner: Spawner, job_dir: Path, tasks: Sequence[Task],
                status_repo: StatusRepo, grace_period: float) -> ServiceManager:
        """The job's manager: the spawner's requirement checks wait on it, and it hears of
        every task that finishes."""
        manager = cls(spawner, job_dir, tasks, grace_period=grace_period)
        spawner.services = manager
        status_repo.add_listener(manager.task_finished)
        return manager

    # -- starting ----------------------------------------------------------------------------

    async def ensure(self, task: Task, *, again: bool = False) -> None:
        """Every service of the task is running and ready; RequirementError if one is not."""
        await asyncio.gather(*(self._ready(self._states[s.id], task.id, again)
                               for s in task.services))

    async def _ready(self, state: _State, task_id: str, again: bool) -> None:
        sid = state.service.id
        if state.failure is not None:  # its users' reason (its stop follows from it)
            raise RequirementError(await asyncio.shield(state.failure),
                                   spawner=self._spawner.name)
        if self._closing or state.stop is not None:
            if again:
                return  # as it starts: a stop of ours ends it as it ends the others
            raise RequirementError(f"service '{sid}': not started, the job is stopping",
                                   spawner=self._spawner.name)
        if state.start is None:
            state.start = asyncio.ensure_future(self._start(state))
        try:
            handle = await asyncio.shield(state.start)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if state.start.cancelled() and (current is None or not current.cancelling()):
                # Its start was called off (the job is stopping), not this check.
                raise RequirementError(f"service '{sid}': not started, the job is stopping",
                                       spawner=self._spawner.name) from None
            raise
        # Ready for an earlier task: it may have ended since (a task checked meanwhile may
        # have found that out already: the same reason then).
        if state.failure is None and state.stop is None and not await self._alive(state,
                                                                                  handle):
            await self._ended_on_its_own(state)
        if state.failure is not None:
            raise RequirementError(await asyncio.shield(state.failure),
                                   spawner=self._spawner.name)
        if state.stop is not None and not again:
            raise RequirementError(f"service '{sid}': stopped, the job is stopping",
                                   spawner=self._spawner.name)
        state.served.add(task_id)

    async def _start(self, state: _State) -> str:
        service, loop = state.service, asyncio.get_running_loop()
        service.environment()  # a secret the runner lacks: said as such, before anything
        state.out_dir.mkdir(parents=True, exist_ok=True)
        LOG.info("service %s: starting", service.id)
        state.launch = asyncio.ensure_future(self._spawner.start_service(service, state.out_dir))
        try:
            handle = await asyncio.shield(state.launch)
        except NotImplementedError:
            raise RequirementError(f"service '{service.id}': the {self._spawner.name} backend "
                                   "runs no services", spawner=self._spawner.name) from None
        except Exception as exc:
            raise RequirementError(f"service '{service.id}' could not start: {_words(exc)}"
                                   f"{self._tail(state, quiet=True)}",
                                   spawner=self._spawner.name) from exc
        state.handle = handle
        # From its start: an image pull before it is no part of its time to get ready.
        began = loop.time()
        argv, deadline = service.ready_argv, began + service.ready_timeout
        said = ""  # the last fault of a try, said once
        while True:
            if not await self._alive(state, handle):
                why = "ended before it was ready"
                raise RequirementError(await asyncio.shield(self._failed(state, why, True)),
                                       spawner=self._spawner.name)
            if argv is None:
                break
            remaining = deadline - loop.time()
            if remaining <= 0:
                why = (f"did not become ready within {service.ready_timeout:g} s "
                       f"(ready: {service.ready_words})")
                # Shielded: every user's reason, whatever becomes of this start.
                raise RequirementError(await asyncio.shield(self._failed(state, why, False)),
                                       spawner=self._spawner.name)
            try:
                async with asyncio.timeout(remaining):
                    if await self._spawner.service_ready(handle, service):
                        break
            except TimeoutError:
                continue  # the deadline: said above
            except Exception as exc:
                # A try that could not run counts as not ready; the deadline still holds.
                if _words(exc) != said:
                    said = _words(exc)
                    LOG.info("service %s: readiness: %s", service.id, said)
            await asyncio.sleep(max(min(service.ready_interval, deadline - loop.time()), 0.0))
        LOG.info("service %s: ready after %.2f s", service.id, loop.time() - began)
        return handle

    async def ended_under(self, task: Task) -> list[str]:
        """For each service of the task that ended on its own since it was ready for it, the
        reason its users are given (it is then stopped, as when a later task finds it out)."""
        notes = []
        for service in task.services:
            state = self._states.get(service.id)
            if state is None or state.handle is None or task.id not in state.served:
                continue  # not this start's user (a task adopted from an earlier runner)
            if state.failure is None and (state.stop is not None or await self._alive(
                    state, state.handle) or not await self._ended_on_its_own(state)):
                continue  # stopped by us (the job stops), or still serving
            assert state.failure is not None
            notes.append(await asyncio.shield(state.failure))
        return notes

    async def _ended_on_its_own(self, state: _State) -> bool:
        """Found not running: its users' reason, unless a stop of ours came meanwhile."""
        if state.failure is None and (state.stop is not None or self._closing):
            return False
        await self._failed(state, "ended after it was ready", True)
        return True

    async def _alive(self, state: _State, handle: str) -> bool:
        try:
            return await self._spawner.service_alive(handle)
        except Exception as exc:
            raise RequirementError(f"service '{state.service.id}': cannot tell whether it runs: "
                                   f"{_words(exc)}", spawner=self._spawner.name) from exc

    def _failed(self, state: _State, why: str, ended: bool) -> asyncio.Future[str]:
        """The reason of every task that needs it, once: it is stopped at once (nothing can
        use it), then its last lines are read (`ended`: it was found ended on its own)."""
        if state.failure is None:
            state.failure = asyncio.ensure_future(self._failure(state, why, ended))
        return state.failure

    async def _failure(self, state: _State, why: str, ended: bool) -> str:
        exit: ExitResult | None = None
        try:
            # Not cancelling its start, which waits for this reason.
            exit = await asyncio.shield(self._stop_soon(state, 0.0, failed=True, ended=ended))
        except Exception as exc:
            LOG.warning("service %s: stopping it: %s", state.service.id, _words(exc))
        how = None
        if exit is not None and ended:  # how it ended is its own, not our stop's
            how = describe_exit(exit) or f"exit code {exit.exit_code}"
        text = f"service '{state.service.id}' {why}" + (f" ({how})" if how else "")
        return text + self._tail(state)

    def _tail(self, state: _State, *, quiet: bool = False) -> str:
        """`; its last lines (services/ID/stderr): a | b | c`, from stderr, else stdout (with
        `quiet`, nothing when it printed nothing)."""
        for name in ("stderr", "stdout"):
            lines = last_lines(state.out_dir / name, TAIL_LINES)
            if lines:
                where = state.out_dir.relative_to(self._job_dir) / name
                return f"; its last lines ({where}): " + " | ".join(lines)
        return "" if quiet else "; it printed nothing"

    # -- stopping ----------------------------------------------------------------------------

    def task_finished(self, entry: StatusEntry) -> None:
        """A status listener: the last task that needs a service has finished, stop it."""
        if entry.status not in _FINAL:
            return
        for state in self._states.values():
            if entry.task_id in state.users:
                state.users.discard(entry.task_id)
                if not state.users and state.start is not None:
                    self._stop_soon(state, self._grace)

    def _stop_soon(self, state: _State, grace: float, *, failed: bool = False,
                   ended: bool = False) -> asyncio.Future[ExitResult | None]:
        """Its stop, once (`ended`: it was found ended on its own, and is said so)."""
        if state.stop is None:
            start = state.start
            if start is not None and not start.done() and not failed:
                start.cancel()  # its readiness tries: nobody waits for them now
            state.stop = asyncio.ensure_future(self._stop(state, grace, ended))
        return state.stop

    async def _stop(self, state: _State, grace: float, ended: bool) -> ExitResult | None:
        if state.launch is None:
            return None  # its start never began
        try:
            handle = await asyncio.shield(state.launch)
        except Exception:
            return None  # it never started: said by its start
        # A second signal meanwhile took the grace away.
        exit = await self._spawner.stop_service(handle, min(grace, self._grace))
        LOG.info("service %s: %s%s", state.service.id, "ended" if ended else "stopped",
                 f" ({describe_exit(exit) or 'exit code 0'})" if exit is not None else "")
        return exit

    def stop_all(self) -> None:
        """A stop (a signal): stop every service now, along with the tasks, so the job ends
        within its grace period and a little more."""
        loop = asyncio.get_running_loop()
        self._deadline = min(self._deadline, loop.time() + self._grace + KILL_MARGIN)
        self._closing = True
        for state in self._states.values():
            if state.start is not None:
                self._stop_soon(state, self._grace)

    def kill_now(self) -> None:
        """A second signal: no more grace for services still stopping."""
        loop = asyncio.get_running_loop()
        self._grace = 0.0
        self._deadline = min(self._deadline, loop.time() + KILL_MARGIN)
        for state in self._states.values():
            if state.handle is not None and state.stop is not None and not state.stop.done():
                kill = asyncio.ensure_future(self._spawner.stop_service(state.handle, 0.0))
                kill.add_done_callback(_log_failure(state.service.id))

    async def close(self) -> None:
        """The job's end: stop every service still running, then what they shared; bounded
        (the Job shields it: a cancel does not cut it short)."""
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = min(self._deadline, loop.time() + self._grace + CLOSE_MARGIN)
        stops = {self._stop_soon(state, self._grace): sid
                 for sid, state in self._states.items() if state.start is not None}
        if not stops:
            return
        _done, pending = await asyncio.wait(stops, timeout=max(deadline - loop.time(), 0.0))
        for stop in pending:
            LOG.warning("service %s: not stopped in time: left to 'spawnkit gc'", stops[stop])
        for stop in _done:
            if not stop.cancelled() and stop.exception() is not None:
                LOG.warning("service %s: stopping it: %s", stops[stop],
                            _words(stop.exception()))
        try:
            async with asyncio.timeout(max(deadline - loop.time(), KILL_MARGIN)):
                await self._spawner.close_services()
        except Exception as exc:
            LOG.warning("%s: releasing the services' resources: %s", self._spawner.name,
                        _words(exc))


def _words(exc: BaseException | None) -> str:
    if isinstance(exc, BackendError):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return f"{type(exc).__name__}: {exc}"


def _log_failure(service_id: str) -> Callable[[asyncio.Future[ExitResult | None]], None]:
    def done(future: asyncio.Future[ExitResult | None]) -> None:
        if not future.cancelled() and future.exception() is not None:
            LOG.warning("service %s: killing it: %s", service_id, _words(future.exception()))

    return done

