"""Orphaned task process groups of dead runners, found through their journals."""

from __future__ import annotations

import contextlib
from pathlib import Path

from spawnkit.core import runs
from spawnkit.core.journal import JOURNAL_NAME, read_journal
from spawnkit.core.owner import owner_alive
from spawnkit.core.results import FINAL_STATUSES
from spawnkit.spawners.procgroup import group_alive, kill_group, proc_start_time

__all__ = ["reap_dead_runs"]



def _orphan_groups(job_dir: Path) -> tuple[bool, list[tuple[str, int]]]:
    """(the runner is dead, [(task id, pgid) of tasks it left running])."""
    try:
        # An `end` record proves nothing of the tasks (a runner may end on an error of its
        # own): each task's own final entry does.
        header, entries, _end = read_journal(job_dir / JOURNAL_NAME)
    except (OSError, ValueError):
        return False, []
    if owner_alive(str(header.get("owner", ""))):
        return False, []
    if header.get("spawner") != "process":
        # A container job: its engine's gc finds what it left by labels. Dead, all the same,
        # so its entry in the runs index goes.
        return True, []
    done = {e["task"] for e in entries if e["status"] in FINAL_STATUSES}
    groups = []
    for entry in entries:
        if entry["status"] != "started" or entry["task"] in done:
            continue
        spawned = entry.get("spawning_result") or {}
        pgid, start = spawned.get("pgid"), spawned.get("start_time")
        if not isinstance(pgid, int):
            continue
        leader_start = proc_start_time(pgid)
        # Leader alive: it must be the same process (start time), not a reused PID. Leader
        # gone but the group alive: Linux never reuses a PID still used as a group id, so
        # the members are the task's own.
        if leader_start is not None and leader_start != start:
            continue
        if group_alive(pgid):
            groups.append((str(entry["task"]), pgid))
    return True, groups


async def reap_dead_runs(*, dry_run: bool = False, grace_period: float = 1.0) -> list[str]:
    said = []
    for job_id, job_dir in sorted(runs.registered().items()):
        dead, groups = _orphan_groups(job_dir)
        for task_id, pgid in groups:
            said.append(f"process group {pgid} (job {job_id}, task {task_id})")
            if not dry_run:
                await kill_group(pgid, grace_period)
        if dead and not dry_run:
            with contextlib.suppress(OSError):
                runs.forget(job_id)
    return said
