"""`spawnkit gc`: remove the containers and processes that dead runners left behind."""

from __future__ import annotations

import asyncio

import click

from spawnkit.cli.main import EXIT_OK, cli
from spawnkit.cli.run import make_spawner
from spawnkit.core.errors import EngineUnavailable
from spawnkit.spawners.base import Spawner, SpawnerOptions

__all__ = ["gc", "reap"]

_ALL = ("process", "docker", "podman")


async def reap(spawner: Spawner, *, dry_run: bool) -> list[str]:
    """Open the spawner on no job, reap, close."""
    await spawner.open(None)
    try:
        return await spawner.reap_orphans(dry_run=dry_run)
    finally:
        await spawner.close()


@cli.command()
@click.option("--spawner", "spawner_name", type=click.Choice(_ALL), default=None,
              help="Only this backend [default: process and every engine that answers].")
@click.option("--engine-url", default=None, help="Engine API URL (else DOCKER_HOST etc.).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed; remove nothing.")
def gc(spawner_name: str | None, engine_url: str | None, dry_run: bool) -> int:
    """Remove what dead runners left: containers, task process groups."""
    names = [spawner_name] if spawner_name else list(_ALL)
    verb = "would remove" if dry_run else "removed"
    total = 0
    for name in names:
        spawner = make_spawner(name, SpawnerOptions(engine_url=engine_url))
        try:
            said = asyncio.run(reap(spawner, dry_run=dry_run))
        except EngineUnavailable:
            if spawner_name:
                raise
            continue  # looking everywhere: an engine that is not there left nothing
        for line in said:
            click.echo(f"{name}: {verb} {line}")
        total += len(said)
    click.echo(f"{total} {'items' if total != 1 else 'item'} {verb}")
    return EXIT_OK
