"""One job: a job folder, a state machine, a worker and a spawner, from start to results.

The steps of a run, in order: open the spawner (an engine that cannot be reached stops here,
before anything runs), reap what dead runners left, open the journal, run the worker, close
the spawner, and write the job's results: results.json, results.xml (JUnit) and timeline.html,
from the same record the journal holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spawnkit.core import runs
from spawnkit.core.errors import ResultsUnwritable, UsageError
from spawnkit.core.joblock import LOCK_NAME, JobLock
from spawnkit.core.journal import JOURNAL_NAME, Journal
from spawnkit.core.outputs import write_extra_outputs, write_job_outputs
from spawnkit.core.owner import runner_owner
from spawnkit.core.paths import new_job_id, safe_name
from spawnkit.core.results import JobResult, build_results
from spawnkit.core.resume import Takeover, read_takeover, take_over
from spawnkit.core.secrets import secret_values
from spawnkit.core.services import (
    ServiceManager,
    service_secret_names,
    service_secret_values,
    with_service_hosts,
)
from spawnkit.core.spawner import JobContext, Spawner
from spawnkit.core.task.description import Task
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus
from spawnkit.core.task.statemachine import TaskStateMachine, Worker
from spawnkit.core.task.statusrepo import StatusEntry, StatusRepo
from spawnkit.core.task.stop import DEFAULT_GRACE_PERIOD

__all__ = ["Job", "JobSettings", "make_job_dir", "new_job_id", "point_latest",
           "remove_unbegun_job_dir"]

LOG = logging.getLogger(__name__)


def make_job_dir(results_root: Path, job_id: str) -> Path:
    """`results_root/job_id/tasks/`. `latest` moves once the job has begun
    (`JobSettings.latest`): a run that cannot reach its engine leaves it where it was."""
    job_dir = results_root / job_id
    (job_dir / "tasks").mkdir(parents=True, exist_ok=False)
    return job_dir


def point_latest(link: Path, job_dir: Path) -> None:
    """`link` (a symbolic link, relative when it sits beside the job folder) to `job_dir`,
    replaced at once: a reader never finds it missing. A link that cannot be made is let be
    (a read-only results root still gets its results), and said: a CI step that reads
    `latest` would read an earlier job's."""
    target = job_dir.name if link.parent.absolute() == job_dir.parent else str(job_dir)
    tmp = link.parent / f".{link.name}-{job_dir.name}"
    try:
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        os.replace(tmp, link)  # a real folder named `latest` refuses it
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        what = ("it is a folder, not a link: remove it" if link.is_dir() and not link.is_symlink()
                else exc.strerror or str(exc))
        LOG.warning("%s does not point to this job (%s); its results are in %s", link, what,
                    job_dir)


def remove_unbegun_job_dir(job_dir: Path) -> bool:
    """Remove a job folder that holds nothing but what `make_job_dir` and the job's lock
    made: the run ended before its journal (an engine that cannot be reached, a namespace
    that does not exist). Anything else in it stays. True if it is gone."""
    try:
        if os.listdir(job_dir / "tasks") or not set(os.listdir(job_dir)) <= {"tasks", LOCK_NAME}:
            return False
        (job_dir / LOCK_NAME).unlink(missing_ok=True)
        (job_dir / "tasks").rmdir()
        job_dir.rmdir()
    except OSError:
        return False
    return True


def _unwritable_folder(job_dir: Path, exc: OSError) -> UsageError:
    """Nothing ran yet: one line, exit 2, as when the folder cannot be made at all."""
    return UsageError(f"cannot write in the job folder {job_dir}: {exc.strerror or exc}")


@dataclass
class JobSettings:
    max_running: int | None = None
    max_triaging: int | None = None
    task_timeout: float | None = None
    failfast: bool = False
    grace_period: float = DEFAULT_GRACE_PERIOD
    task_file: str | None = None
    #: Stop on SIGINT/SIGTERM (the command line); a second signal kills at once.
    handle_signals: bool = False
    #: Reap what dead runners left on this backend before starting (`--no-gc` turns it off).
    reap_orphans: bool = False
    #: Copies of results.json and results.xml where a CI system wants them.
    json_path: Path | None = None
    junit_path: Path | None = None
    #: A task that passed only on a later attempt fails the job (`--fail-on-flaky`).
    fail_on_flaky: bool = False
    #: A link pointed at the job folder once the spawner is open and the job begins (the
    #: command line's `<results>/latest`).
    latest: Path | None = None
    #: The runner's working folder (None: the one it has), where a task with no `cwd` runs
    #: on process and Slurm: a resume goes on in the same.
    workdir: str | None = None

    def recorded(self) -> dict[str, Any]:
        """What shapes the run, for the journal: `spawnkit resume` goes on with the same."""
        return {"max_running": self.max_running, "max_triaging": self.max_triaging,
                "task_timeout": self.task_timeout, "failfast": self.failfast,
                "grace_period": self.grace_period, "fail_on_flaky": self.fail_on_flaky,
                "task_file": self.task_file, "workdir": self.workdir or os.getcwd()}


