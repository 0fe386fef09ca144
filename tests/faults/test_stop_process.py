"""Interruption and a runner's death on the process backend: nothing lost, nothing left."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import RunCli, child_env
from tests.faults.jobs import wait_until
from tests.helpers import pid_alive


def _job_with_markers(tmp_path: Path, n: int, *, ignore_term: bool = False) -> Path:
    """n tasks that each record their PID in a marker file, then wait; one more queued."""
    trap = "trap '' TERM; " if ignore_term else ""
    text = ""
    for i in range(n):
        marker = tmp_path / f"pid{i}"
        text += (f'[[task]]\nid = "t{i}"\n'
                 f'command = ["sh", "-c", "{trap}echo $$ > {marker}.tmp; mv {marker}.tmp {marker};'
                 f' sleep 100"]\n')
    text += '[[task]]\nid = "queued"\ncommand = "true"\ndepends_on = ["t0"]\n'
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    return path


def _start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "spawnkit.cli", "run", *args],
        env=child_env(tmp_path), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_markers(tmp_path: Path, n: int, proc: subprocess.Popen[str]) -> list[int]:
    deadline = time.monotonic() + 30
    markers = [tmp_path / f"pid{i}" for i in range(n)]
    while not all(m.exists() for m in markers):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "tasks did not start"
        time.sleep(0.01)
    return [int(m.read_text()) for m in markers]


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_the_job_and_keeps_every_result(tmp_path: Path, sig: int, code: int) -> None:
    grace = 1.0
    proc = _start(tmp_path, "--grace", str(grace), "--max-running", "3",
                  str(_job_with_markers(tmp_path, 3, ignore_term=True)))
    pids = _wait_markers(tmp_path, 3, proc)
    proc.send_signal(sig)
    sent = time.monotonic()
    _out, err = proc.communicate(timeout=30)
    assert time.monotonic() - sent <= grace + 2, err
    assert proc.returncode == code, err
    results = json.loads((tmp_path / "results" / "latest" / "results.json").read_text())
    by_id = {t["id"]: t for t in results["tasks"]}
    assert len(by_id) == 4
    assert {by_id[f"t{i}"]["result"] for i in range(3)} == {"interrupted"}
    assert by_id["queued"]["result"] == "not_run"
    name = signal.Signals(sig).name
    assert by_id["t0"]["reason"] == f"interrupted: {name} received"
    # Said when it came, not a grace later with the tasks' ends.
    assert (f"spawnkit: WARNING: {name} received: stopping the job (running tasks get SIGTERM, "
            "then SIGKILL after 1 s; a second signal kills them at once)") in err.splitlines()
    assert not [p for p in pids if pid_alive(p)]


def test_second_signal_kills_at_once(tmp_path: Path) -> None:
    proc = _start(tmp_path, "--grace", "60", str(_job_with_markers(tmp_path, 2, ignore_term=True)))
    pids = _wait_markers(tmp_path, 2, proc)
    proc.send_signal(signal.SIGINT)
    # The first signal is in once the journal shows a task terminating; then the second.
    journal = tmp_path / "results" / "latest" / "journal.jsonl"
    deadline = time.monotonic() + 10
    while '"terminating"' not in journal.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    proc.communicate(timeout=30)
    assert time.monotonic() - sent < 5  # far below the 60 s grace
    assert proc.returncode == 130
    assert not [p for p in pids if pid_alive(p)]


def test_runner_killed_then_gc_and_results_rebuild(tmp_path: Path, run_cli: RunCli) -> None:
    proc = _start(tmp_path, "--max-running", "4", str(_job_with_markers(tmp_path, 4)))
    pids = _wait_markers(tmp_path, 4, proc)
    proc.kill()
    proc.communicate()
    job_dir = (tmp_path / "results" / "latest").resolve()
    assert all(pid_alive(p) for p in pids)  # the orphans gc is for
    assert not (job_dir / "results.json").exists()

    dry = run_cli("gc", "--spawner", "process", "--dry-run")
    assert dry.code == 0 and dry.stdout.count("would remove process group") == 4
    assert all(pid_alive(p) for p in pids)

    gc = run_cli("gc", "--spawner", "process")
    assert gc.code == 0, gc.stderr
    assert gc.stdout.count("removed process group") == 4
    assert not [p for p in pids if pid_alive(p)]

    # The CI's own copy too: its runner died before writing it (found by a user's try).
    copy = tmp_path / "ci" / "junit.xml"
    rebuilt = run_cli("results", str(job_dir), "--junit", str(copy))
    assert rebuilt.code == 1
    assert copy.read_bytes() == (job_dir / "results.xml").read_bytes()
    data = json.loads((job_dir / "results.json").read_text())
    by_id = {t["id"]: t["result"] for t in data["tasks"]}
    assert by_id == {"t0": "lost", "t1": "lost", "t2": "lost", "t3": "lost", "queued": "not_run"}
    assert (job_dir / "results.xml").exists()

    again = run_cli("gc", "--spawner", "process")
    assert again.stdout.strip().endswith("0 items removed")


def test_gc_and_results_never_touch_a_live_runner(tmp_path: Path, run_cli: RunCli) -> None:
    proc = _start(tmp_path, str(_job_with_markers(tmp_path, 2)))
    try:
        pids = _wait_markers(tmp_path, 2, proc)
        gc = run_cli("gc", "--spawner", "process")
        assert gc.code == 0 and "0 items removed" in gc.stdout
        assert all(pid_alive(p) for p in pids)
        # Its running tasks are not lost: their runner writes the results when it ends.
        job_dir = (tmp_path / "results" / "latest").resolve()
        rebuilt = run_cli("results", str(job_dir))
        assert rebuilt.code == 2 and "the job is being run" in rebuilt.stderr
        assert len(rebuilt.stderr.strip().splitlines()) == 1
        assert not (job_dir / "results.json").exists()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


def test_results_of_a_folder_without_journal_is_one_line(run_cli: RunCli, tmp_path: Path) -> None:
    run = run_cli("results", str(tmp_path))
    assert run.code == 2
    assert len(run.stderr.strip().splitlines()) == 1 and "journal.jsonl" in run.stderr


def test_a_dead_runner_s_task_still_times_out(tmp_path: Path, run_cli: RunCli) -> None:
    """After a `kill -9` of the runner, the task supervisor stops a task at its deadline as
    the runner would (TERM, the grace, KILL: this one ignores TERM), and a resume reports it
    timed out. A task with no timeout runs on: a resume takes it over."""
    bounded, free, go = tmp_path / "pid0", tmp_path / "pid1", tmp_path / "go"
    left = tmp_path / "left"
    path = tmp_path / "tasks.toml"
    path.write_text(
        f'[[task]]\nid = "bounded"\ntimeout = 2\n'
        f'command = "trap \'\' TERM; setsid sleep 307 & echo $! > {left}; echo $$ > {bounded}; '
        'sleep 300"\n'
        f'[[task]]\nid = "free"\n'
        f'command = "echo $$ > {free}; while [ ! -e {go} ]; do sleep 0.05; done"\n')
    proc = _start(tmp_path, "--grace", "1", str(path))
    for marker in (bounded, free):
        wait_until(lambda m=marker: m.exists() and m.read_text().strip(), 30, "the tasks")
    pids = [int(marker.read_text()) for marker in (bounded, free)]
    proc.kill()
    proc.communicate()
    job_dir = (tmp_path / "results" / "latest").resolve()
    status = job_dir / "tasks" / "bounded" / "exit-status"
    wait_until(status.exists, 30, "the supervisor's stop of the task past its deadline")
    assert os.WTERMSIG(int(status.read_text())) == signal.SIGKILL
    assert not pid_alive(pids[0]) and pid_alive(pids[1])
    go.touch()
    resumed = run_cli("resume", str(job_dir))
    assert resumed.code == 1, resumed.stderr
    by_id = {t["id"]: t for t in json.loads((job_dir / "results.json").read_text())["tasks"]}
    assert (by_id["bounded"]["result"], by_id["bounded"]["reason"]) == (
        "timed_out", "timed out after 2 s (stopped by the task supervisor: no runner was "
        "watching)")
    assert by_id["free"]["result"] == "passed"
    # What it left outside its group ends once the supervisor's tasks have (found by review:
    # it ran on for good).
    wait_until(lambda: not pid_alive(int(left.read_text())), 30, "the leftover's end")


def test_a_resume_from_another_folder_runs_tasks_where_the_job_ran(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """A task with no cwd runs in the runner's folder: a resume started elsewhere (a CI
    retry's fresh checkout path, a `cd`) goes on there (found by a user's try)."""
    marker, go = tmp_path / "pid0", tmp_path / "go"
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "early"\ncommand = "true"\n'
                    f'[[task]]\nid = "first"\ncommand = "echo $$ > {marker}; '
                    f'while [ ! -e {go} ]; do sleep 0.05; done"\n'
                    '[[task]]\nid = "then"\ncommand = "pwd"\ndepends_on = ["first"]\n')
    proc = _start(tmp_path, str(path))
    journal = tmp_path / "results" / "latest" / "journal.jsonl"
    wait_until(lambda: marker.exists() and marker.read_text().strip() and '"task": "early", '
               '"status": "finished"' in journal.read_text(), 30, "the first tasks")
    proc.kill()
    proc.communicate()
    job_dir = (tmp_path / "results" / "latest").resolve()
    go.touch()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    resumed = run_cli("resume", str(job_dir), "--json", "copy.json", cwd=elsewhere)
    assert resumed.code == 0, resumed.stderr
    assert (job_dir / "tasks" / "then" / "stdout").read_text() == f"{tmp_path}\n"
    # The count goes on from what ended before (found by a user's try: it ended at [2/3]).
    assert "then 0." in resumed.stderr and "[3/3]" in resumed.stderr, resumed.stderr
    assert (elsewhere / "copy.json").exists()  # where it was asked for


def test_tasks_gc_ended_are_lost_to_a_later_resume(tmp_path: Path, run_cli: RunCli) -> None:
    """`spawnkit gc` ends a dead runner's tasks; a resume then reports them lost, not failed
    "killed by SIGTERM" as if they had crashed (found by a user's try)."""
    proc = _start(tmp_path, "--max-running", "2", str(_job_with_markers(tmp_path, 2)))
    pids = _wait_markers(tmp_path, 2, proc)
    journal = tmp_path / "results" / "latest" / "journal.jsonl"
    wait_until(lambda: journal.read_text().count('"status": "started"') == 2, 30,
               "both starts in the journal")  # else the runner died while starting them
    proc.kill()
    proc.communicate()
    job_dir = (tmp_path / "results" / "latest").resolve()
    assert run_cli("gc", "--spawner", "process").code == 0
    assert not [p for p in pids if pid_alive(p)]
    resumed = run_cli("resume", str(job_dir))
    assert resumed.code == 1, resumed.stderr
    by_id = {t["id"]: t for t in json.loads((job_dir / "results.json").read_text())["tasks"]}
    for task_id in ("t0", "t1"):
        assert by_id[task_id]["result"] == "lost", by_id[task_id]
        assert "`spawnkit gc` ended it once its runner was gone" in by_id[task_id]["reason"]
    assert by_id["queued"]["result"] == "skipped"  # it needs t0


def test_a_stop_cut_short_by_a_kill_of_the_runner_still_kills(
    tmp_path: Path, run_cli: RunCli
) -> None:
    """A CI's cancel: SIGTERM, then SIGKILL of the runner before the grace ends. The task
    that ignores TERM still gets its KILL when the grace is over (found by a user's try: it
    ran on, and a resume reported it passed), and a resume reports it interrupted."""
    proc = _start(tmp_path, "--grace", "2", str(_job_with_markers(tmp_path, 1, ignore_term=True)))
    pid = _wait_markers(tmp_path, 1, proc)[0]
    journal = tmp_path / "results" / "latest" / "journal.jsonl"
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: '"terminating"' in journal.read_text(), 30, "the stop")
    proc.kill()
    proc.communicate()
    assert pid_alive(pid)  # within its grace
    wait_until(lambda: not pid_alive(pid), 30, "the KILL its grace ends with")
    # A resume ends the task as the stop began: interrupted, not "killed by SIGKILL".
    job_dir = (tmp_path / "results" / "latest").resolve()
    assert run_cli("resume", str(job_dir)).code == 1  # not itself interrupted
    by_id = {t["id"]: t for t in json.loads((job_dir / "results.json").read_text())["tasks"]}
    assert (by_id["t0"]["result"], by_id["t0"]["reason"]) == (
        "interrupted", "interrupted: SIGTERM received")


