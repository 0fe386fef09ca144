"""The images spawnkit builds itself, with no registry: their recipes and where they are.

Each recipe is a folder `images/NAME/` holding a `Containerfile` and a `mkrootfs.sh` that
writes the image's root filesystem as `rootfs.tar` (from Debian's own packages: busybox-static,
or debootstrap); the Containerfile builds `FROM scratch` on that tar, so no base image is ever
pulled. A backend that runs images (`Spawner.builds_images`) knows how to build them.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass
from pathlib import Path

from spawnkit.core.errors import UsageError

__all__ = ["IMAGE_LABEL", "RECIPES", "Recipe", "images_dir", "recipe"]

#: Every image built from a recipe carries it, with the recipe's name as value.
IMAGE_LABEL = "spawnkit.image"


@dataclass(frozen=True)
class Recipe:
    name: str
    tag: str
    summary: str
    slow: bool = False  # minutes, not seconds: built on request only

    @property
    def folder(self) -> Path:
        return images_dir() / self.name


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
    """The recipes: $SPAWNKIT_IMAGES_DIR, else those installed with spawnkit (the package
    `spawnkit.images`: the checkout's `images/` in an editable install)."""
    given = os.environ.get("SPAWNKIT_IMAGES_DIR")
    if given:
        return Path(given)
    installed = importlib.resources.files("spawnkit.images")
    if not isinstance(installed, Path):
        # A zipped install: the build runs a recipe's script, which needs a real file.
        raise UsageError("spawnkit's image recipes are not on the file system here (a zipped "
                         "install): set SPAWNKIT_IMAGES_DIR to a copy of its images/ folder")
    return installed


def recipe(name: str) -> Recipe:
    found = RECIPES.get(name)
    if found is None:
        raise UsageError(f"unknown image '{name}' (choose from: {', '.join(sorted(RECIPES))})")
    return found