@dataclass
class Job:
    """Runs tasks (in a valid order: dependencies first) with one spawner, and writes their
    results into its job folder."""

    tasks: Sequence[Task]
    spawner: Spawner
    job_dir: Path
    job_id: str
    settings: JobSettings = field(default_factory=JobSettings)
    listeners: list[Callable[[StatusEntry], None]] = field(default_factory=list)
    #: A job whose runner died, that this one goes on with (`spawnkit resume`).
    takeover: Takeover | None = None

    def __post_init__(self) -> None:
        # Absolute: a task's folder is handed to places with another working folder (a
        # cluster node, the task supervisor, a container mount).
        self.job_dir = self.job_dir.absolute()
        self.status_repo = StatusRepo()
        for listener in self.listeners:
            self.status_repo.add_listener(listener)
        # A task that uses services finds their host names in its environment.
        self.runtime_tasks = [RuntimeTask(with_service_hosts(t, self.spawner))
                              for t in self.tasks]
        self.services = ServiceManager.for_job(self.spawner, self.job_dir, self.tasks,
                                               self.status_repo, self.settings.grace_period)
        tasks_dir = self.job_dir / "tasks"
        for rt in self.runtime_tasks:
            rt.output_dir = tasks_dir / safe_name(rt.identifier)
        self.state_machine: TaskStateMachine | None = None
        self.worker: Worker | None = None
        self.start: float | None = None
        self.end: float | None = None
        self._began: float | None = None  # monotonic
        self._elapsed: float | None = None
        self._journal_complete = True  # False once it ended with lines a full disk refused
        #: The signal that stopped the job, if one did.
        self.stopped_by: int | None = None
        self.owner = runner_owner()
        self._pending: asyncio.Future[None] | None = None
        #: SIGINT's and SIGTERM's handlers before the run took them, put back after it.
        self._previous_handlers: dict[int, Any] = {}

    def context(self) -> JobContext:
        return JobContext(
            self.job_id, self.job_dir, self.owner,
            secret_names=frozenset({n for t in self.tasks for n in t.secrets}
                                   | service_secret_names(self.tasks)),
            masked=tuple(self.masked_values()),
            task_timeout=self.settings.task_timeout,
        )

    def masked_values(self) -> list[str]:
        """Every secret value of the job: masked in every task's output, since a task may
        print another's (read from the runner's environment, say)."""
        return list(dict.fromkeys([*(v for task in self.tasks for v in secret_values(task)),
                                   *service_secret_values(self.tasks)]))

    async def run(self) -> JobResult:
        """Open the spawner (EngineUnavailable propagates before any task starts), run, close,
        write the results."""
        lock = JobLock(self.job_dir)
        try:
            lock.acquire(self.owner)  # JobBusy: another runner has the job (a resume racing)
        except OSError as exc:
            raise _unwritable_folder(self.job_dir, exc) from None
        try:
            if self.takeover is not None:
                # Read again under the lock: a runner that ended (or a resume that got in)
                # since the first reading changed it.
                self.takeover = read_takeover(self.job_dir)
            return await self._run()
        finally:
            lock.release(recorded=self._journal_complete)

    async def _run(self) -> JobResult:
        s = self.settings
        await self.spawner.open(self.context())
        try:
            if s.reap_orphans:
                for line in await runs.reap_dead_runners(self.spawner):
                    LOG.warning("removed %s, left by a runner that died", line)
            try:
                journal = Journal(self.job_dir / JOURNAL_NAME)
            except OSError as exc:
                raise _unwritable_folder(self.job_dir, exc) from None
        except BaseException:
            await asyncio.shield(self.spawner.close())
            raise
        self.status_repo.add_listener(journal)
        runs.register(self.job_id, self.job_dir)
        self._install_signals()
        try:
            takeover = self.takeover
            if takeover is None:
                self.start, self._began = time.time(), time.monotonic()
                journal.begin(self.job_id, self.tasks, task_file=s.task_file,
                              spawner=self.spawner.name, owner=self.owner, start=self.start,
                              mono=self._began, settings=s.recorded(),
                              options=dataclasses.asdict(self.spawner.options))
                if s.latest is not None:  # once there is a journal: never a folder removed
                    point_latest(s.latest, self.job_dir)
            else:
                self.start, self._began = takeover.header.get("start"), takeover.header.get("mono")
                self.status_repo.restore(takeover.entries)
                journal.takeover(old_owner=takeover.previous_owner, new_owner=self.owner,
                                 time=time.time(), mono=time.monotonic())
            self.state_machine = TaskStateMachine(
                self.runtime_tasks, self.status_repo,
                restored=takeover.settled if takeover is not None else ())
            self.worker = Worker(
                self.state_machine,
                self.spawner,
                max_triaging=s.max_triaging,
                max_running=s.max_running,
                task_timeout=s.task_timeout,
                failfast=s.failfast,
                grace_period=s.grace_period,
                masked=self.masked_values(),
            )
            if takeover is not None:
                if self.spawner.runs_services:
                    await self.spawner.end_previous_services()
                await take_over(takeover, self.runtime_tasks, self.state_machine, self.worker,
                                self.spawner)
            await self.worker.run()
        finally:
            self.end, now = time.time(), time.monotonic()
            self._elapsed = now - self._began if self._began is not None else None
            try:
                try:
                    await asyncio.shield(self.services.close())  # bounded: grace and a margin
                    await asyncio.shield(self.spawner.close())
                    journal.end(time=self.end, mono=now, signal=self.stopped_by)
                finally:
                    # Even with no end (a close failed): whether all it saw is on disk
                    # decides whether a resume may take the job (JobLock.release).
                    journal.close()
                    self._journal_complete = journal.complete
                runs.forget(self.job_id)
                # Written whatever ended the run (a cancel, an error of ours): no result is
                # lost, nor to a signal meanwhile (still ours: it ends nothing here).
                result = self.results()
                try:
                    write_job_outputs(self.job_dir, result, journal_complete=journal.complete)
                except ResultsUnwritable as exc:
                    exc.result = result  # still shown, and the copies may have room
                    raise
                finally:
                    write_extra_outputs(self.job_dir, result, json_path=s.json_path,
                                        junit_path=s.junit_path)
            finally:
                self._remove_signals()
        return result

    async def interrupt(self, why: str = "the job was stopped") -> None:
        if self.worker is not None:
            await self.worker.interrupt(RuntimeTaskStatus.INTERRUPTED, why)

    def _install_signals(self) -> None:
        if not self.settings.handle_signals:
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[sig] = signal.getsignal(sig)
            loop.add_signal_handler(sig, self._on_signal, sig)

    def _remove_signals(self) -> None:
        """The handlers there were before the run (asyncio would leave the default action:
        the command's own handling of a late SIGTERM)."""
        loop = asyncio.get_running_loop()
        for sig, previous in self._previous_handlers.items():
            loop.remove_signal_handler(sig)
            with contextlib.suppress(TypeError, ValueError):  # None: not set from Python
                signal.signal(sig, previous)
        self._previous_handlers.clear()

    def _on_signal(self, sig: int) -> None:
        if self.worker is None:
            return
        name = signal.Signals(sig).name
        if self.stopped_by is None:
            self.stopped_by = sig
            # Said at once: the tasks' own lines come only once they have ended, a grace later.
            LOG.warning("%s received: stopping the job (running tasks get SIGTERM, then SIGKILL "
                        "after %g s; a second signal kills them at once)", name,
                        self.settings.grace_period)
            self._pending = asyncio.ensure_future(self.interrupt(f"{name} received"))
            self.services.stop_all()
        else:
            LOG.warning("%s received (a second signal): killing the running tasks now", name)
            self.worker.kill_now()
            self.services.kill_now()

    def results(self) -> JobResult:
        return build_results(
            self.job_id,
            self.tasks,
            (e.as_dict() for e in self.status_repo.entries),
            task_file=self.settings.task_file,
            spawner=self.spawner.name,
            start=self.start,
            end=self.end,
            elapsed=self._elapsed,
            fail_on_flaky=self.settings.fail_on_flaky,
        )
