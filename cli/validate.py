"""`spawnkit validate FILE`: every problem of a task file, one line each, without running it."""

from __future__ import annotations

import click

from spawnkit.cli.main import EXIT_OK, cli
from spawnkit.core.taskfile import load_taskfile

__all__ = ["validate"]


@cli.command()
@click.argument("taskfile", type=click.Path(dir_okay=False))
@click.option("-q", "--quiet", is_flag=True, help="Say nothing when the file is fine.")
def validate(taskfile: str, quiet: bool) -> int:
    """Check TASKFILE: exit 0 when it is fine, else one line per problem and exit 2."""
    # Problems raise TaskFileError, which the entry point prints one line each, exit 2:
    # the same lines `spawnkit run` gives for the same file.
    loaded = load_taskfile(taskfile)
    if not quiet:
        click.echo(f"{taskfile}: ok, {len(loaded.tasks)} task(s)")
    return EXIT_OK
