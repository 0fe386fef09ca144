"""`--shard I/N` and `--durations`, shared by `spawnkit run` and `spawnkit list`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import click

from spawnkit.core.errors import UsageError
from spawnkit.core.shard import parse_shard, read_durations, shard_from_environment, split_tasks
from spawnkit.core.task.description import Task

__all__ = ["apply_shard", "shard_options"]

F = TypeVar("F", bound=Callable[..., object])


def shard_options(func: F) -> F:
    func = click.option(
        "--durations", "durations", multiple=True, metavar="RESULTS_JSON",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Balance the shares by the task durations of earlier runs (their results.json; "
             "repeat for the results of each share). Without: by count.")(func)
    func = click.option(
        "--shard", default=None, metavar="I/N",
        help="Run share I of N (1/2 and 2/2 together run every task once; a task and what "
             "it depends on share a share). Without it, the CI's own variables say: GitLab's "
             "CI_NODE_INDEX/CI_NODE_TOTAL (parallel: N), Buildkite's BUILDKITE_PARALLEL_JOB/"
             "BUILDKITE_PARALLEL_JOB_COUNT. --shard 1/1 runs everything.")(func)
    return func


def apply_shard(tasks: Sequence[Task], shard_text: str | None,
                durations: Sequence[Path]) -> list[Task]:
    """This machine's share of the planned tasks, with a note saying what each share got."""
    if durations and shard_text is None and shard_from_environment() is None:
        raise UsageError("--durations balances the shares of --shard: give --shard I/N too "
                         "(or the CI's own variables)")
    if shard_text is not None:
        shard, where = parse_shard(shard_text), ""
    else:
        found = shard_from_environment()
        if found is None:
            return list(tasks)
        shard, source = found
        where = f" (from {source})"
    past = read_durations(durations) if durations else None
    if shard.total == 1:
        return list(tasks)
    split = split_tasks(tasks, shard.total, past)
    click.echo(f"spawnkit: note: {split.describe(shard)}{where}", err=True)
    return split.shares[shard.index - 1]
