"""The selection options shared by `spawnkit run` and `spawnkit list`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import click

from spawnkit.cli.completion import complete_task_ids
from spawnkit.core.errors import UsageError
from spawnkit.core.select import select_tasks, split_ids
from spawnkit.core.task.description import Task

__all__ = ["apply_selection", "selection_options"]

F = TypeVar("F", bound=Callable[..., object])


def selection_options(func: F) -> F:
    """Add `--only`, `--exclude` and `-k` (each may be given more than once)."""
    func = click.option("-k", "keywords", multiple=True, metavar="SUBSTRING",
                        help="Only tasks whose id contains SUBSTRING (repeat: any of them).")(func)
    func = click.option("--exclude", multiple=True, metavar="ID[,ID]",
                        shell_complete=complete_task_ids,
                        help="Leave these tasks out, and what needs them.")(func)
    func = click.option("--only", multiple=True, metavar="ID[,ID]",
                        shell_complete=complete_task_ids,
                        help="Only these tasks (and what they depend on).")(func)
    return func


def apply_selection(
    tasks: Sequence[Task],
    only: Sequence[str],
    exclude: Sequence[str],
    keywords: Sequence[str],
    *,
    notes: bool = True,
) -> list[Task]:
    """The selected tasks; each surprise (a pulled-in or left-out task) is a note on stderr.
    UsageError for a value that names nothing (`--only "$TASKS"` with the variable unset):
    it would select every task."""
    for flag, values in (("--only", only), ("--exclude", exclude), ("-k", keywords)):
        if any(not split_ids([value]) for value in values):
            raise UsageError(f"{flag}: an empty value (an unset variable?) would select "
                             "every task: give what it names, or leave the option out")
    selection = select_tasks(
        tasks, only=split_ids(only), exclude=split_ids(exclude), keywords=list(keywords)
    )
    if notes:
        for note in selection.notes:
            click.echo(f"spawnkit: note: {note}", err=True)
    return selection.tasks
