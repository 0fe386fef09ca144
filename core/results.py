"""A job's results, made in one place from the status record (live, or a journal).

Records carry the typed verdict (`TaskResult`, `Cause`); only `as_dict()` turns them into the
words of results.json (core/results.schema.json).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from spawnkit.core.paths import safe_name, write_atomic
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import Cause, Outcome, TaskResult
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus

__all__ = [
    "FINAL_STATUSES",
    "SCHEMA_VERSION",
    "JobResult",
    "TaskRecord",
    "build_results",
    "final_entry",
    "finished_entry",
    "run_time",
    "write_json",
]

SCHEMA_VERSION = 1

#: The status words a finished task's last entry carries (finish_task records them).
FINAL_STATUSES = frozenset(s.word for s in RuntimeTaskStatus.finished_statuses())


@dataclass
class TaskRecord:
    id: str
    result: TaskResult
    status: str | None
    cause: Cause | None
    reason: str | None
    exit_code: int | None
    signal: int | None
    oom: bool
    start: float | None
    end: float | None
    duration: float | None
    spawner: str | None
    handle: str | None
    command: str
    depends_on: list[str]
    image: str | None
    limits: dict[str, Any]
    stdout: str
    stderr: str
    slot: int | None = None
    # What the backend applied, its defaults included; `limits` is only what the task asked.
    applied: dict[str, Any] | None = None
    #: Counts of the task's own JUnit reports (tests, failures, errors, skipped), if any.
    tests: dict[str, int] | None = None
    #: What a person should know of how it ran (a report that was not found, say).
    notes: list[str] = field(default_factory=list)
    #: The earlier attempts of a retried task, first first (this record is its last one's).
    attempts: list[dict[str, Any]] = field(default_factory=list)
    #: Taken over while it ran by a runner that resumed the job (`spawnkit resume`).
    adopted: bool = False
    #: A matrix expansion's values, axis by axis (`{"python": "3.11"}`); empty otherwise.
    matrix: dict[str, str] = field(default_factory=dict)

    @property
    def flaky(self) -> bool:
        """Passed, after an attempt that did not."""
        return self.result is TaskResult.PASSED and bool(self.attempts)

    def as_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["result"] = self.result.value
        out["cause"] = self.cause.value if self.cause is not None else None
        out["flaky"] = self.flaky
        return out


@dataclass
class JobResult:
    job_id: str
    task_file: str | None
    spawner: str | None
    start: float | None
    end: float | None
    tasks: list[TaskRecord] = field(default_factory=list)
    #: Seconds the job ran, on the monotonic clock; None when unknown.
    elapsed: float | None = None
    #: `--fail-on-flaky`: a task that passed only on a later attempt fails the job.
    fail_on_flaky: bool = False

    @property
    def counts(self) -> dict[str, int]:
        counts = {r.value: 0 for r in TaskResult}
        for t in self.tasks:
            counts[t.result.value] += 1
        return counts

    @property
    def passed(self) -> bool:
        """Every task passed: a job with none (a share left empty) too, as its exit is 0."""
        return all(
            t.result is TaskResult.PASSED and not (self.fail_on_flaky and t.flaky)
            for t in self.tasks)

    @property
    def flaky(self) -> list[str]:
        """The ids of the tasks that passed only on a later attempt."""
        return [t.id for t in self.tasks if t.flaky]

    @property
    def duration(self) -> float | None:
        if self.elapsed is not None:
            return round(max(self.elapsed, 0.0), 3)
        if self.start is None or self.end is None:
            return None
        return round(max(self.end - self.start, 0.0), 3)

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "job_id": self.job_id,
            "task_file": self.task_file,
            "spawner": self.spawner,
            "start": self.start,
            "end": self.end,
            "duration": self.duration,
            "passed": self.passed,
            "counts": self.counts,
            "flaky": self.flaky,
            "tasks": [t.as_dict() for t in self.tasks],
        }


def finished_entry(runtime_task: RuntimeTask, outcome: Outcome) -> dict[str, Any]:
    """The data of a finished task's status entry (TaskStateMachine.finish records it;
    `build_results` reads it back), and of an attempt's end (core.task.retry): its verdict,
    how it exited, its notes and tests."""
    data: dict[str, Any] = {"result": outcome.result.value, "cause": outcome.cause.value,
                            "reason": outcome.reason}
    if outcome.exit is not None:
        data.update(exit_code=outcome.exit.exit_code, signal=outcome.exit.signal,
                    oom=outcome.exit.oom)
        if outcome.exit.ended_at is not None:
            data["ended_at"] = outcome.exit.ended_at
        if outcome.exit.began_at is not None:
            data["began_at"] = outcome.exit.began_at
        if outcome.exit.ended_mono is not None:
            data["ended_mono"] = outcome.exit.ended_mono
    if runtime_task.notes:
        data["notes"] = list(runtime_task.notes)
    if runtime_task.tests is not None:
        data["tests"] = runtime_task.tests
    return data


def final_entry(history: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """A task's last entry with a final status, or None while it has none."""
    final = None
    for entry in history:
        if entry["status"] in FINAL_STATUSES:
            final = entry
    return final


def _began(started: Mapping[str, Any], ended: Mapping[str, Any] | None) -> float | None:
    """When the command began (epoch seconds), where the backend says it was after its spawn
    (ExitResult.began_at); None: at its spawn."""
    began = (ended or {}).get("began_at")
    return None if began is None or float(began) <= float(started["time"]) else float(began)


