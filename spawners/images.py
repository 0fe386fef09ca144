"""The images spawnkit builds itself, with no registry: their recipes, and building them.

Each recipe is a folder `images/NAME/` of the source tree holding a `Containerfile` and a
`mkrootfs.sh` that writes the image's root filesystem as `rootfs.tar` (Debian's own packages:
busybox-static, or debootstrap). The Containerfile builds `FROM scratch` on that tar, so no
base image is ever pulled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from spawnkit.core.errors import SpawnerError, UsageError
from spawnkit.spawners.engine import Engine, ImageInfo, engine_message

__all__ = ["IMAGE_LABEL", "RECIPES", "Recipe", "build_image", "images_dir", "list_images"]

#: Every image built from a recipe carries it, with the recipe's name as value.
IMAGE_LABEL = "spawnkit.image"


@dataclass(frozen=True)
class Recipe:
    name: str
    tag: str
    summary: str
    slow: bool = False  # minutes, not seconds: built on request only


RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe("busybox", "spawnkit-busybox:latest", "busybox-static FROM scratch (2 MB)"),
        Recipe(
            "python", "spawnkit-python:latest", "Debian 12 minbase + python3 (debootstrap)",
            slow=True,
        ),
    )
}


def images_dir() -> Path:
    """The recipes: $SPAWNKIT_IMAGES_DIR, else `images/` of the source tree, else of `.`."""
    given = os.environ.get("SPAWNKIT_IMAGES_DIR")
    if given:
        return Path(given)
    # spawners/ and images/ sit side by side in a checkout (the package maps its folders).
    beside = Path(__file__).resolve().parent.parent / "images"
    return beside if beside.is_dir() else Path.cwd() / "images"


def _recipe(name: str) -> Recipe:
    recipe = RECIPES.get(name)
    if recipe is None:
        raise UsageError(f"unknown image '{name}' (choose from: {', '.join(sorted(RECIPES))})")
    return recipe


def build_image(engine: Engine, name: str, tag: str | None = None) -> tuple[str, str]:
    """Build the recipe `name` on an open engine; (tag, image ID)."""
    recipe = _recipe(name)
    folder = images_dir() / name
    for needed in ("Containerfile", "mkrootfs.sh"):
        if not (folder / needed).is_file():
            raise UsageError(f"image '{name}': {folder / needed} not found "
                             "(run from a spawnkit checkout or set SPAWNKIT_IMAGES_DIR)")
    tag = tag or recipe.tag
    with tempfile.TemporaryDirectory(prefix=f"spawnkit-image-{name}-") as tmp:
        context = Path(tmp)
        shutil.copy(folder / "Containerfile", context / "Containerfile")
        made = subprocess.run(
            ["sh", str(folder / "mkrootfs.sh"), str(context / "rootfs.tar")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
        )
        if made.returncode != 0:
            last = (made.stderr.strip().splitlines() or ["failed"])[-1]
            raise SpawnerError(f"image '{name}': making its root filesystem failed: {last}")
        try:
            image_id = engine.build(str(context), "Containerfile", tag)
        except Exception as exc:
            raise SpawnerError(
                f"image '{name}': {engine.name} build failed",
                spawner=engine.name,
                engine_message=engine_message(exc),
            ) from exc
    return tag, image_id


def list_images(engine: Engine) -> list[ImageInfo]:
    """The images built from recipes on an open engine."""
    return engine.images(IMAGE_LABEL)
