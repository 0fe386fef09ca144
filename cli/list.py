"""`spawnkit list FILE`: the tasks a run would take, in the order it requests them."""

from __future__ import annotations

import click

from spawnkit.cli.main import EXIT_OK, cli
from spawnkit.cli.selection import apply_selection, selection_options
from spawnkit.core.plan import plan
from spawnkit.core.taskfile import load_taskfile

__all__ = ["list_tasks"]


@cli.command("list")
@click.argument("taskfile", type=click.Path(dir_okay=False))
@selection_options
@click.option("--ids", "ids_only", is_flag=True, help="Only the ids, one a line.")
def list_tasks(
    taskfile: str,
    only: tuple[str, ...],
    exclude: tuple[str, ...],
    keywords: tuple[str, ...],
    ids_only: bool,
) -> int:
    """List the tasks of TASKFILE (narrowed as `spawnkit run` would with the same options)."""
    loaded = load_taskfile(taskfile)
    tasks = plan(apply_selection(loaded.tasks, only, exclude, keywords))
    if ids_only:
        for task in tasks:
            click.echo(task.id)
        return EXIT_OK
    width = max(len(t.id) for t in tasks)
    for task in tasks:
        needs = f"  (after {', '.join(task.depends_on)})" if task.depends_on else ""
        mark = " [teardown]" if task.teardown else ""
        click.echo(f"{task.id:<{width}}  {task.display_command()}{mark}{needs}")
    return EXIT_OK
