"""Shell completion, as a user of bash gets it: an interactive bash (on a terminal of its
own) that sourced `_SPAWNKIT_COMPLETE=bash_source spawnkit`, given a line and a TAB."""

from __future__ import annotations

import os
import pty
import select
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import RunCli, WriteTaskfile, child_env

Complete = Callable[[str], str]

MATRIX_TASKS = """
[[task]]
id = "unit"
command = "echo py=${{ matrix.py }}"
matrix = { py = ["3.11", "2.7"] }

[[task]]
id = "lint"
command = "echo lint"
"""

#: Marks the line the shell prints back: what completion left on the command line.
_MARK = "@@"


@pytest.fixture
def complete(tmp_path: Path) -> Complete:
    """complete(line) -> the command line once bash has completed `line` (a TAB at its end),
    with a `spawnkit` on PATH."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "spawnkit"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m spawnkit.cli "$@"\n')
    shim.chmod(0o755)
    env = {**child_env(tmp_path), "PATH": f"{bindir}:{os.environ.get('PATH', '')}",
           "TERM": "dumb", "PS1": "$ ", "HOME": str(tmp_path)}

    def _complete(line: str) -> str:
        pid, fd = pty.fork()
        if pid == 0:  # the child: an interactive bash, reading no rc file
            os.chdir(tmp_path)
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
        # The TAB completes; Ctrl-A then puts `echo @@` before what is on the line, so the
        # shell prints the line back. readline reads the keys one by one: the completion
        # has run before it reads the next.
        keys = (f'eval "$(_SPAWNKIT_COMPLETE=bash_source spawnkit)"\n{line}\t'
                f"\x01echo {_MARK}\nexit\n")
        os.write(fd, keys.encode())
        out = b""
        while select.select([fd], [], [], 60)[0]:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:  # the shell exited: its terminal is gone
                break
            if not chunk:
                break
            out += chunk
        os.waitpid(pid, 0)
        echoed = [row.strip("\r") for row in out.decode(errors="replace").split("\n")
                  if row.startswith(_MARK)]
        assert len(echoed) == 1, out
        return echoed[0][len(_MARK):]

    return _complete


def test_commands_and_options_complete(complete: Complete) -> None:
    assert complete("spawnkit lis") == "spawnkit list"
    assert complete("spawnkit run --max-ru") == "spawnkit run --max-running"


def test_spawner_completes_to_the_registered_backends(complete: Complete) -> None:
    assert complete("spawnkit gc --spawner po") == "spawnkit gc --spawner podman"
    # bash splits `--spawner=po` at the `=` (found by review: nothing was offered).
    assert complete("spawnkit run --spawner=po") == "spawnkit run --spawner=podman"


def test_only_completes_to_the_task_file_s_ids(
    complete: Complete, taskfile: WriteTaskfile
) -> None:
    taskfile(MATRIX_TASKS)
    assert complete("spawnkit run tasks.toml --only li") == "spawnkit run tasks.toml --only lint"
    assert complete("spawnkit run tasks.toml --only=li") == "spawnkit run tasks.toml --only=lint"
    # A matrix expansion's id holds `=` and `,`, which bash splits words at or not.
    assert complete("spawnkit run tasks.toml --only unit[py=2") == (
        "spawnkit run tasks.toml --only unit[py=2.7]")
    assert complete("spawnkit list tasks.toml --exclude lint,unit[py=3") == (
        "spawnkit list tasks.toml --exclude lint,unit[py=3.11]")


def test_a_task_file_that_cannot_be_read_completes_nothing_and_says_nothing(
    complete: Complete, taskfile: WriteTaskfile
) -> None:
    taskfile("[[task]]\nid = 'lint'\n")  # no command
    assert complete("spawnkit run tasks.toml --only li") == "spawnkit run tasks.toml --only li"
    assert complete("spawnkit run missing.toml --only li") == (
        "spawnkit run missing.toml --only li")


def test_logs_and_shell_complete_to_the_job_s_tasks(
    complete: Complete, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    taskfile(MATRIX_TASKS)
    assert run_cli("run", "tasks.toml", "-q").code == 0
    job = str((tmp_path / "results" / "latest").resolve())
    assert complete(f"spawnkit logs {job} li") == f"spawnkit logs {job} lint"
    assert complete(f"spawnkit shell {job} unit[py=3") == f"spawnkit shell {job} unit[py=3.11]"


def test_logs_of_a_matrix_task_prints_every_expansion(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    taskfile(MATRIX_TASKS)
    assert run_cli("run", "tasks.toml", "-q").code == 0
    shown = run_cli("logs", str(tmp_path / "results" / "latest"), "unit")
    assert shown.code == 0, shown.stderr
    assert shown.stdout.splitlines() == ["[unit[py=3.11]] py=3.11", "[unit[py=2.7]] py=2.7"]


def test_an_unknown_completion_instruction_is_one_line(run_cli: RunCli) -> None:
    done = run_cli(env={"_SPAWNKIT_COMPLETE": "tcsh_source"})
    assert done.code == 2
    assert done.stderr.splitlines() == [
        "spawnkit: error: _SPAWNKIT_COMPLETE=tcsh_source: not a shell completion instruction "
        "(bash_source, zsh_source or fish_source)"]


def test_a_matrix_id_of_two_axes_completes_and_is_no_glob(
    complete: Complete, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    """Inside the brackets a comma is no separator, and the id goes in escaped: unquoted,
    `unit[py=3.11,db=pg]` is a glob that a file named `unit1` matches (found by a user's try:
    the shell ran `--only unit1`)."""
    taskfile('[[task]]\nid = "unit"\ncommand = "true"\n'
             'matrix = { py = ["3.11"], db = ["pg", "my"] }\n')
    (tmp_path / "unit1").touch()
    assert complete("spawnkit list tasks.toml --only unit[py=3.11,db=p") == (
        "spawnkit list tasks.toml --only unit[py=3.11,db=pg]")
