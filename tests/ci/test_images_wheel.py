"""The image recipes ship in the wheel: `spawnkit images build` works from an install, with
no checkout in sight (the wheel is built from a copy of the sources and unpacked, as pip
installs it, outside the checkout)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.engines.conftest import engine_cli, require_engine

SOURCES = ("pyproject.toml", "README.md", "core", "spawners", "cli", "images")
RECIPE_FILES = ("Containerfile", "mkrootfs.sh")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """site-packages of an install from the wheel: the folder that holds `spawnkit/`."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(item, src / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps",
         "-w", str(root / "dist"), str(src)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (root / "dist").glob("spawnkit-*.whl")
    site = root / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    return site


def _from_install(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # The install's folder first on the path: its `spawnkit` is found before the checkout's
    # editable one (which is on the path only through an import hook of its own, last).
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("SPAWNKIT_IMAGES_DIR", None)
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env=env, check=False)


def test_the_recipes_are_in_the_wheel_and_found_there(installed: Path, tmp_path: Path) -> None:
    for recipe in ("busybox", "python"):
        for name in RECIPE_FILES:
            assert (installed / "spawnkit" / "images" / recipe / name).is_file()
    found = _from_install(installed, "-c", "from spawnkit.core.images import images_dir;"
                          "print(images_dir())", cwd=tmp_path)
    assert found.returncode == 0, found.stderr
    assert Path(found.stdout.strip()) == installed / "spawnkit" / "images"


@pytest.mark.docker
@pytest.mark.engine
def test_images_build_works_from_the_install(installed: Path, tmp_path: Path) -> None:
    require_engine("docker")
    tag = f"spawnkit-wheel-check:{tmp_path.name.lower()}"
    try:
        done = _from_install(installed, "-m", "spawnkit.cli", "images", "build", "busybox",
                             "--spawner", "docker", "--tag", tag, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.startswith(f"docker: built {tag} (")
        said = engine_cli("docker", "run", "--rm", tag, "echo", "from the wheel's recipe")
        assert said == "from the wheel's recipe\n"
    finally:
        engine_cli("docker", "rmi", tag, check=False)
