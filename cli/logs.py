"""`spawnkit logs JOB_DIR [TASK] [-f]`: a task's output, followed while the job runs.

The output files are the ones every backend writes as the task runs (masked before they were
written), so this works the same on every backend and reads no engine. With one task, its
stdout goes to stdout and its stderr to stderr, byte for byte; with several, each line is
prefixed with its task's id (a matrix task's own id names all its expansions, as for `--only`).
`-f` follows until the tasks have ended (the journal says so) or the runner is gone. A retried
task: its attempt of the moment (the last one, without `-f`), then each later attempt as it
comes; the earlier ones are in `tasks/<id>/attempts/<n>/`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import click

from spawnkit.cli.completion import complete_job_task
from spawnkit.cli.main import EXIT_OK, cli
from spawnkit.core.errors import UsageError
from spawnkit.core.joblock import job_in_use
from spawnkit.core.journal import JOURNAL_NAME, current_owner, read_job_journal, read_journal
from spawnkit.core.output import STREAMS
from spawnkit.core.owner import owner_alive
from spawnkit.core.paths import safe_name
from spawnkit.core.results import final_entry
from spawnkit.core.task.retry import ATTEMPTS_FOLDER

__all__ = ["logs"]

#: Seconds between looks at the files while following.
_POLL = 0.2


@dataclass
class _Stream:
    """One output file of one task, read from where we left it, and the attempts of the task
    that ended while we followed it (`attempts/<n>/`, core.task.retry)."""

    task_id: str
    path: Path
    out: BinaryIO
    prefix: bytes
    offset: int = 0
    inode: int | None = None
    partial: bytes = field(default=b"")
    #: Attempt folders already there, or already printed: only newer ones are printed.
    known: set[str] = field(default_factory=set)
    unprinted: int = 0

    def __post_init__(self) -> None:
        self.known = set(self._attempts())
        #: Attempts that had ended before we began: not printed (`tasks/<id>/attempts/`).
        self.unprinted = len(self.known)

    def _attempts(self) -> list[str]:
        try:
            names = [p.name for p in (self.path.parent / ATTEMPTS_FOLDER).iterdir()]
        except OSError:
            return []
        return sorted((n for n in names if n.isdigit()), key=int)

    def pump(self, *, final: bool = False) -> None:
        try:
            with open(self.path, "rb") as fh:
                inode = os.fstat(fh.fileno()).st_ino
                if inode != self.inode:
                    self._other_file()
                    self.inode = inode
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        self._write(data, final=final)

    def _other_file(self) -> None:
        """Another file at the path. A retry moves its attempt's files to a new attempt
        folder (made first) before the next attempt begins: the rest of the one we read, then
        any others that ended meanwhile. No new folder: the same output rewritten whole
        (masked once more at its end), read on from where we were."""
        for number in [n for n in self._attempts() if n not in self.known]:
            if self.inode is None:  # first sight: each attempt that ended since we began
                self.offset = 0
            try:
                with open(self.path.parent / ATTEMPTS_FOLDER / number / self.path.name,
                          "rb") as fh:
                    fh.seek(self.offset)
                    self._write(fh.read(), final=True)
            except FileNotFoundError:
                pass
            self.offset = 0
            self.known.add(number)

    def _write(self, data: bytes, *, final: bool) -> None:
        if not self.prefix:
            self.out.write(data)
        else:
            # Whole lines only, each under its task's name; the rest waits for its line end.
            data = self.partial + data
            lines = data.split(b"\n")
            self.partial = lines.pop()
            if final and self.partial:
                lines.append(self.partial)
                self.partial = b""
            self.out.write(b"".join(self.prefix + line + b"\n" for line in lines))
        self.out.flush()


def _ended(job_dir: Path, task_ids: list[str]) -> bool:
    """Every task has a final entry, or the job has ended, or its runner is gone (said: its
    tasks may run on, with nobody to write when they end)."""
    try:
        header, entries, end = read_journal(job_dir / JOURNAL_NAME)
    except (OSError, ValueError):
        return True
    by_task: dict[str, list[dict[str, object]]] = {}
    for entry in entries:
        by_task.setdefault(str(entry["task"]), []).append(entry)
    done = all(final_entry(by_task.get(t, [])) is not None for t in task_ids)
    if end is None and not done and not _runner_alive(job_dir, header):
        click.echo(f"spawnkit: the job's runner is gone: what runs of it goes on unwatched "
                   f"(`spawnkit resume {job_dir}` takes it over)", err=True)
        return True
    return end is not None or done


def _runner_alive(job_dir: Path, header: dict[str, Any]) -> bool:
    """A runner holds the job: its lock (a resume holds it before its takeover is in the
    journal), or the runner the journal names last, alive (on another host too)."""
    return job_in_use(job_dir) or owner_alive(current_owner(header))


def _no_output_note(job_dir: Path, task_id: str) -> str | None:
    """Why a task printed nothing, when the journal says its last attempt has not started;
    None when it has (a task may well print nothing) or the journal cannot be read."""
    try:
        header, entries, end = read_journal(job_dir / JOURNAL_NAME)
    except (OSError, ValueError):
        return None
    history = [e for e in entries if e["task"] == task_id]
    started = retried = False
    for entry in history:  # a retry's files start anew: only the last attempt counts
        if entry["status"] == "retrying":
            started, retried = False, True
        elif entry["status"] == "started":
            started = True
    if started:
        return None
    ongoing = (final_entry(history) is None and end is None
               and _runner_alive(job_dir, header))
    note = f"task '{task_id}' has no output: it has not started yet" if ongoing else (
        f"task '{task_id}' has no output: {'its last attempt' if retried else 'it'} never "
        "started")
    if retried:
        note += f" (the earlier attempts' output: tasks/{safe_name(task_id)}/attempts/)"
    return note


@cli.command()
@click.argument("job_dir", type=click.Path(path_type=Path))
@click.argument("task", required=False, shell_complete=complete_job_task)
@click.option("-f", "--follow", is_flag=True, help="Go on printing while the tasks run.")
def logs(job_dir: Path, task: str | None, follow: bool) -> int:
    """Print the output of TASK of JOB_DIR (every task when none is named; a matrix task's
    id: each of its expansions). A retried task: its last attempt (the earlier ones are in
    tasks/<id>/attempts/)."""
    header, _entries, _end = read_job_journal(job_dir)
    described = header.get("tasks", [])
    ids = [str(t["id"]) for t in described]
    # A matrix task's own id names its expansions, as it does for --only.
    expansions = [str(t["id"]) for t in described if task is not None and task not in ids
                  and t.get("matrix_of") == task]
    if task is not None and task not in ids and not expansions:
        raise UsageError(f"{job_dir}: no task '{task}' (it has {', '.join(ids) or 'none'})")
    chosen = expansions or ([task] if task is not None else ids)
    several = len(chosen) > 1
    streams = [
        _Stream(t, job_dir / "tasks" / safe_name(t) / name,
                sys.stdout.buffer if name == "stdout" else sys.stderr.buffer,
                f"[{t}] ".encode() if several else b"")
        for t in chosen for name in STREAMS
    ]
    while True:
        done = not follow or _ended(job_dir, chosen)
        for stream in streams:
            stream.pump(final=done)
        if done:
            # Nothing to print is not nothing to say (a task skipped, or not begun): its
            # output files are there, and empty.
            # One task named (a matrix base with one expansion: that one), not all of them.
            one = chosen[0] if task is not None and not several else None
            note = (_no_output_note(job_dir, one)
                    if one is not None and not any(s.offset for s in streams) else None)
            if note is None and one is not None and streams[0].unprinted:
                earlier = streams[0].unprinted
                note = (f"task '{one}' was retried: the output of {earlier} earlier "
                        f"attempt{'s' if earlier > 1 else ''} is not shown "
                        f"(tasks/{safe_name(one)}/attempts/)")
            if note is not None:
                click.echo(f"spawnkit: {note}", err=True)
            return EXIT_OK
        time.sleep(_POLL)
