"""The process backend says which isolation settings it cannot enforce; --strict refuses."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import RunCli, WriteTaskfile

TASKS = (
    '[defaults]\nimage = "spawnkit-busybox:latest"\n'
    '[[task]]\nid = "a"\ncommand = "true"\nmemory = "64m"\nnetwork = "none"\n'
    '[[task]]\nid = "b"\ncommand = "true"\nnetwork = "none"\n'
    '[[task]]\nid = "c"\ncommand = "true"\n'
    '[[task]]\nid = "d"\ncommand = ["echo", "cmd"]\nentrypoint = ["echo", "entry"]\n'
)


def test_warning_names_each_setting_and_its_tasks(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    run = run_cli("run", str(taskfile(TASKS)))
    assert run.code == 0
    warnings = [line for line in run.stderr.splitlines() if "cannot enforce" in line]
    assert warnings == [
        "spawnkit: WARNING: the process backend cannot enforce: entrypoint (d), memory (a), "
        "network (a, b): ignored"
    ]
    # What it ran: the command alone, as the warning says.
    assert (run.job_dir / "tasks" / "d" / "stdout").read_text() == "cmd\n"


def test_strict_refuses_before_anything_runs(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    run = run_cli("run", "--strict", str(taskfile(TASKS)))
    assert run.code == 2
    assert run.stderr.strip().splitlines() == [
        "spawnkit: error: the process backend cannot enforce: entrypoint (d), memory (a), "
        "network (a, b); use a container backend, or drop --strict"
    ]
    assert not (tmp_path / "results" / "latest").exists()
