"""The command in a CI script's pipeline: a reader that stops early (`| head`, `| grep -q`)
is its choice, not a failure; the exit status still says what the command found."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import RunCli, WriteTaskfile, child_env


def _reader_gone(tmp_path: Path, *args: str, socket_: bool = False) -> tuple[int, str]:
    """Run `spawnkit ARGS` with a stdout whose reader has already gone: the first write
    fails with EPIPE, as under `| head -0` (or a socket's peer gone: socat, systemd's
    StandardOutput=socket). (exit status, stderr)."""
    if socket_:
        ours, theirs = socket.socketpair()
        read_end, write_end = ours.detach(), theirs.detach()
    else:
        read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "spawnkit.cli", *args], stdout=write_end,
                              stderr=subprocess.PIPE, text=True, env=child_env(tmp_path),
                              timeout=120)
    finally:
        os.close(write_end)
    return proc.returncode, proc.stderr


@pytest.fixture
def jobs(run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path) -> tuple[Path, Path, Path]:
    """(task file, a job folder whose tasks passed, one where a task failed)."""
    path = taskfile("".join(f'[[task]]\nid = "t{i}"\ncommand = "true"\n' for i in range(30)))
    failing = tmp_path / "failing.toml"
    failing.write_text('[[task]]\nid = "ok"\ncommand = "true"\n'
                       '[[task]]\nid = "bad"\ncommand = "exit 3"\n')
    assert run_cli("run", "-q", "--results", str(tmp_path / "passed"), str(path)).code == 0
    assert run_cli("run", "-q", "--results", str(tmp_path / "failed"), str(failing)).code == 1
    return path, tmp_path / "passed" / "latest", tmp_path / "failed" / "latest"


def test_a_reader_gone_leaves_the_exit_status_to_what_was_found(
    tmp_path: Path, jobs: tuple[Path, Path, Path]
) -> None:
    """Found by trying: `spawnkit results JOB | head -1` and `spawnkit list FILE | head -1`
    ended with exit 1, the status of a task that did not pass, every task passed; under
    `set -o pipefail` the CI step failed."""
    path, passed, failed = jobs
    for args, expected in [(("list", str(path)), 0), (("list", "--ids", str(path)), 0),
                           (("results", str(passed)), 0), (("results", str(failed)), 1),
                           (("gc", "--spawner", "process", "--dry-run"), 0)]:
        code, err = _reader_gone(tmp_path, *args)
        assert (code, err) == (expected, ""), args
    code, err = _reader_gone(tmp_path, "list", str(path), socket_=True)
    assert (code, err) == (0, ""), "a socket's peer gone"
    # Rebuilt all the same: the reader going stopped nothing but the printing.
    assert (passed / "results.json").is_file() and (failed / "results.xml").is_file()


def test_spawnkit_alone_shows_its_help_as_a_usage_error(run_cli: RunCli) -> None:
    """Found by trying: `spawnkit` with no command printed its whole help folded into one
    `error:` line."""
    alone, helped = run_cli(), run_cli("--help")
    assert alone.code == 2 and alone.stdout == ""
    assert helped.code == 0 and alone.stderr == helped.stdout
    assert "Commands:" in alone.stderr.splitlines()


def test_an_error_line_whose_reader_has_gone_keeps_its_exit_status(tmp_path: Path) -> None:
    """`spawnkit validate bad.toml 2>&1 | head -0`: still exit 2, no traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text("[[task]\n")
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "spawnkit.cli", "validate", str(bad)],
                              stdout=write_end, stderr=write_end, env=child_env(tmp_path),
                              timeout=120, check=False)
    finally:
        os.close(write_end)
    assert proc.returncode == 2


