"""Shell completion of the values only spawnkit knows: backend names, the task ids of a task
file, the tasks of a job folder. click calls these for `_SPAWNKIT_COMPLETE=bash_complete`
(cli.main); whatever goes wrong in one (no task file yet, a bad one) completes nothing rather
than print an error into the user's prompt."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

import click
from click.shell_completion import CompletionItem

from spawnkit.core.journal import JOURNAL_NAME
from spawnkit.core.registry import available
from spawnkit.core.select import split_ids

__all__ = ["complete_job_task", "complete_spawner", "complete_task_ids"]


def _starting(names: Iterable[str], incomplete: str, before: str = "") -> list[CompletionItem]:
    return [CompletionItem(before + name) for name in dict.fromkeys(names)
            if name.startswith(incomplete)]


def complete_spawner(ctx: click.Context, param: click.Parameter,
                     incomplete: str) -> list[CompletionItem]:
    """`--spawner`: the registered backends, plug-ins included."""
    return _starting(available(), incomplete)


def complete_task_ids(ctx: click.Context, param: click.Parameter,
                      incomplete: str) -> list[CompletionItem]:
    """`--only`/`--exclude` ID[,ID]: the ids of the task file typed before (a matrix task's
    own id, then its expansions'), the ids already typed in the value kept in front."""
    # With the option's value still to come, click parses no argument: the task file is
    # then among what it left unparsed.
    taskfile = ctx.params.get("taskfile") or next(
        (arg for arg in ctx.args if not arg.startswith("-")), None)
    if not taskfile:
        return []
    try:
        from spawnkit.core.taskfile import load_taskfile

        tasks = load_taskfile(os.path.expanduser(taskfile)).tasks  # the shell left `~` as is
    except Exception:
        return []
    names = [name for task in tasks
             for name in ((task.matrix_of, task.id) if task.matrix_of else (task.id,))]
    before = incomplete[: _last_cut(incomplete)]
    typed = set(split_ids([before]))
    return _starting((n for n in names if n not in typed), incomplete[len(before):], before)


def _last_cut(text: str) -> int:
    """Where the id being typed begins: after the last comma between ids, not one inside a
    matrix id's brackets, closed or not yet (`unit[py=3.11,db=p`)."""
    depth, cut = 0, 0
    for i, c in enumerate(text):
        if c == "[":
            depth += 1
        elif c == "]":
            depth = max(depth - 1, 0)
        elif c == "," and depth == 0:
            cut = i + 1
    return cut


def complete_job_task(ctx: click.Context, param: click.Parameter,
                      incomplete: str) -> list[CompletionItem]:
    """TASK of `logs` and `shell`: the tasks of the job folder typed before, read from the
    first line of its journal alone (a job of 10,000 tasks completes as fast as one)."""
    job_dir = ctx.params.get("job_dir")
    if job_dir is None:
        return []
    try:
        with open(Path(os.path.expanduser(job_dir)) / JOURNAL_NAME, encoding="utf-8") as journal:
            header = json.loads(journal.readline())
        described = header["tasks"]
        names = [name for task in described
                 for name in ((task["matrix_of"], task["id"]) if task.get("matrix_of")
                              else (task["id"],))]
    except Exception:
        return []
    if param.name == "task" and ctx.command.name == "shell":
        names = [t["id"] for t in described]  # a shell looks into one task, not a matrix's
    return _starting((str(n) for n in names), incomplete)
