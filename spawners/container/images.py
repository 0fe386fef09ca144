"""Building spawnkit's own images (core.images has the recipes) on a container engine: the
recipe's script makes the root filesystem in a temporary folder, and the engine builds the
Containerfile there, `FROM scratch`, with no registry."""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
from pathlib import Path

from spawnkit.core.errors import BackendError, UsageError
from spawnkit.core.images import IMAGE_LABEL, recipe
from spawnkit.spawners.container.calls import EngineCalls
from spawnkit.spawners.container.engine import Engine, ImageInfo
from spawnkit.spawners.container.faults import engine_message

__all__ = ["build_image", "ensure_image", "list_images"]

LOG = logging.getLogger(__name__)


async def ensure_image(call: EngineCalls, engine: Engine, image: str) -> str | None:
    """None when the image is there (pulled if need be), else the engine's reason."""
    try:
        if await call(engine.image_exists, image):
            return None
        LOG.info("%s: pulling %s", engine.name, image)
        await call(engine.pull, image, idempotent=False)
    except Exception as exc:
        return engine_message(exc)
    return None


def build_image(engine: Engine, name: str, tag: str | None = None) -> tuple[str, str]:
    """Build the recipe `name` on an open engine; (tag, image ID)."""
    found = recipe(name)
    folder = found.folder
    for needed in ("Containerfile", "mkrootfs.sh"):
        if not (folder / needed).is_file():
            raise UsageError(f"image '{name}': {folder / needed} not found "
                             "(not in this install: set SPAWNKIT_IMAGES_DIR to an images/ folder)")
    tag = tag or found.tag
    with tempfile.TemporaryDirectory(prefix=f"spawnkit-image-{name}-") as tmp:
        context = Path(tmp)
        shutil.copy(folder / "Containerfile", context / "Containerfile")
        made = subprocess.run(
            ["sh", str(folder / "mkrootfs.sh"), str(context / "rootfs.tar")],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
        )
        if made.returncode != 0:
            last = (made.stderr.strip().splitlines() or ["failed"])[-1]
            raise BackendError(f"image '{name}': making its root filesystem failed: {last}")
        try:
            image_id = engine.build(str(context), "Containerfile", tag)
        except Exception as exc:
            raise BackendError(
                f"image '{name}': {engine.name} build failed",
                spawner=engine.name,
                engine_message=engine_message(exc),
            ) from exc
    return tag, image_id


def list_images(engine: Engine) -> list[ImageInfo]:
    """The images built from recipes on an open engine."""
    return engine.images(IMAGE_LABEL)