def test_json_dash_puts_the_results_alone_on_stdout(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    """`spawnkit run FILE --json - | jq ...`: stdout is the JSON document and nothing else
    (the summary goes to stderr), the same as the job's results.json; no file named '-'."""
    taskfile('[[task]]\nid = "ok"\ncommand = "true"\n[[task]]\nid = "no"\ncommand = "exit 3"\n')
    run = run_cli("run", "tasks.toml", "--json", "-")
    assert run.code == 1
    assert json.loads(run.stdout) == json.loads((run.job_dir / "results.json").read_text())
    assert "2 tasks in" in run.stderr and "1 failed" in run.stderr
    assert not (run.results_root.parent / "-").exists()
    junit = run_cli("run", "tasks.toml", "-q", "--junit", "-")
    assert junit.code == 1
    assert junit.stdout == (junit.job_dir / "results.xml").read_text()
    assert ET.fromstring(junit.stdout).get("failures") == "1"


def test_json_and_junit_cannot_both_be_stdout(run_cli: RunCli) -> None:
    both = run_cli("run", "--json", "-", "--junit", "-", "--", "true")
    assert both.code == 2
    assert both.stderr.splitlines() == [
        "spawnkit: error: --json and --junit cannot both be '-': standard output takes one "
        "document"]
    assert not both.results_root.exists()


def test_json_dash_that_stdout_cannot_take_is_exit_74(tmp_path: Path) -> None:
    """`--json - > file` on a full disk: the document is lost, so the exit says so, as for the
    job's own files (found by review: an internal error, exit 70). `./-` is a file."""
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "spawnkit.cli", "run", "--json", "-", "--",
                               "true"], stdout=full, stderr=subprocess.PIPE, text=True,
                              env=child_env(tmp_path), cwd=tmp_path, timeout=120)
    assert proc.returncode == 74, proc.stderr
    assert ("spawnkit: error: cannot write --json to standard output: No space left on device"
            in proc.stderr)
    named = subprocess.run([sys.executable, "-m", "spawnkit.cli", "run", "-q", "--json", "./-",
                            "--", "true"], capture_output=True, text=True,
                           env=child_env(tmp_path), cwd=tmp_path, timeout=120)
    assert named.returncode == 0 and "schema_version" not in named.stdout
    assert json.loads((tmp_path / "-").read_text())["passed"] is True


def test_a_stdout_on_a_full_disk_is_exit_74_not_an_internal_error(
    taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    """`spawnkit list FILE > out` with no room for `out` (found by a user's try: exit 70,
    'internal error', which says a bug of spawnkit's)."""
    path = taskfile('[[task]]\nid = "t"\ncommand = "true"\n')
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "spawnkit.cli", "list", str(path)],
                              stdout=full, stderr=subprocess.PIPE, text=True,
                              env=child_env(tmp_path), timeout=120)
    assert proc.returncode == 74
    assert proc.stderr == ("spawnkit: error: cannot write to standard output: No space left on "
                           "device\n")


def test_a_run_s_summary_on_a_full_disk_names_stdout_and_the_job_folder(
    taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    """`spawnkit run FILE > out` with no room for `out`: exit 74, and the one line says what
    was not written and where the results are (found by a user's try: 'cannot write', and no
    job folder anywhere in the log)."""
    path = taskfile('[[task]]\nid = "t"\ncommand = "true"\n')
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "spawnkit.cli", "run", "-q", str(path)],
                              stdout=full, stderr=subprocess.PIPE, text=True,
                              env=child_env(tmp_path), cwd=tmp_path, timeout=120)
    assert proc.returncode == 74, proc.stderr
    [line] = proc.stderr.splitlines()
    job_dir = (tmp_path / "results" / "latest").resolve()
    assert line == ("spawnkit: error: cannot write the summary to standard output: No space "
                    f"left on device (the results are in {job_dir})"), line
    assert json.loads((job_dir / "results.json").read_text())["passed"] is True


def test_a_copy_is_never_written_over_another_or_the_job_s_own(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """`--json X --junit X` lost one of them, and `results JOB --junit JOB/results.json`
    put XML in place of the job's results.json (found by a user's try)."""
    same = run_cli("run", "--json", "out", "--junit", "./out", "--", "true")
    assert (same.code, same.stderr) == (2, "spawnkit: error: --json and --junit name the same "
                                           "file, out: one would be lost\n")
    run = run_cli("run", "-q", "--", "true")
    own = run.job_dir / "results.json"
    before = own.read_bytes()
    refused = run_cli("results", str(run.job_dir), "--junit", str(own))
    assert refused.code == 2 and "it is one of the job's own files" in refused.stderr
    assert own.read_bytes() == before
