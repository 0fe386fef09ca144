"""A job's results, made in one place from the status record (live, or a journal)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from spawnkit.core.paths import safe_name
from spawnkit.core.task.description import Task
from spawnkit.core.task.runtime import RuntimeTaskStatus, TaskResult

__all__ = [
    "FINAL_STATUSES",
    "SCHEMA_VERSION",
    "JobResult",
    "TaskRecord",
    "build_results",
    "write_json",
]

SCHEMA_VERSION = 1

#: The status words a finished task's last entry carries (finish_task records the name).
FINAL_STATUSES = frozenset(s.name.lower() for s in RuntimeTaskStatus.finished_statuses())


@dataclass
class TaskRecord:
    id: str
    result: str
    status: str | None
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


@dataclass
class JobResult:
    job_id: str
    task_file: str | None
    spawner: str | None
    start: float | None
    end: float | None
    tasks: list[TaskRecord] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = {r.value: 0 for r in TaskResult}
        for t in self.tasks:
            counts[t.result] = counts.get(t.result, 0) + 1
        return counts

    @property
    def passed(self) -> bool:
        return bool(self.tasks) and all(t.result == TaskResult.PASSED.value for t in self.tasks)

    @property
    def duration(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return round(self.end - self.start, 3)

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
            "tasks": [asdict(t) for t in self.tasks],
        }


def build_results(
    job_id: str,
    tasks: Iterable[Task],
    entries: Iterable[Mapping[str, Any]],
    *,
    task_file: str | None = None,
    spawner: str | None = None,
    start: float | None = None,
    end: float | None = None,
) -> JobResult:
    """Results from status entries (`{"task", "status", "time", ...}`).

    A task with no final entry was lost (the runner died while it ran, or before).
    """
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        by_task.setdefault(str(entry["task"]), []).append(entry)
    result = JobResult(job_id, task_file, spawner, start, end)
    for task in tasks:
        history = by_task.get(task.id, [])
        started = next((e for e in history if e["status"] == "started"), None)
        final = next((e for e in reversed(history) if e["status"] in FINAL_STATUSES), None)
        t_start = started["time"] if started else None
        t_end = final["time"] if final else None
        if final is not None:
            outcome, reason = final.get("result", TaskResult.ERROR.value), final.get("reason")
        elif started is not None:
            outcome, reason = TaskResult.LOST.value, "the runner stopped while the task ran"
        else:
            outcome, reason = TaskResult.NOT_RUN.value, "the runner stopped before the task began"
        folder = f"tasks/{safe_name(task.id)}"
        spawned = (started.get("spawning_result") if started else None) or {}
        result.tasks.append(
            TaskRecord(
                id=task.id,
                result=outcome,
                status=final["status"] if final else None,
                reason=reason,
                exit_code=final.get("exit_code") if final else None,
                signal=final.get("signal") if final else None,
                oom=bool(final.get("oom")) if final else False,
                start=t_start,
                end=t_end,
                duration=round(t_end - t_start, 3) if t_start and t_end else None,
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
            )
        )
    return result


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
