"""`spawnkit gc`: remove what dead runners left behind, on every backend that answers."""

from __future__ import annotations

import asyncio
import sys

import click

from spawnkit.cli.completion import complete_spawner
from spawnkit.cli.kubeoptions import kubernetes_options
from spawnkit.cli.main import EXIT_OK, cli
from spawnkit.cli.streams import unless_gone
from spawnkit.core import runs
from spawnkit.core.errors import EngineUnavailable, UsageError
from spawnkit.core.registry import available, make_spawner
from spawnkit.core.spawner import Spawner, SpawnerOptions

__all__ = ["gc", "reap"]


async def reap(spawner: Spawner, *, dry_run: bool) -> list[str]:
    """Open the spawner on no job, reap, close."""
    await spawner.open(None)
    try:
        return await runs.reap_dead_runners(spawner, dry_run=dry_run)
    finally:
        await spawner.close()


@cli.command()
@kubernetes_options
@click.option("--spawner", "spawner_name", shell_complete=complete_spawner,
              default=None, metavar="NAME",
              help="Only this backend [default: every registered backend that answers, "
                   "plug-ins included].")
@click.option("--engine-url", default=None, help="Engine API URL (else DOCKER_HOST etc.).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
@click.option("--kept", is_flag=True,
              help="Also remove the containers kept on purpose (--keep-failed, "
                   "--keep-containers) whose runner is gone; a live runner's stay.")
def gc(spawner_name: str | None, engine_url: str | None, dry_run: bool, kept: bool) -> int:
    """Remove what dead runners left: containers, task process groups, cluster jobs.

    Containers kept on purpose stay once ended, until --kept.
    """
    names = [spawner_name] if spawner_name else available()
    verb = "would remove" if dry_run else "removed"
    total = 0
    seen: set[type[Spawner]] = set()
    for name in names:
        try:
            spawner = make_spawner(name, SpawnerOptions(engine_url=engine_url, reap_kept=kept))
        except UsageError as exc:
            if spawner_name:
                raise
            click.echo(f"spawnkit: warning: {exc}", err=True)  # a broken plug-in
            continue
        if type(spawner) in seen:
            continue  # another name of a backend already asked (k8s, kubernetes)
        seen.add(type(spawner))
        try:
            said = asyncio.run(reap(spawner, dry_run=dry_run))
        except EngineUnavailable:
            if spawner_name:
                raise
            continue  # looking everywhere: an engine that is not there left nothing
        with unless_gone(sys.stdout):  # a reader gone stops no removal on the next backend
            for line in said:
                click.echo(f"{name}: {verb} {line}")
        total += len(said)
    noun = "item" if total == 1 else "items"
    with unless_gone(sys.stdout):
        click.echo(f"{total} {noun} {'would be removed' if dry_run else 'removed'}")
    return EXIT_OK
