"""`spawnkit images build NAME` and `spawnkit images list`: the images spawnkit builds itself."""

from __future__ import annotations

import time

import click

from spawnkit.cli.main import EXIT_OK, cli
from spawnkit.core.errors import EngineUnavailable, UsageError
from spawnkit.spawners.engine import Engine
from spawnkit.spawners.images import RECIPES, build_image, list_images
from spawnkit.spawners.registry import get_spawner_class

__all__ = ["images"]

_ENGINES = ("docker", "podman")


def _engine(spawner_name: str, engine_url: str | None) -> Engine:
    from spawnkit.spawners.container import ContainerSpawner

    cls = get_spawner_class(spawner_name)
    if not issubclass(cls, ContainerSpawner):
        raise UsageError(f"spawner '{spawner_name}' runs no images")
    return cls.engine_class(engine_url)


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 1e9 else f"{n / 1e9:.2f} GB"


def _created(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch)) if epoch else "?"


@cli.group()
def images() -> None:
    """Images spawnkit builds from images/ with no registry (busybox, python)."""


@images.command("build")
@click.argument("name", type=click.Choice(sorted(RECIPES)))
@click.option("--spawner", "spawner_name", type=click.Choice(_ENGINES), required=True,
              help="The engine to build on.")
@click.option("--engine-url", default=None, help="Engine API URL (else DOCKER_HOST etc.).")
@click.option("--tag", default=None, help="Tag to give [default: the recipe's, e.g. "
              "spawnkit-busybox:latest].")
def build(name: str, spawner_name: str, engine_url: str | None, tag: str | None) -> int:
    """Build the image NAME on an engine."""
    engine = _engine(spawner_name, engine_url)
    engine.open()
    try:
        if RECIPES[name].slow:
            click.echo(f"building {name}: this takes minutes", err=True)
        built, image_id = build_image(engine, name, tag)
    finally:
        engine.close()
    click.echo(f"{spawner_name}: built {built} ({image_id.removeprefix('sha256:')[:12]})")
    return EXIT_OK


@images.command("list")
@click.option("--spawner", "spawner_name", type=click.Choice(_ENGINES), default=None,
              help="Only this engine [default: every engine that answers].")
@click.option("--engine-url", default=None, help="Engine API URL (else DOCKER_HOST etc.).")
def list_(spawner_name: str | None, engine_url: str | None) -> int:
    """Show the images built from recipes on each engine, and the recipes not built."""
    rows: list[tuple[str, ...]] = []
    for name in [spawner_name] if spawner_name else _ENGINES:
        engine = _engine(name, engine_url)
        try:
            engine.open()
        except EngineUnavailable as exc:
            if spawner_name:
                raise
            click.echo(f"{name}: not reachable ({exc.engine_message})", err=True)
            continue
        try:
            found = list_images(engine)
        finally:
            engine.close()
        built = set()
        for info in found:
            recipe = info.labels.get("spawnkit.image", "?")
            built.add(recipe)
            tags = ", ".join(info.tags) or "<untagged>"
            rows.append((name, recipe, tags, info.id.removeprefix("sha256:")[:12],
                         _size(info.size), _created(info.created)))
        rows += [(name, r, RECIPES[r].tag, "not built", "", "") for r in RECIPES if r not in built]
    header = ("ENGINE", "IMAGE", "TAG", "ID", "SIZE", "CREATED")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return EXIT_OK
