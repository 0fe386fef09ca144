"""`spawnkit images build NAME` and `spawnkit images list`: the images spawnkit builds itself,
on every backend that runs images (plug-ins included)."""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import click

from spawnkit.cli.completion import complete_spawner
from spawnkit.cli.main import EXIT_OK, cli
from spawnkit.core.buildcontext import is_image_name
from spawnkit.core.errors import EngineUnavailable, UsageError
from spawnkit.core.images import RECIPES
from spawnkit.core.registry import available, get_spawner_class, make_spawner
from spawnkit.core.spawner import Spawner, SpawnerOptions
from spawnkit.core.task.description import ImageBuild

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
@click.argument("name", type=click.Choice(sorted(RECIPES)), required=False)
@click.option("--spawner", "spawner_name", shell_complete=complete_spawner,
              required=True, metavar="NAME",
              help="The backend to build on (docker, podman, ...).")
@click.option("--engine-url", default=None, help="Engine API URL (else DOCKER_HOST etc.).")
@click.option("--tag", default=None, help="Tag to give [default: the recipe's, e.g. "
              "spawnkit-busybox:latest].")
@click.option("--file", "containerfile", default=None, metavar="PATH",
              type=click.Path(dir_okay=False, path_type=Path),
              help="Build this Containerfile instead of a recipe, as a task file's "
                   "[image.NAME] is built: tagged spawnkit-user/NAME:<content hash>, built "
                   "only when no image of the same content is there. Prints the tag.")
@click.option("--context", default=None, metavar="DIR",
              type=click.Path(file_okay=False, path_type=Path),
              help="With --file: the build context [default: the Containerfile's folder].")
@click.option("--name", "image_name", default=None,
              help="With --file: the NAME of the tag [default: the Containerfile's folder's].")
def build(name: str | None, spawner_name: str, engine_url: str | None, tag: str | None,
          containerfile: Path | None, context: Path | None, image_name: str | None) -> int:
    """Build the image NAME (a recipe of images/), or a Containerfile (--file), on a
    backend's engine."""
    if (name is None) == (containerfile is None):
        raise UsageError("give a recipe NAME or --file PATH (see 'spawnkit images build --help')")
    if containerfile is None and (context is not None or image_name is not None):
        raise UsageError("--context and --name go with --file")
    if containerfile is not None and tag is not None:
        raise UsageError("--tag renames a recipe's image: an image from --file is tagged by "
                         "its content")
    spawner = make_spawner(spawner_name, SpawnerOptions(engine_url=engine_url))
    if not spawner.builds_images:
        raise UsageError(f"spawner '{spawner_name}' runs no images")
    if containerfile is not None:
        wanted = _from_file(containerfile, context, image_name)
        # Left out as `spawnkit run` leaves it out, so that both name the same content alike.
        results = Path(os.environ.get("SPAWNKIT_RESULTS") or "spawnkit-results")
        click.echo(_with(spawner, lambda s: s.build_from_file(wanted, [results])))
        return EXIT_OK
    assert name is not None
    if RECIPES[name].slow:
        click.echo(f"building {name}: this takes minutes", err=True)
    built, image_id = _with(spawner, lambda s: s.build_image(name, tag))
    click.echo(f"{spawner_name}: built {built} ({image_id.removeprefix('sha256:')[:12]})")
    return EXIT_OK


def _from_file(containerfile: Path, context: Path | None, name: str | None) -> ImageBuild:
    if not containerfile.is_file():
        raise UsageError(f"--file {containerfile}: no such file")
    folder = context if context is not None else containerfile.resolve().parent
    if not folder.is_dir():
        raise UsageError(f"--context {folder}: no such folder")
    if name is None:
        # The folder's name as a tag allows it: lower case, runs of other characters as '-'.
        name = re.sub(r"[^a-z0-9]+", "-", containerfile.resolve().parent.name.lower()).strip("-")
        name = name or "image"
    elif not is_image_name(name):
        raise UsageError(f"--name {name}: lower-case letters and digits, with '.', '_' or '-' "
                         "between them")
    return ImageBuild(name, str(containerfile.resolve()), str(folder.resolve()))


@images.command("list")
@click.option("--spawner", "spawner_name", shell_complete=complete_spawner,
              default=None, metavar="NAME",
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
