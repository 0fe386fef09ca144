"""An index of running jobs on this machine, so `spawnkit gc` finds the journals of dead
runners wherever their job folders are. A job that ends normally removes its entry.

Backends that cannot find their leftovers by labels (the process backend) ask here for the
tasks a dead runner left running: core reads the journals, the backend knows what a handle
means.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from spawnkit.core.joblock import job_in_use
from spawnkit.core.journal import JOURNAL_NAME, current_owner, read_journal
from spawnkit.core.owner import owner_alive
from spawnkit.core.results import FINAL_STATUSES

if TYPE_CHECKING:
    from spawnkit.core.spawner import Spawner

__all__ = [
    "STATE_VARIABLE",
    "OrphanedTask",
    "forget",
    "forget_dead",
    "job_running",
    "leave_alone",
    "orphaned_tasks",
    "reap_dead_runners",
    "register",
    "registered",
    "state_dir",
]


#: Names the folder of spawnkit's own state (the index of running jobs).
STATE_VARIABLE = "SPAWNKIT_STATE_DIR"


def state_dir() -> Path:
    base = os.environ.get(STATE_VARIABLE)
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "state") / "spawnkit"


def _runs() -> Path:
    return state_dir() / "runs"


def register(job_id: str, job_dir: Path) -> None:
    with contextlib.suppress(OSError):
        _runs().mkdir(parents=True, exist_ok=True)
        (_runs() / job_id).write_text(str(job_dir.resolve()))


def forget(job_id: str) -> None:
    with contextlib.suppress(OSError):
        (_runs() / job_id).unlink()


def registered() -> dict[str, Path]:
    """job id -> job folder, for every job not known to have ended."""
    out: dict[str, Path] = {}
    with contextlib.suppress(OSError):
        for entry in _runs().iterdir():
            with contextlib.suppress(OSError):
                out[entry.name] = Path(entry.read_text().strip())
    return out


@dataclass(frozen=True)
class OrphanedTask:
    """A task a dead runner started and never saw end."""

    job_id: str
    task_id: str
    handle: str | None
    spawning_result: dict[str, Any]
    #: The folder of its job (its output, under tasks/).
    job_dir: Path | None = None


def _dead_jobs(spawner: str, spare_recent: bool = False,
               ) -> Iterator[tuple[str, Path, list[dict[str, Any]]]]:
    """(job id, job folder, status entries) of this spawner's registered jobs whose runner is
    gone (and that no resume holds, nor may still take over with `spare_recent`: see
    leave_alone)."""
    for job_id, job_dir in sorted(registered().items()):
        try:
            header, entries, _end = read_journal(job_dir / JOURNAL_NAME)
        except (OSError, ValueError):
            continue
        if header.get("spawner") != spawner or owner_alive(current_owner(header)):
            continue
        if leave_alone(job_id, job_dir, spare_recent=spare_recent):
            continue
        yield job_id, job_dir, entries


#: Seconds after its runner's last word that a job still counts as one to resume: the clean-up
#: `spawnkit run` makes first leaves it that long (a CI retry calls `resume` within it);
#: `spawnkit gc` itself does not wait.
RESUME_WINDOW = 600.0


def job_running(job_id: str) -> bool:
    """Whether a runner holds this job now, though the one that began it may be dead (a
    resume took it over): `spawnkit gc` leaves everything of such a job alone."""
    job_dir = registered().get(job_id)
    return job_dir is not None and job_in_use(job_dir)


def leave_alone(job_id: str, job_dir: str | Path | None = None, *,
                spare_recent: bool = False) -> bool:
    """Whether gc must leave a dead runner's job be: a runner holds it now (a resume took it
    over), or, with `spare_recent`, its runner wrote its journal under RESUME_WINDOW ago (it
    may still be resumed). `job_dir` is the job's folder as its objects say (a label), else
    this machine's index of runs is asked."""
    folder = Path(job_dir) if job_dir else registered().get(job_id)
    if folder is None:
        return False
    if job_in_use(folder):
        return True
    if not spare_recent:
        return False
    try:
        age = time.time() - (folder / JOURNAL_NAME).stat().st_mtime
    except OSError:
        return False
    return age < RESUME_WINDOW


def orphaned_tasks(spawner: str, *, spare_recent: bool = False) -> list[OrphanedTask]:
    """Tasks of dead runners of this spawner that started and have no final entry.

    Each task's own final entry decides, not the journal's end record: a runner may end on
    an error of its own with tasks still running.
    """
    found = []
    for job_id, job_dir, entries in _dead_jobs(spawner, spare_recent):
        done = {e["task"] for e in entries if e["status"] in FINAL_STATUSES}
        for entry in entries:
            if entry["status"] == "started" and entry["task"] not in done:
                found.append(OrphanedTask(job_id, str(entry["task"]), entry.get("handle"),
                                          dict(entry.get("spawning_result") or {}), job_dir))
    return found


def forget_dead(spawner: str, *, spare_recent: bool = False) -> list[str]:
    """Drop the index entries of this spawner's jobs whose runner is gone (once reaped)."""
    dead = [job_id for job_id, _dir, _entries in _dead_jobs(spawner, spare_recent)]
    for job_id in dead:
        forget(job_id)
    return dead


async def reap_dead_runners(spawner: Spawner, *, dry_run: bool = False) -> list[str]:
    """Remove what dead runners left on an open backend, one line each; then drop their jobs
    from the index (unless `dry_run`)."""
    said = await spawner.reap_orphans(dry_run=dry_run)
    if not dry_run:
        forget_dead(spawner.name, spare_recent=spawner.options.spare_resumable)
    return said
