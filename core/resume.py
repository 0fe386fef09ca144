"""Taking over a job whose runner died (`spawnkit resume JOB_DIR`).

The journal says where each task stood when the runner went: finished (its verdict stands),
started (the backend re-attaches it: still running, or ended while no runner watched, and
collected once), between attempts of its retry policy, or not begun (it runs now). Nothing is
run twice: a task that may have started but that the backend cannot find ends as `lost`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spawnkit.core.errors import AdoptError, UsageError
from spawnkit.core.joblock import JobEnded, ended_unrecorded
from spawnkit.core.journal import JOURNAL_NAME, current_owner, read_journal
from spawnkit.core.results import FINAL_STATUSES
from spawnkit.core.spawner import Spawner
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import Cause, ExitResult, Outcome, TaskResult
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus
from spawnkit.core.task.statemachine import TaskStateMachine, Worker
from spawnkit.core.taskcodec import task_from_json

__all__ = ["Takeover", "TaskStanding", "read_takeover", "take_over"]


@dataclass
class TaskStanding:
    """Where a task stood when its runner went, from its entries in the journal."""

    final: dict[str, Any] | None = None
    #: Its last `started` (or `adopted`) entry with no end after it: it may still run.
    started: dict[str, Any] | None = None
    #: A `spawning` entry with no `started` after it: it may have begun, with no handle known.
    spawning: bool = False
    attempt: int = 1
    #: Its `terminating` entry after that start: a stop its runner began (and died within).
    stopping: dict[str, Any] | None = None

    @property
    def runs(self) -> bool:
        return self.final is None and (self.started is not None or self.spawning)


@dataclass
class Takeover:
    """A job to go on with: its header (tasks, spawner, settings), record and standings."""

    job_dir: Path
    header: dict[str, Any]
    entries: list[dict[str, Any]]
    tasks: list[Task]
    previous_owner: str
    standings: dict[str, TaskStanding] = field(default_factory=dict)

    @property
    def job_id(self) -> str:
        return str(self.header["job_id"])

    @property
    def spawner(self) -> str:
        return str(self.header.get("spawner") or "process")

    @property
    def settled(self) -> set[str]:
        """Ids of the tasks whose state the journal already holds (finished or started)."""
        return {t for t, s in self.standings.items() if s.final is not None or s.runs}


def read_takeover(job_dir: Path) -> Takeover:
    """The job of `job_dir`, to take over. UsageError (one line) when there is no such job,
    it already ended, or its journal cannot be read."""
    path = job_dir / JOURNAL_NAME
    if ended_unrecorded(job_dir):
        # Its journal has no end, but its runner did not die: a task it saw end would run
        # again (Nothing runs twice).
        raise JobEnded(job_dir)
    try:
        header, entries, end = read_journal(path)
        takeover = _takeover(job_dir, header, entries)
    except FileNotFoundError:
        raise UsageError(f"{job_dir}: not a job folder (no {JOURNAL_NAME})") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        # A journal written by hand, or torn by a full disk: one line, never a traceback.
        raise UsageError(f"{job_dir}: the journal cannot be read: {exc!r}") from None
    if end is not None:
        raise UsageError(f"{job_dir}: the job ended; there is nothing to resume")
    return takeover


def _takeover(job_dir: Path, header: dict[str, Any], entries: list[dict[str, Any]]) -> Takeover:
    tasks = [task_from_json(t) for t in header["tasks"]]
    for key in ("settings", "options"):
        if not isinstance(header.get(key) or {}, dict):
            raise ValueError(f"the job's {key} are not a table")
    takeover = Takeover(job_dir, header, entries, tasks, current_owner(header))
    for task in tasks:
        takeover.standings[task.id] = TaskStanding()
    for entry in entries:
        standing = takeover.standings.get(str(entry["task"]))
        if standing is not None:
            _follow(standing, entry)
    return takeover


def _follow(standing: TaskStanding, entry: dict[str, Any]) -> None:
    status = entry["status"]
    if status in FINAL_STATUSES:
        standing.final = entry
    elif status == "started":
        standing.started, standing.spawning, standing.stopping = entry, False, None
    elif status == "terminating":
        standing.stopping = entry
    elif status == "adopted":
        # Taken over before: its handle is the adopter's word, its start the original one
        # (the timeout counts from it).
        before = standing.started or entry
        standing.started = {**before, "handle": entry.get("handle"),
                            "spawning_result": entry.get("spawning_result")}
        standing.spawning = False
    elif status == "spawning":
        standing.spawning, standing.started = True, None
    elif status == "retrying":
        standing.attempt = int(entry.get("attempt") or standing.attempt) + 1
        standing.started, standing.spawning, standing.stopping = None, False, None


def _restored_outcome(final: dict[str, Any]) -> tuple[RuntimeTaskStatus, Outcome]:
    try:
        status = RuntimeTaskStatus[str(final["status"]).upper()]
    except KeyError:
        status = RuntimeTaskStatus.FINISHED
    exit = None
    if "exit_code" in final or final.get("signal") is not None:
        exit = ExitResult(exit_code=final.get("exit_code"), signal=final.get("signal"),
                          oom=bool(final.get("oom")))
    try:
        cause = Cause(str(final.get("cause")))
    except ValueError:
        cause = Cause.ENGINE
    return status, Outcome(TaskResult(final.get("result", "error")), cause,
                           final.get("reason"), exit)


def _stop_begun(entry: dict[str, Any] | None) -> tuple[RuntimeTaskStatus, str, float] | None:
    """The status, reason and time (epoch seconds) of the stop a `terminating` entry records
    (an interrupt, a timeout, failfast): what the task ends with, as the runner that began it
    would have said."""
    if entry is None:
        return None
    try:
        status = RuntimeTaskStatus[str(entry.get("why")).upper()]
    except KeyError:
        status = RuntimeTaskStatus.INTERRUPTED
    return status, str(entry.get("reason") or status.word), float(entry.get("time") or 0.0)


async def take_over(takeover: Takeover, runtime_tasks: list[RuntimeTask],
                    state_machine: TaskStateMachine, worker: Worker, spawner: Spawner) -> None:
    """Put every task where the journal left it: finished ones stay finished, started ones are
    re-attached by the backend (all at once) and watched, or end as lost when it cannot."""
    adopting: list[tuple[RuntimeTask, TaskStanding]] = []
    for rt in runtime_tasks:
        standing = takeover.standings[rt.identifier]
        rt.attempt = standing.attempt
        if standing.final is not None:
            state_machine.restore_finished(rt, *_restored_outcome(standing.final))
        elif standing.runs:
            started = standing.started or {}
            rt.spawner_handle = started.get("handle")
            rt.spawning_result = started.get("spawning_result")
            adopting.append((rt, standing))
    answers = await asyncio.gather(*(spawner.adopt_task(rt) for rt, _ in adopting),
                                   return_exceptions=True)
    for (rt, standing), answer in zip(adopting, answers, strict=True):
        if isinstance(answer, AdoptError) and answer.never_ran:
            rt.spawner_handle = rt.spawning_result = None  # stays requested: it runs now
        elif isinstance(answer, BaseException):
            why = (f"the runner stopped while it ran and the {spawner.name} backend cannot "
                   f"take it over: {answer}")
            await state_machine.finish_task(rt, RuntimeTaskStatus.INTERRUPTED,
                                            outcome=Outcome(TaskResult.LOST, Cause.LOST, why))
        else:
            # A start unknown (the runner died while spawning): its timeout counts from now.
            began = (standing.started or {}).get("time", time.time())
            if isinstance(answer, float):  # it waited in a queue: it runs since then
                began = max(float(began), answer)
            worker.adopt(rt, float(began), _stop_begun(standing.stopping))
