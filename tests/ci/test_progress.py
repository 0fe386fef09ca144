"""Progress: a live line on a terminal, plain lines in a CI log, a GitHub step summary."""

from __future__ import annotations

import dataclasses
import io
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

from spawnkit.cli.progress import Mode, Progress, choose_mode, step_summary
from spawnkit.core.results import JobResult, TaskRecord
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import Cause, TaskResult
from spawnkit.core.task.statusrepo import StatusRepo
from tests.ci.conftest import cli_env

TWO_TASKS = """
[[task]]
id = "quick"
command = "true"

[[task]]
id = "slowpoke"
command = "sleep 0.3; exit 1"
"""
RESULT_WORDS = "passed|failed|error|timed_out|skipped|interrupted|not_run|lost"
PLAIN_LINE = re.compile(rf"^\[\s*\d+\.\ds\] (start|{RESULT_WORDS})\s+(\S+)")


def run_on_pty(args: list[str], env: dict[str, str], *, stdout_too: bool,
               timeout: float = 30) -> tuple[int, str, str]:
    """Run the CLI with stderr (and maybe stdout) on a pseudo-terminal; (code, pty, stdout)."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spawnkit.cli", *args], stdin=subprocess.DEVNULL,
        stdout=slave if stdout_too else subprocess.PIPE, stderr=slave, env=env,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        out = proc.stdout.read().decode() if proc.stdout else ""
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, b"".join(chunks).decode(errors="replace"), out


def test_live_line_on_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(TWO_TASKS)
    env = cli_env(TERM="xterm", COLUMNS="200", SPAWNKIT_RESULTS=str(tmp_path / "r"))
    code, screen, _ = run_on_pty(["run", str(path)], env, stdout_too=True)
    assert code == 1, screen
    # Redrawn in place: carriage return and erase-line before each drawing.
    draws = [d for d in screen.split("\r\x1b[2K") if "done" in d]
    assert draws, screen
    plain = [re.sub(r"\x1b\[[0-9;]*m", "", d) for d in draws]
    running = [d for d in plain if "running: " in d]
    assert any("slowpoke" in d.split("running: ")[1] for d in running), plain
    assert any(re.match(r"\d+\.\ds \| \d/2 done", d) for d in plain), plain
    assert any("1 failed" in d for d in plain), plain
    # What needs a look stays on screen above the live line.
    assert re.search(r"\] .*failed.* slowpoke .*exit code 1", screen)
    assert "results:" in screen  # the line is cleared before the last words


def test_ci_true_gives_plain_lines_even_on_a_terminal(tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(TWO_TASKS)
    env = cli_env(TERM="xterm", CI="true", SPAWNKIT_RESULTS=str(tmp_path / "r"))
    code, screen, stdout = run_on_pty(["run", str(path)], env, stdout_too=False)
    assert code == 1
    assert "\x1b" not in screen and "\r\n" in screen  # the terminal adds \r to each \n
    lines = screen.replace("\r\n", "\n").splitlines()
    progress, last = lines[:-1], lines[-1]
    assert last.startswith("results: ")
    assert len(progress) == 4 and all(PLAIN_LINE.match(line) for line in progress), lines
    ids = sorted(m.group(2) for m in map(PLAIN_LINE.match, progress) if m)
    assert ids == ["quick"] * 2 + ["slowpoke"] * 2
    assert "slowpoke" in stdout  # the summary table still goes to stdout


def test_quiet_and_verbose(tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(TWO_TASKS)
    env = cli_env(CI="true", SPAWNKIT_RESULTS=str(tmp_path / "r"))
    base = [sys.executable, "-m", "spawnkit.cli", "run", str(path)]
    quiet = subprocess.run([*base, "-q"], capture_output=True, text=True, env=env, timeout=30)
    assert quiet.stderr.splitlines()[0].startswith("results: ")
    verbose = subprocess.run([*base, "-v"], capture_output=True, text=True, env=env, timeout=30)
    # The command and the handle (a PID for the process backend) of each task as it starts.
    assert re.search(r"start\s+slowpoke: sleep 0.3; exit 1 \[\d+\]\n", verbose.stderr)


def test_github_step_summary_is_appended(tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(TWO_TASKS)
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    env = cli_env(CI="true", GITHUB_STEP_SUMMARY=str(summary),
                  SPAWNKIT_RESULTS=str(tmp_path / "r"))
    proc = subprocess.run([sys.executable, "-m", "spawnkit.cli", "run", str(path), "-q"],
                          capture_output=True, text=True, env=env, timeout=30)
    assert proc.returncode == 1
    text = summary.read_text()
    assert text.startswith("earlier step\n### spawnkit `tasks.toml`: 1 of 2 passed")
    assert "| task | result | time | reason |" in text
    assert re.search(r"\| `slowpoke` \| :x: failed \| \d+\.\d\ds \| exit code 1 \|", text)


def test_step_summary_escapes_table_breakers() -> None:
    record = TaskRecord(
        id="a|b", result=TaskResult.FAILED, status="finished", cause=Cause.EXIT_CODE,
        reason="x | y\nz", exit_code=1,
        signal=None, oom=False, start=None, end=None, duration=None, spawner=None, handle=None,
        command="c", depends_on=[], image=None, limits={}, stdout="o", stderr="e",
    )
    text = step_summary(JobResult("job", None, None, None, None, [record]))
    row = text.strip().splitlines()[-1]
    assert row == r"| `a\|b` | :x: failed | - | x \| y z |"
    # A backtick in an id: a longer fence around it (found by a user's try: the row broke).
    ticked = dataclasses.replace(record, id="a`b")
    text = step_summary(JobResult("job", None, None, None, None, [ticked]))
    assert text.strip().splitlines()[-1].startswith("| `` a`b `` | :x: failed |")


def test_mode_choice() -> None:
    tty = io.StringIO()
    tty.isatty = lambda: True  # type: ignore[method-assign]
    assert choose_mode(tty, quiet=False, env={}) is Mode.LIVE
    assert choose_mode(tty, quiet=False, env={"CI": "true"}) is Mode.PLAIN
    assert choose_mode(tty, quiet=False, env={"CI": "false"}) is Mode.LIVE
    assert choose_mode(io.StringIO(), quiet=False, env={}) is Mode.PLAIN
    assert choose_mode(tty, quiet=True, env={}) is Mode.QUIET


def test_live_line_fits_and_counts() -> None:
    out = io.StringIO()
    tasks = [Task.make(f"task-{i}", "true") for i in range(30)]
    progress = Progress(tasks, out=out, mode=Mode.LIVE, color=False, clock=lambda: 0.0)
    repo = StatusRepo(clock=lambda: 0.0)
    repo.add_listener(progress)
    for t in tasks[:25]:
        repo.record(t.id, "started", handle="1")
    repo.record("task-0", "finished", result="passed", reason=None)
    repo.record("task-1", "finished", result="failed", reason="exit code 1")
    line = progress.live_line()
    assert line.startswith("0.0s | 2/30 done | 1 passed | 1 failed | 5 waiting | 23 running: ")
    assert len(line) <= 99 and line.endswith("...")
    progress.close()
    assert out.getvalue().endswith("\r\x1b[2K")


def test_gitlab_sections_of_two_ids_alike_are_two(tmp_path: Path) -> None:
    """Each failed task's output in a section of its own on GitLab, also for ids that differ
    only in what a section name cannot hold (found at an earlier stop: `a b` and `a/b` got
    one name)."""
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "a b"\ncommand = "echo one; exit 1"\n'
                    '[[task]]\nid = "a/b"\ncommand = "echo two; exit 1"\n')
    env = cli_env(CI="true", GITLAB_CI="true", SPAWNKIT_RESULTS=str(tmp_path / "r"))
    proc = subprocess.run([sys.executable, "-m", "spawnkit.cli", "run", str(path)],
                          capture_output=True, env=env, timeout=30)
    assert proc.returncode == 1
    log = proc.stderr.decode()  # as bytes: text mode would turn each \r into a line end
    starts = re.findall(r"section_start:\d+:([^\[\r]+)\[collapsed=true\]\r\x1b\[0K(a.b):",
                        log)
    ends = re.findall(r"section_end:\d+:([^\r]+)\r", log)
    assert sorted(task for _name, task in starts) == ["a b", "a/b"], log
    names = [name for name, _task in starts]
    assert len(set(names)) == 2 and sorted(ends) == sorted(names), (names, ends)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", name) for name in names), names
