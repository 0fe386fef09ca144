"""journal.jsonl: every status change appended as it happens, so a runner killed with
SIGKILL still leaves a readable record from which results are rebuilt."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any

from spawnkit.core.results import JobResult, build_results
from spawnkit.core.task.description import Limits, Mount, Task
from spawnkit.core.task.statusrepo import StatusEntry

__all__ = ["JOURNAL_NAME", "Journal", "read_journal", "rebuild_results", "task_from_dict"]

JOURNAL_NAME = "journal.jsonl"


def task_to_dict(task: Task) -> dict[str, Any]:
    return asdict(task)


def task_from_dict(data: dict[str, Any]) -> Task:
    limits = dict(data.get("limits") or {})
    limits["mounts"] = tuple(Mount(**m) for m in limits.get("mounts", ()))
    for key in ("cap_add", "cap_drop"):
        if limits.get(key) is not None:
            limits[key] = tuple(limits[key])
    command = data["command"]
    return Task(
        id=data["id"],
        command=command if isinstance(command, str) else tuple(command),
        env=tuple((k, v) for k, v in data.get("env", ())),
        cwd=data.get("cwd"),
        timeout=data.get("timeout"),
        depends_on=tuple(data.get("depends_on", ())),
        image=data.get("image"),
        teardown=bool(data.get("teardown", False)),
        secrets=tuple(data.get("secrets", ())),
        limits=Limits(**limits),
    )


class Journal:
    """A status-repo listener that appends each entry as one flushed JSON line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is None:
            return
        # Flushed to the kernel at once: a SIGKILL of the runner loses nothing written.
        self._file.write(json.dumps(record, default=str) + "\n")
        self._file.flush()

    def begin(self, job_id: str, tasks: Sequence[Task], **meta: Any) -> None:
        self._write(
            {"event": "job", "job_id": job_id, "tasks": [task_to_dict(t) for t in tasks], **meta}
        )

    def __call__(self, entry: StatusEntry) -> None:
        self._write({"event": "status", **entry.as_dict()})

    def end(self, **meta: Any) -> None:
        self._write({"event": "end", **meta})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_journal(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """(the job header, the status entries, the end record or None).

    A last line cut short by a crash is ignored; anything else unreadable is an error.
    """
    header: dict[str, Any] | None = None
    entries: list[dict[str, Any]] = []
    end: dict[str, Any] | None = None
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise ValueError(f"{path}: line {number} is not JSON") from None
        kind = record.get("event")
        if kind == "job":
            header = record
        elif kind == "status":
            entries.append(record)
        elif kind == "end":
            end = record
    if header is None:
        raise ValueError(f"{path}: no job header")
    return header, entries, end


def rebuild_results(job_dir: Path) -> JobResult:
    """Results from a job folder's journal; tasks still running at the end are lost."""
    header, entries, end = read_journal(job_dir / JOURNAL_NAME)
    tasks = [task_from_dict(t) for t in header["tasks"]]
    times: Iterable[float] = [e["time"] for e in entries]
    return build_results(
        header["job_id"],
        tasks,
        entries,
        task_file=header.get("task_file"),
        spawner=header.get("spawner"),
        start=header.get("start"),
        end=(end or {}).get("time") or max(times, default=None),
    )
