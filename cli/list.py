"""`spawnkit list FILE`: the tasks a run would take, in the order it requests them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from spawnkit.cli.main import EXIT_OK, cli
from spawnkit.cli.selection import apply_selection, selection_options
from spawnkit.cli.sharding import apply_shard, shard_options
from spawnkit.core.plan import plan
from spawnkit.core.task.description import Task
from spawnkit.core.taskfile import load_taskfile

__all__ = ["list_tasks"]


@cli.command("list")
@click.argument("taskfile", type=click.Path(dir_okay=False))
@selection_options
@shard_options
@click.option("--ids", "ids_only", is_flag=True, help="Only the ids, one a line.")
def list_tasks(
    taskfile: str,
    only: tuple[str, ...],
    exclude: tuple[str, ...],
    keywords: tuple[str, ...],
    shard: str | None,
    durations: tuple[Path, ...],
    ids_only: bool,
) -> int:
    """List the tasks of TASKFILE (narrowed as `spawnkit run` would with the same options)."""
    loaded = load_taskfile(taskfile)
    tasks = apply_shard(plan(apply_selection(loaded.tasks, only, exclude, keywords)), shard,
                        durations)
    if ids_only:
        for task in tasks:
            click.echo(task.id)
        return EXIT_OK
    if not tasks:
        return EXIT_OK
    width = max(len(t.id) for t in tasks)
    for task in tasks:
        needs = f"  (after {', '.join(_needs(task, tasks))})" if task.depends_on else ""
        mark = " [teardown]" if task.teardown else ""
        click.echo(f"{task.id:<{width}}  {task.display_command()}{mark}{needs}")
    return EXIT_OK


def _needs(task: Task, tasks: Sequence[Task]) -> list[str]:
    """What the task waits for, every expansion of a matrix task said once (`unit[*]`)."""
    groups: dict[str, list[str]] = {}
    for other in tasks:
        if other.matrix_of is not None:
            groups.setdefault(other.matrix_of, []).append(other.id)
    deps = set(task.depends_on)
    whole = {name for name, ids in groups.items() if len(ids) > 1 and deps.issuperset(ids)}
    out: list[str] = []
    for dep in task.depends_on:
        name = next((n for n in whole if dep in groups[n]), None)
        out.append(f"{name}[*]" if name is not None else dep)
    return list(dict.fromkeys(out))
