"""Shell completion, as a user of bash gets it: the script `_SPAWNKIT_COMPLETE=bash_source
spawnkit` prints, sourced into a real bash, asked for what follows the words typed."""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RunCli, WriteTaskfile, child_env

Complete = Callable[..., list[str]]

MATRIX_TASKS = """
[[task]]
id = "unit"
command = "echo py=${{ matrix.py }}"
matrix = { py = ["3.11", "3.12"] }

[[task]]
id = "lint"
command = "echo lint"
"""


@pytest.fixture
def complete(tmp_path: Path) -> Complete:
    """complete(*words) -> what bash offers for the last word (an empty one: a TAB after a
    space), through the sourced script and a `spawnkit` found on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "spawnkit"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m spawnkit.cli "$@"\n')
    shim.chmod(0o755)
    env = child_env(tmp_path)
    env["PATH"] = f"{bindir}:{env.get('PATH', '')}"

    def _complete(*words: str) -> list[str]:
        typed = " ".join(shlex.quote(w) if w else "''" for w in ("spawnkit", *words))
        script = (
            'eval "$(_SPAWNKIT_COMPLETE=bash_source spawnkit)"\n'
            f"COMP_WORDS=({typed}); COMP_CWORD={len(words)}\n"
            "_spawnkit_completion spawnkit\n"
            'printf "%s\\n" "${COMPREPLY[@]}"\n'
        )
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=60, check=False)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return [line for line in proc.stdout.splitlines() if line]

    return _complete


def test_commands_and_options_complete(complete: Complete) -> None:
    assert complete("r") == ["results", "resume", "run"]
    assert "--max-running" in complete("run", "--max")


def test_spawner_completes_to_the_registered_backends(complete: Complete) -> None:
    offered = complete("run", "--spawner", "")
    assert {"process", "docker", "podman", "slurm", "kubernetes"} <= set(offered)
    assert complete("gc", "--spawner", "po") == ["podman"]


def test_only_completes_to_the_task_file_s_ids(
    complete: Complete, taskfile: WriteTaskfile
) -> None:
    taskfile(MATRIX_TASKS)
    assert complete("run", "tasks.toml", "--only", "") == [
        "unit", "unit[py=3.11]", "unit[py=3.12]", "lint"]
    # After a comma: the ids not named yet, the value typed so far kept in front.
    assert complete("list", "tasks.toml", "--exclude", "lint,u") == [
        "lint,unit", "lint,unit[py=3.11]", "lint,unit[py=3.12]"]


def test_a_task_file_that_cannot_be_read_completes_nothing_and_says_nothing(
    complete: Complete, taskfile: WriteTaskfile
) -> None:
    taskfile("[[task]]\nid = 'x'\n")  # no command
    assert complete("run", "tasks.toml", "--only", "") == []
    assert complete("run", "missing.toml", "--only", "") == []


def test_logs_completes_to_the_job_s_tasks(
    complete: Complete, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    taskfile(MATRIX_TASKS)
    assert run_cli("run", "tasks.toml", "-q").code == 0
    job = str(tmp_path / "results" / "latest")
    assert complete("logs", job, "") == ["unit", "unit[py=3.11]", "unit[py=3.12]", "lint"]
    assert complete("shell", job, "u") == ["unit[py=3.11]", "unit[py=3.12]"]


def test_logs_of_a_matrix_task_prints_every_expansion(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    taskfile(MATRIX_TASKS)
    assert run_cli("run", "tasks.toml", "-q").code == 0
    shown = run_cli("logs", str(tmp_path / "results" / "latest"), "unit")
    assert shown.code == 0, shown.stderr
    assert shown.stdout.splitlines() == ["[unit[py=3.11]] py=3.11", "[unit[py=3.12]] py=3.12"]


def test_an_unknown_completion_instruction_is_one_line(run_cli: RunCli) -> None:
    done = run_cli(env={"_SPAWNKIT_COMPLETE": "tcsh_source"})
    assert done.code == 2
    assert done.stderr.splitlines() == [
        "spawnkit: error: _SPAWNKIT_COMPLETE=tcsh_source: not a shell completion instruction "
        "(bash_source, zsh_source or fish_source)"]