def run_time(started: Mapping[str, Any] | None, final: Mapping[str, Any] | None,
             ended: Mapping[str, Any] | None = None) -> float | None:
    """A task's duration (seconds), from its start entry to its final one (`ended`: how it
    ended, when not in `final` itself: an attempt's): from when its command began, on the
    monotonic clock, less the time it waited to begin (two wall clocks read moments apart,
    the runner's at its start and the node's: a wall clock stepped later changes nothing).
    None for a task stopped before it began (in a batch queue): no run time."""
    if started is None or final is None or final.get("result") == TaskResult.NOT_RUN.value:
        return None
    ended = final if ended is None else ended
    began = _began(started, ended)
    if ended.get("ended_at") is not None:  # ended while no runner watched: its own end
        own = ended.get("began_at")  # and its start on the same clock, when the backend says
        since = float(own) if own is not None else float(started["time"])
        return round(max(float(ended["ended_at"]) - since, 0.0), 3)
    key = "mono" if "mono" in started and "mono" in final else "time"
    total = max(float(final[key]) - float(started[key]), 0.0)
    if key == "mono" and ended.get("ended_mono") is not None:  # collected a while later
        total = min(total, max(float(ended["ended_mono"]) - float(started["mono"]), 0.0))
    waited = 0.0 if began is None else min(began - float(started["time"]), total)
    return round(total - waited, 3)


def _cause(value: object) -> Cause | None:
    try:
        return Cause(str(value))
    except ValueError:
        return None


def build_results(
    job_id: str,
    tasks: Iterable[Task],
    entries: Iterable[Mapping[str, Any]],
    *,
    task_file: str | None = None,
    spawner: str | None = None,
    start: float | None = None,
    end: float | None = None,
    elapsed: float | None = None,
    fail_on_flaky: bool = False,
) -> JobResult:
    """Results from status entries (`{"task", "status", "time", "mono", ...}`).

    A task with no final entry was lost (the runner died while it ran), or never begun.
    """
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_task.setdefault(str(entry["task"]), []).append(entry)
    result = JobResult(job_id, task_file, spawner, start, end, elapsed=elapsed,
                       fail_on_flaky=fail_on_flaky)
    for task in tasks:
        history = by_task.get(task.id, [])
        # The record is the last attempt's: its start is the last one.
        started = next((e for e in reversed(history) if e["status"] == "started"), None)
        final = final_entry(history)
        if final is not None:
            outcome = TaskResult(final.get("result", TaskResult.ERROR.value))
            cause, reason = _cause(final.get("cause")), final.get("reason")
        elif started is not None:
            outcome, cause = TaskResult.LOST, Cause.LOST
            reason = "the runner stopped while the task ran"
        elif any(e["status"] == "spawning" for e in history):
            outcome, cause = TaskResult.LOST, Cause.LOST
            reason = "the runner stopped while the task was being started"
        else:
            outcome, cause = TaskResult.NOT_RUN, Cause.NOT_RUN
            reason = "the runner stopped before the task began"
        folder = f"tasks/{safe_name(task.id)}"
        spawned = (started.get("spawning_result") if started else None) or {}
        result.tasks.append(
            TaskRecord(
                id=task.id,
                result=outcome,
                status=final["status"] if final else None,
                cause=cause,
                reason=reason,
                exit_code=final.get("exit_code") if final else None,
                signal=final.get("signal") if final else None,
                oom=bool(final.get("oom")) if final else False,
                start=(_began(started, final) or started["time"]) if started else None,
                end=_end(final) if final else None,
                duration=run_time(started, final),
                spawner=started.get("spawner") if started else spawner,
                handle=started.get("handle") if started else None,
                command=task.display_command(),
                depends_on=list(task.depends_on),
                image=task.image,
                limits=task.limits.given(),
                stdout=f"{folder}/stdout",
                stderr=f"{folder}/stderr",
                slot=started.get("slot") if started else None,
                applied=spawned.get("applied"),
                tests=final.get("tests") if final else None,
                notes=list(final.get("notes") or ()) if final else [],
                attempts=_attempts(history, folder),
                adopted=_adopted(history),
                matrix=dict(task.matrix),
            )
        )
    return result


def _end(final: Mapping[str, Any]) -> float:
    """When a finished task ended (epoch seconds): its command's end where the backend told
    it apart from its collect."""
    if final.get("ended_at") is not None:
        return float(final["ended_at"])
    if final.get("ended_mono") is not None and "mono" in final:
        return float(final["time"]) - max(float(final["mono"]) - float(final["ended_mono"]), 0.0)
    return float(final["time"])


def _adopted(history: list[Mapping[str, Any]]) -> bool:
    """Whether the last attempt was taken over by a resume (an earlier one's adoption is
    told in its own attempt)."""
    last_start = max((i for i, e in enumerate(history) if e["status"] == "started"), default=0)
    return any(e["status"] == "adopted" for e in history[last_start:])


def _attempts(history: list[Mapping[str, Any]], folder: str) -> list[dict[str, Any]]:
    """The ended attempts of a retried task (`retrying` entries), each with its start."""
    attempts: list[dict[str, Any]] = []
    started: Mapping[str, Any] | None = None
    for entry in history:
        if entry["status"] == "started":
            started = entry
        elif entry["status"] == "retrying":
            kept = f"{folder}/{entry.get('folder', '')}"
            attempts.append({
                "attempt": entry.get("attempt"),
                **{k: v for k, v in (entry.get("ended") or {}).items() if k != "ended_mono"},
                "start": (_began(started, entry.get("ended")) or started["time"]
                          if started else None),
                "end": entry["time"],
                "duration": run_time(started, entry, entry.get("ended")),
                "handle": started.get("handle") if started else None,
                "stdout": f"{kept}/stdout",
                "stderr": f"{kept}/stderr",
            })
            started = None
    return attempts


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically: a reader never sees half a file."""
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
