"""The command line on every backend: one task file, swapped by one flag."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import REPO, RunCli, WriteTaskfile
from tests.engines.conftest import ENGINES, TEST_IMAGE, containers_of, task_gone
from tests.engines.kubernetes_cluster import POD_NAME

EXAMPLE = REPO / "examples" / "basic.toml"


def test_example_runs_unchanged(spawner_name: str, run_cli: RunCli, no_leftovers: None) -> None:
    done = run_cli("run", str(EXAMPLE), "--spawner", spawner_name, "-q")
    assert done.code == 0, done.stdout + done.stderr
    tasks = done.results["tasks"]
    assert tasks and all(t["result"] == "passed" for t in tasks)
    handle = (re.compile(r"[0-9a-f]{64}") if spawner_name in ENGINES
              else POD_NAME if spawner_name == "kubernetes" else re.compile(r"[0-9]+"))
    for t in tasks:
        assert t["spawner"] == spawner_name
        assert handle.fullmatch(t["handle"]), t["handle"]
    if spawner_name in (*ENGINES, "kubernetes"):
        assert task_gone(spawner_name, done.job_dir.name, "")


def test_timeout_within_grace(
    engine_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    """`sleep 100` with timeout 2 ends as timed out within 2 s + grace + 1 s."""
    path = taskfile(f'[[task]]\nid = "sleepy"\ncommand = "sleep 100"\ntimeout = 2\n'
                    f'image = "{TEST_IMAGE}"\n')
    grace = 1.0
    done = run_cli("run", str(path), "--spawner", engine_name, "--grace", str(grace), "-q")
    assert done.code == 1
    rec = done.task("sleepy")
    assert rec["result"] == "timed_out"
    assert rec["duration"] <= 2 + grace + 1, rec["duration"]
    assert containers_of(engine_name, done.job_dir.name) == []


def test_nothing_left_after_any_job(
    engine_name: str, run_cli: RunCli, taskfile: WriteTaskfile, no_leftovers: None
) -> None:
    """Passed, failed, timed out, failfast: no container of the job stays on the engine."""
    path = taskfile(
        f'[defaults]\nimage = "{TEST_IMAGE}"\n'
        '[[task]]\nid = "ok"\ncommand = "true"\n'
        '[[task]]\nid = "bad"\ncommand = "exit 4"\n'
        '[[task]]\nid = "slow"\ncommand = "sleep 100"\ntimeout = 1\n'
    )
    for extra in ([], ["--failfast"]):
        done = run_cli("run", str(path), "--spawner", engine_name, "--grace", "0.5", "-q", *extra)
        assert done.code == 1
        assert containers_of(engine_name, done.job_dir.name) == []


def test_image_from_the_command_line(
    engine_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None
) -> None:
    done = run_cli("run", "--spawner", engine_name, "--image", TEST_IMAGE, "-q", "--",
                   "sh", "-c", "echo from $0")
    assert done.code == 0, done.stderr
    assert (done.job_dir / done.task("command")["stdout"]).read_text() == "from sh\n"
