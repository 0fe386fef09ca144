"""Shared fixtures: run the real command line, read a job's results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str
    results_root: Path

    @property
    def job_dir(self) -> Path:
        return (self.results_root / "latest").resolve()

    @property
    def results(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.job_dir / "results.json").read_text())
        return data

    def task(self, task_id: str) -> dict[str, Any]:
        for t in self.results["tasks"]:
            if t["id"] == task_id:
                return dict(t)
        raise KeyError(task_id)


RunCli = Callable[..., CliRun]


def cli_env(tmp_path: Path) -> dict[str, str]:
    """Results and the runs index under tmp_path: tests never see each other's jobs."""
    return {"SPAWNKIT_RESULTS": str(tmp_path / "results"),
            "SPAWNKIT_STATE_DIR": str(tmp_path / "state")}


#: A CI's own sharding variables: a spawnkit the tests start must not shard itself by them.
SHARD_VARIABLES = ("CI_NODE_INDEX", "CI_NODE_TOTAL", "BUILDKITE_PARALLEL_JOB",
                   "BUILDKITE_PARALLEL_JOB_COUNT")


def child_env(tmp_path: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a spawnkit the tests start."""
    env = {k: v for k, v in os.environ.items() if k not in SHARD_VARIABLES}
    return {**env, **cli_env(tmp_path), **(extra or {})}
WriteTaskfile = Callable[[str], Path]


@pytest.fixture
def run_cli(tmp_path: Path) -> RunCli:
    """Run `spawnkit ARGS` in a child process, with results under tmp_path."""

    def _run(
        *args: str, timeout: float = 120, env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> CliRun:
        root = tmp_path / "results"
        full_env = child_env(tmp_path, env)
        proc = subprocess.run(
            [sys.executable, "-m", "spawnkit.cli", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            cwd=cwd or tmp_path,
        )
        return CliRun(proc.returncode, proc.stdout, proc.stderr, root)

    return _run


@pytest.fixture
def taskfile(tmp_path: Path) -> WriteTaskfile:
    def _write(text: str, name: str = "tasks.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return _write


@pytest.fixture
def full_results_disk(tmp_path: Path) -> Iterator[Path]:
    """tmp_path/results on a file system of its own, 1 MiB (a tmpfs: root only, as CI runs
    the tests), so a task's output can fill it. Set up before `no_leftovers` (named first),
    so the job folders are still there when that looks for what they left."""
    results = tmp_path / "results"
    results.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "spawnkit-test",
                            str(results)], capture_output=True, text=True, check=False)
    if mount.returncode != 0:
        why = f"cannot mount a small file system: {mount.stderr.strip()}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {why}", pytrace=False)
        pytest.skip(why)
    try:
        yield results
    finally:
        umount = subprocess.run(["umount", "--lazy", str(results)], capture_output=True,
                                text=True, check=False)
        assert umount.returncode == 0, f"the test's tmpfs stays mounted: {umount.stderr}"
