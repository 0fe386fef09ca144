"""Backends are plug-ins: one registered only through the `spawnkit.spawners` entry-point
group is a backend like spawnkit's own, for `run`, `gc` and `images`."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import RunCli, WriteTaskfile

PLUGIN = '''
from spawnkit.core.spawner import ImageRecord
from spawnkit.spawners.process import ProcessSpawner


class FakeSpawner(ProcessSpawner):
    """Runs tasks as processes, under another name, with leftovers to report."""

    name = "fake"
    builds_images = True

    async def reap_orphans(self, *, dry_run=False):
        return [f"fake leftover (dry run: {dry_run})"]

    async def list_images(self):
        return [ImageRecord("busybox", ("fake-busybox:1",), "sha256:0123456789abcdef", 1, 0.0)]
'''


def _install_plugin(root: Path) -> dict[str, str]:
    site = root / "site"
    (site / "fake_spawnkit_backend-1.0.dist-info").mkdir(parents=True)
    (site / "fake_spawnkit_backend.py").write_text(PLUGIN)
    info = site / "fake_spawnkit_backend-1.0.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-spawnkit-backend\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[spawnkit.spawners]\nfake = fake_spawnkit_backend:FakeSpawner\n")
    return {"PYTHONPATH": str(site)}


def test_gc_asks_a_backend_registered_only_as_an_entry_point(
    run_cli: RunCli, tmp_path: Path
) -> None:
    env = _install_plugin(tmp_path)
    run = run_cli("gc", "--dry-run", env=env)
    assert run.code == 0, run.stderr
    assert "fake: would remove fake leftover (dry run: True)" in run.stdout.splitlines()


def test_a_plugin_runs_tasks_and_lists_images(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    env = _install_plugin(tmp_path)
    path = taskfile('[[task]]\nid = "hello"\ncommand = ["echo", "from a plug-in"]\n')
    run = run_cli("run", "--spawner", "fake", str(path), env=env)
    assert run.code == 0, run.stderr
    assert run.results["spawner"] == "fake"
    assert (run.job_dir / "tasks" / "hello" / "stdout").read_text() == "from a plug-in\n"
    listed = run_cli("images", "list", "--spawner", "fake", env=env)
    assert listed.code == 0, listed.stderr
    assert "fake-busybox:1" in listed.stdout and "0123456789ab" in listed.stdout


def test_an_unknown_backend_is_one_line_naming_the_choices(run_cli: RunCli) -> None:
    run = run_cli("run", "--spawner", "nope", "--", "true")
    assert run.code == 2
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("spawnkit: error: unknown spawner 'nope' (choose from: docker, ")
    assert "process" in line and "podman" in line


def test_core_imports_no_backend() -> None:
    """Backends import core; core never imports a backend (nor the command line)."""
    core = Path(__file__).resolve().parents[2] / "core"
    offenders = []
    for path in core.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names
                          if n.startswith(("spawnkit.spawners", "spawnkit.cli"))]
    assert offenders == []