def test_run_resume_names_the_options_it_does_not_take(run_cli: RunCli) -> None:
    """A resume goes on with the job's own settings: options that would change them are
    named, not dropped without a word (found by a user's try)."""
    run = run_cli("run", "-q", "--", "true")
    again = run_cli("run", "--resume", str(run.job_dir), "--spawner", "docker", "--only", "x",
                    "-q")
    assert again.stderr.splitlines()[0] == (
        "spawnkit: warning: --resume goes on with the job's own settings: --only, --spawner "
        "not taken")


def test_logs_follow_of_a_resumed_job_follows_the_resume(tmp_path: Path) -> None:
    """`logs -f` of a job a resume took over follows it to its end, not stops at once saying
    the runner is gone (found at an earlier stop: it watched the runner that began the job)."""
    mark, go = tmp_path / "printed", tmp_path / "go"
    path = tmp_path / "tasks.toml"
    path.write_text(f'[[task]]\nid = "t"\ncommand = "echo before; touch {mark}; '
                    f'while [ ! -e {go} ]; do sleep 0.05; done; echo after"\n')
    proc = _start(tmp_path, str(path))
    journal = tmp_path / "results" / "latest" / "journal.jsonl"
    wait_until(lambda: mark.exists() and '"started"' in journal.read_text(), 30, "the task")
    proc.kill()
    proc.communicate()
    job_dir = journal.parent.resolve()
    cli = [sys.executable, "-m", "spawnkit.cli"]
    resume = subprocess.Popen([*cli, "resume", str(job_dir)], env=child_env(tmp_path),
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: '"takeover"' in journal.read_text(), 30, "the takeover")
        follow = subprocess.Popen([*cli, "logs", "-f", str(job_dir)], env=child_env(tmp_path),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        assert follow.stdout is not None
        first = follow.stdout.readline()
        go.touch()
        rest, err = follow.communicate(timeout=60)
    finally:
        go.touch()
        resume.wait(timeout=60)
    assert (first, rest, follow.returncode) == (b"before\n", b"after\n", 0), err
    assert resume.returncode == 0
