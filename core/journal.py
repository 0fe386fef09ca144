"""journal.jsonl: every status change appended as it happens, so a runner killed with
SIGKILL still leaves a readable record from which results are rebuilt."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from spawnkit.core.errors import UsageError
from spawnkit.core.results import JobResult, build_results
from spawnkit.core.task.description import Task
from spawnkit.core.task.statusrepo import StatusEntry
from spawnkit.core.taskcodec import task_from_json, task_to_json

__all__ = [
    "JOURNAL_NAME",
    "Journal",
    "current_owner",
    "read_job_journal",
    "read_journal",
    "rebuild_results",
    "task_from_dict",
]

JOURNAL_NAME = "journal.jsonl"

LOG = logging.getLogger(__name__)


#: The journal's reader of a task (the header keeps each one whole: core.taskcodec).
task_from_dict = task_from_json


class Journal:
    """A status-repo listener that appends each entry as one JSON line.

    Lines reach the kernel (a SIGKILL of the runner loses none of them) in batches: at the end
    of the event loop's turn that recorded them, and at once for a `started` entry, which
    `spawnkit gc` needs to find what a dead runner left running.

    A write the file system refuses (a full disk) stops no run: what was not written waits,
    byte-exact, for the next flush, and is said once (`complete` is False while it waits).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        # Unbuffered: a refused write leaves no half-flushed buffer, only `_unwritten`.
        self._file: IO[bytes] | None = open(path, "ab", buffering=0)  # noqa: SIM115
        self._pending: list[str] = []
        self._unwritten = bytearray()
        self._flush_due = False
        self._refused = False
        if self._file.tell() > 0 and not _ends_with_newline(path):
            # A runner killed mid-line (a resume goes on): its torn line stays one line.
            self._unwritten += b"\n"

    def _write(self, record: dict[str, Any], *, now: bool = True) -> None:
        if self._file is None:
            return
        self._pending.append(json.dumps(record, default=str))
        if now:
            self.flush()
        elif not self._flush_due:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: nothing batches the lines
                self.flush()
            else:
                self._flush_due = True

    @property
    def complete(self) -> bool:
        """Whether every line recorded so far is in the file."""
        return not (self._pending or self._unwritten)

    def flush(self) -> None:
        self._flush_due = False
        if self._file is None:
            return
        if self._pending:
            self._pending.append("")
            self._unwritten += "\n".join(self._pending).encode("utf-8")
            self._pending.clear()
        while self._unwritten:
            try:
                written = self._file.write(self._unwritten)
            except OSError as exc:
                self._refuse(exc.strerror or str(exc))
                return
            if not written:
                self._refuse("nothing written")
                return
            del self._unwritten[:written]
        if self._refused:
            self._refused = False
            LOG.warning("%s: written again, no line lost", self.path)

    def _refuse(self, why: str) -> None:
        if not self._refused:
            self._refused = True
            LOG.warning("cannot write %s: %s; its lines wait in memory until it can be "
                        "written", self.path, why)

    def begin(self, job_id: str, tasks: Sequence[Task], **meta: Any) -> None:
        self._write(
            {"event": "job", "job_id": job_id, "tasks": [task_to_json(t) for t in tasks], **meta}
        )

    def __call__(self, entry: StatusEntry) -> None:
        self._write({"event": "status", **entry.as_dict()}, now=entry.status == "started")

    def takeover(self, **meta: Any) -> None:
        """A new runner goes on with the job (`spawnkit resume`): old owner, new owner, time."""
        self._write({"event": "takeover", **meta})

    def end(self, **meta: Any) -> None:
        self._write({"event": "end", **meta})

    def close(self) -> None:
        """Flush and close; lines still refused are dropped (`complete` says so)."""
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


def read_journal(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """(the job header, the status entries, the end record or None). The header's
    `takeovers` lists the takeover records, oldest first.

    A line cut short by a crash (the last one, or one a takeover record follows) is ignored;
    anything else unreadable is an error (ValueError).
    """
    header: dict[str, Any] | None = None
    entries: list[dict[str, Any]] = []
    end: dict[str, Any] | None = None
    takeovers: list[dict[str, Any]] = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) or '"event": "takeover"' in lines[number]:
                continue  # torn by a runner killed mid-line (the next runner's record follows)
            raise ValueError(f"{path}: line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: line {number} is not a record")
        kind = record.get("event")
        if kind == "job":
            header = record
        elif kind == "status":
            if not isinstance(record.get("task"), str) or not isinstance(record.get("status"), str):
                raise ValueError(f"{path}: line {number} is a status with no task or status")
            entries.append(record)
        elif kind == "end":
            end = record
        elif kind == "takeover":
            takeovers.append(record)
    if header is None:
        raise ValueError(f"{path}: no job header")
    header["takeovers"] = takeovers
    return header, entries, end


def current_owner(header: dict[str, Any]) -> str:
    """The runner that holds the job as its journal says (core.owner's form): the last to
    take it over (`spawnkit resume`), else the one that began it."""
    owner = str(header.get("owner", ""))
    for record in header.get("takeovers", ()):
        owner = str(record.get("new_owner", owner))
    return owner


def read_job_journal(
    job_dir: Path,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    """`read_journal` of a job folder, for the command line: UsageError (one line) when it is
    no job folder or its journal cannot be read."""
    try:
        return read_journal(job_dir / JOURNAL_NAME)
    except FileNotFoundError:
        raise UsageError(f"{job_dir}: no {JOURNAL_NAME} here (is it a job folder?)") from None
    except (OSError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def rebuild_results(job_dir: Path) -> JobResult:
    """Results from a job folder's journal; tasks still running at the end are lost."""
    header, entries, end = read_journal(job_dir / JOURNAL_NAME)
    tasks = [task_from_dict(t) for t in header["tasks"]]
    last = end or (entries[-1] if entries else {})
    elapsed = None
    if "mono" in header and "mono" in last:
        elapsed = last["mono"] - header["mono"]
    return build_results(
        header["job_id"],
        tasks,
        entries,
        task_file=header.get("task_file"),
        spawner=header.get("spawner"),
        start=header.get("start"),
        end=last.get("time"),
        elapsed=elapsed,
        fail_on_flaky=bool((header.get("settings") or {}).get("fail_on_flaky")),
    )
