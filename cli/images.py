"""`spawnkit images build NAME` and `spawnkit images list`: the images spawnkit builds itself,
on every backend that runs images (plug-ins included)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import click

from spawnkit.cli.main import EXIT_OK, cli
from spawnkit.core.errors import EngineUnavailable, UsageError
from spawnkit.core.images import RECIPES
from spawnkit.core.registry import available, get_spawner_class, make_spawner
from spawnkit.core.spawner import Spawner, SpawnerOptions

__all__ = ["images"]

T = TypeVar("T")

def _image_backends() -> list[str]:
    return [name for name in available() if get_spawner_class(name).builds_images]


def _with(spawner: Spawner, work: Callable[[Spawner], Awaitable[T]]) -> T:
    async def body() -> T:
        await spawner.open(None)
        try:
            return await work(spawner)
        finally:
            await spawner.close()

    return asyncio.run(body())


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def _created(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch)) if epoch else "?"


@cli.group()
def images() -> None:
    """Images spawnkit builds from images/ with no registry (busybox, python)."""


@images.command("build")
@click.argument("name", type=click.Choice(sorted(RECIPES)))
@click.option("--spawner", "spawner_name", required=True, metavar="NAME",
              help="The backend to build on (docker, podman, ...).")
@click.option("--engine-url", default=None, help="Engine API URL (else DOCKER_HOST etc.).")
@click.option("--tag", default=None, help="Tag to give [default: the recipe's, e.g. "
              "spawnkit-busybox:latest].")
def build(name: str, spawner_name: str, engine_url: str | None, tag: str | None) -> int:
    """Build the image NAME on a backend's engine."""
    spawner = make_spawner(spawner_name, SpawnerOptions(engine_url=engine_url))
    if not spawner.builds_images:
        raise UsageError(f"spawner '{spawner_name}' runs no images")
    if RECIPES[name].slow:
        click.echo(f"building {name}: this takes minutes", err=True)
    built, image_id = _with(spawner, lambda s: s.build_image(name, tag))
    click.echo(f"{spawner_name}: built {built} ({image_id.removeprefix('sha256:')[:12]})")
    return EXIT_OK


@images.command("list")
@click.option("--spawner", "spawner_name", default=None, metavar="NAME",
              help="Only this backend [default: every backend that runs images and answers].")
@click.option("--engine-url", default=None, help="Engine API URL (else DOCKER_HOST etc.).")
def list_(spawner_name: str | None, engine_url: str | None) -> int:
    """Show the images built from recipes on each engine, and the recipes not built."""
    rows: list[tuple[str, ...]] = []
    for name in [spawner_name] if spawner_name else _image_backends():
        spawner = make_spawner(name, SpawnerOptions(engine_url=engine_url))
        if not spawner.builds_images:
            raise UsageError(f"spawner '{name}' runs no images")
        try:
            found = _with(spawner, lambda s: s.list_images())
        except EngineUnavailable as exc:
            if spawner_name:
                raise
            click.echo(f"{name}: not reachable ({exc.engine_message})", err=True)
            continue
        built = set()
        for info in found:
            built.add(info.recipe)
            tags = ", ".join(info.tags) or "<untagged>"
            rows.append((name, info.recipe, tags, info.id.removeprefix("sha256:")[:12],
                         _size(info.size), _created(info.created)))
        rows += [(name, r, RECIPES[r].tag, "not built", "", "")
                 for r in RECIPES if r not in built]
    header = ("ENGINE", "IMAGE", "TAG", "ID", "SIZE", "CREATED")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK
