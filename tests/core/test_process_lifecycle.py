"""The life cycle end to end on the process backend, through the real command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, RunCli, WriteTaskfile, child_env
from tests.faults.jobs import wait_until
from tests.helpers import pid_alive


def _pids(path: Path) -> list[int]:
    return [int(x) for x in path.read_text().split()]


def test_example_job_passes_with_one_entry_per_task(run_cli: RunCli) -> None:
    run = run_cli("run", str(REPO / "examples" / "basic.toml"))
    assert run.code == 0, run.stderr
    ids = [t["id"] for t in run.results["tasks"]]
    assert sorted(ids) == ["lint", "package", "prepare", "unit"]
    assert all(t["result"] == "passed" for t in run.results["tasks"])
    prepare = run.task("prepare")
    assert prepare["handle"].isdigit() and prepare["spawner"] == "process"
    assert "hello from" in (run.job_dir / prepare["stdout"]).read_text()
    assert (run.job_dir / run.task("lint")["stderr"]).read_text() == "no warnings\n"


def test_exit_status_one_when_a_task_fails(run_cli: RunCli, taskfile: WriteTaskfile) -> None:
    path = taskfile(
        '[[task]]\nid = "ok"\ncommand = "true"\n[[task]]\nid = "bad"\ncommand = "exit 7"\n'
    )
    run = run_cli("run", str(path))
    assert run.code == 1
    bad = run.task("bad")
    assert (bad["result"], bad["exit_code"], bad["reason"]) == ("failed", 7, "exit code 7")
    assert run.task("ok")["result"] == "passed"


def test_timeout_kills_the_whole_group(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    # Both sleeps are children of sh; only killing the group reaches them.
    cmd = f"sleep 100 & echo $! >> {pids}; sleep 100 & echo $! >> {pids}; wait"
    path = taskfile(f'[[task]]\nid = "slow"\ntimeout = 2\ncommand = ["sh", "-c", "{cmd}"]\n')
    began = time.monotonic()
    run = run_cli("run", "--grace", "1", str(path))
    elapsed = time.monotonic() - began
    slow = run.task("slow")
    assert run.code == 1
    assert slow["result"] == "timed_out" and slow["reason"] == "timed out after 2 s"
    assert slow["duration"] <= 2 + 1 + 1
    assert elapsed < 2 + 1 + 1 + 5  # the interpreter's own start-up on a busy machine
    assert len(_pids(pids)) == 2
    assert not [p for p in _pids(pids) if pid_alive(p)]


def test_timeout_kills_children_that_ignore_sigterm(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    # An ignored signal stays ignored across fork and exec: every process here ignores TERM.
    cmd = f"trap '' TERM; sleep 100 & echo $! >> {pids}; echo $$ >> {pids}; wait"
    path = taskfile(f'[[task]]\nid = "stubborn"\ntimeout = 1\ncommand = ["sh", "-c", "{cmd}"]\n')
    run = run_cli("run", "--grace", "1", str(path))
    stubborn = run.task("stubborn")
    assert stubborn["result"] == "timed_out"
    assert stubborn["duration"] <= 1 + 1 + 1
    assert not [p for p in _pids(pids) if pid_alive(p)]


def test_process_killed_from_outside_ends_promptly_as_failed(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    path = tmp_path / "tasks.toml"
    path.write_text(
        f'[[task]]\nid = "victim"\ntimeout = 60\n'
        f'command = ["sh", "-c", "echo $$ > {marker}.tmp; mv {marker}.tmp {marker}; sleep 60"]\n'
    )
    env = {**os.environ, "SPAWNKIT_RESULTS": str(tmp_path / "results")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "spawnkit.cli", "run", str(path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists():  # a marker file, not a guess at timing
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        os.kill(int(marker.read_text()), signal.SIGKILL)
        killed_at = time.monotonic()
        code = proc.wait(timeout=20)
        assert time.monotonic() - killed_at < 5
    finally:
        proc.kill()
        proc.communicate()
    import json

    job = (tmp_path / "results" / "latest" / "results.json").read_text()
    victim = json.loads(job)["tasks"][0]
    assert code == 1
    assert (victim["result"], victim["signal"]) == ("failed", 9)
    assert victim["reason"] == "killed by signal 9 (SIGKILL)"


def test_failfast_stops_everything(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    ready = tmp_path / "ready"
    # "long" records its PID then waits; "bad" fails only once "long" is surely running.
    path = taskfile(
        '[[task]]\nid = "long"\n'
        f'command = ["sh", "-c", "echo $$ > {pids}; touch {ready}; sleep 100"]\n'
        '[[task]]\nid = "bad"\n'
        f'command = ["sh", "-c", "while [ ! -e {ready} ]; do sleep 0.01; done; exit 1"]\n'
        + "".join(
            f'[[task]]\nid = "later{i}"\ncommand = "true"\ndepends_on = ["bad"]\n' for i in range(2)
        )
        + '[[task]]\nid = "queued"\ncommand = "true"\ndepends_on = ["long"]\n'
    )
    began = time.monotonic()
    run = run_cli("run", "--failfast", "--grace", "1", "--max-running", "2", str(path))
    assert run.code == 1
    assert time.monotonic() - began < 20
    results = {t["id"]: t["result"] for t in run.results["tasks"]}
    assert results["bad"] == "failed"
    assert results["long"] == "interrupted"
    assert results["queued"] == "not_run"
    assert {results["later0"], results["later1"]} <= {"skipped", "not_run"}
    assert not pid_alive(_pids(pids)[0])


def test_dependency_that_did_not_pass_skips_with_reason(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile(
        '[[task]]\nid = "build"\ncommand = "exit 2"\n'
        '[[task]]\nid = "test"\ncommand = "true"\ndepends_on = ["build"]\n'
        '[[task]]\nid = "deploy"\ncommand = "true"\ndepends_on = ["test"]\n'
    )
    run = run_cli("run", str(path))
    assert run.task("test")["result"] == "skipped"
    assert run.task("test")["reason"] == "dependency 'build' did not pass (failed)"
    assert run.task("deploy")["reason"] == "dependency 'test' did not pass (skipped)"
    assert run.task("test")["handle"] is None


def test_dependencies_run_in_order(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    path = taskfile(
        f'[[task]]\nid = "c"\ncommand = "echo c >> {log}"\ndepends_on = ["b"]\n'
        f'[[task]]\nid = "b"\ncommand = "echo b >> {log}"\ndepends_on = ["a"]\n'
        f'[[task]]\nid = "a"\ncommand = "sleep 0.2; echo a >> {log}"\n'
    )
    run = run_cli("run", str(path))
    assert run.code == 0
    assert log.read_text().split() == ["a", "b", "c"]


def test_adhoc_command_after_double_dash(run_cli: RunCli) -> None:
    run = run_cli("run", "--", "sh", "-c", "echo adhoc; exit 4")
    assert run.code == 1
    task = run.results["tasks"][0]
    assert task["exit_code"] == 4
    assert (run.job_dir / task["stdout"]).read_text() == "adhoc\n"


def test_spawn_failure_is_an_error_not_a_crash(run_cli: RunCli, taskfile: WriteTaskfile) -> None:
    path = taskfile('[[task]]\nid = "ghost"\ncommand = ["true"]\ncwd = "/no/such/folder"\n')
    run = run_cli("run", str(path))
    assert run.code == 1
    ghost = run.task("ghost")
    assert ghost["result"] == "error" and ghost["status"] == "fail_start"
    assert "/no/such/folder" in ghost["reason"]
    assert "Traceback" not in run.stderr


def test_max_running_bounds_concurrency(run_cli: RunCli, taskfile: WriteTaskfile) -> None:
    path = taskfile("".join(f'[[task]]\nid = "t{i}"\ncommand = "sleep 0.1"\n' for i in range(8)))
    run = run_cli("run", "--max-running", "3", str(path))
    assert run.code == 0
    spans = [(t["start"], t["end"]) for t in run.results["tasks"]]
    peak = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert peak <= 3
    assert {t["slot"] for t in run.results["tasks"]} <= {0, 1, 2}


def test_a_process_that_left_its_group_does_not_outlive_the_job(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    pids = tmp_path / "pids"
    # setsid puts the sleep in a session of its own: killing the task's group misses it.
    path = taskfile(
        f'[[task]]\nid = "detach"\ncommand = "setsid sh -c \'echo $$ > {pids}; exec sleep 300\' &'
        f' while [ ! -s {pids} ]; do sleep 0.01; done"\n'
    )
    run = run_cli("run", "--grace", "1", str(path))
    assert run.code == 0, run.stderr
    assert not pid_alive(int(pids.read_text()))


@pytest.mark.parametrize("inner", ["sleep", "setsid sleep"])
def test_what_a_left_behind_process_leaves_ends_with_it_not_a_grace_later(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path, inner: str
) -> None:
    """The detached shell dies at the job end's TERM and leaves its sleep to the supervisor
    (in the shell's group, or in a session of its own that no group kill reaches): the sleep
    gets the TERM too, and the job ends, instead of waiting out `--grace`."""
    pids = tmp_path / "pids"
    path = taskfile(
        f'[[task]]\nid = "detach"\ncommand = "setsid sh -c \'{inner} 300 & echo $! > {pids}; '
        f'wait\' & while [ ! -s {pids} ]; do sleep 0.01; done"\n'
    )
    began = time.monotonic()
    run = run_cli("run", "--grace", "120", str(path), timeout=300)
    assert run.code == 0, run.stderr
    assert not pid_alive(int(pids.read_text()))
    assert time.monotonic() - began < 60  # not the 120 s grace


def test_a_leftover_that_ignores_term_is_killed_but_not_counted_in_the_task_s_time(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    """The command ends at once and leaves a process in its group that ignores TERM: it is
    KILLed a grace later, and the task's time is its command's, not that grace (it was longer
    than its timeout, found by a user's try)."""
    pid = tmp_path / "pid"
    path = taskfile(
        f'[[task]]\nid = "t"\ntimeout = 1\ncommand = "sh -c \'trap \\"\\" TERM; echo $$ > {pid}; '
        f'exec sleep 300\' & while [ ! -s {pid} ]; do sleep 0.01; done"\n'
    )
    run = run_cli("run", "--grace", "2", str(path))
    assert run.code == 0, run.stderr
    record = run.task("t")
    assert record["result"] == "passed", record
    assert record["duration"] < 1.0, record
    assert record["end"] - record["start"] < 1.0, record
    assert not pid_alive(int(pid.read_text()))


def test_missing_working_folder_is_named(run_cli: RunCli, taskfile: WriteTaskfile) -> None:
    run = run_cli(
        "run", str(taskfile('[[task]]\nid = "t"\ncwd = "/no/such/dir"\ncommand = "true"\n'))
    )
    task = run.task("t")
    assert (task["result"], task["reason"]) == (
        "error",
        "working folder '/no/such/dir' does not exist",
    )


def test_results_folder_that_cannot_be_made_is_one_line(run_cli: RunCli) -> None:
    run = run_cli("run", "--results", "/proc/no-such/x", "--", "true")
    assert run.code == 2
    assert len(run.stderr.strip().splitlines()) == 1
    assert "cannot make a job folder in /proc/no-such/x" in run.stderr


def test_a_result_copy_that_cannot_be_written_is_said_before_the_run(
    run_cli: RunCli, tmp_path: Path
) -> None:
    run = run_cli("run", "--json", "/proc/x.json", "--", "true")
    assert run.code == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        "spawnkit: error: cannot write --json /proc/x.json: No such file or directory"]
    assert not (tmp_path / "results").exists()  # nothing ran
    # A run refused for another reason leaves no folder made for the try.
    (tmp_path / "bad.toml").write_text('[[task]]\nid = "a"\ncommand = ["", "x"]\n')
    refused = run_cli("run", "--json", str(tmp_path / "made" / "here" / "r.json"),
                      str(tmp_path / "bad.toml"))
    assert refused.code == 2, refused.stderr
    assert not (tmp_path / "made").exists()


def test_a_result_copy_lost_during_the_run_spares_the_other_and_the_verdict(
    run_cli: RunCli, tmp_path: Path
) -> None:
    """The task takes --json's folder away: a warning, --junit still written, the job's own
    exit status (its files hold the results)."""
    run = run_cli("run", "--json", "out/r.json", "--junit", "j.xml", "--",
                  "sh", "-c", "rm -rf out && touch out", cwd=tmp_path)
    assert run.code == 0, run.stderr
    assert "WARNING: cannot write --json out/r.json: File exists" in run.stderr
    assert "internal error" not in run.stderr
    assert (tmp_path / "j.xml").is_file()
    assert (tmp_path / "results" / "latest" / "results.json").is_file()


def test_logs_of_a_task_that_never_started_says_so(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile('[[task]]\nid = "bad"\ncommand = "echo out; echo err >&2; exit 1"\n'
                    '[[task]]\nid = "after"\ncommand = "true"\ndepends_on = ["bad"]\n')
    run = run_cli("run", str(path))
    assert run.code == 1
    printed = run_cli("logs", str(run.job_dir), "bad")
    assert (printed.code, printed.stdout, printed.stderr) == (0, "out\n", "err\n")
    skipped = run_cli("logs", str(run.job_dir), "after")
    assert (skipped.code, skipped.stdout) == (0, "")
    assert skipped.stderr == "spawnkit: task 'after' has no output: it never started\n"
    # Every output file results.json names is there; a task that never ran has empty ones.
    record = run.task("after")
    assert record["result"] == "skipped"
    assert [(run.job_dir / record[s]).read_bytes() for s in ("stdout", "stderr")] == [b"", b""]
    bad = run.task("bad")
    assert (run.job_dir / bad["stdout"]).read_text() == "out\n"


def test_a_retry_that_never_started_has_empty_files_and_logs_says_so(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    folder = tmp_path / "wd"
    folder.mkdir()
    # The first attempt takes its own working folder away: the retry cannot start.
    path = taskfile(f'[[task]]\nid = "r"\ncwd = "{folder}"\n'
                    f'command = "echo one; rm -rf {folder}; exit 3"\n'
                    'retry = { max = 1, when = ["error"], exit_codes = [3] }\n')
    run = run_cli("run", str(path))
    record = run.task("r")
    assert (run.code, record["result"], len(record["attempts"])) == (1, "error", 1), record
    assert (run.job_dir / record["stdout"]).read_bytes() == b""
    assert (run.job_dir / record["attempts"][0]["stdout"]).read_text() == "one\n"
    printed = run_cli("logs", str(run.job_dir), "r")
    assert (printed.code, printed.stdout) == (0, "")
    assert printed.stderr == ("spawnkit: task 'r' has no output: its last attempt never "
                              "started (the earlier attempts' output: tasks/r/attempts/)\n")


def test_logs_of_a_retried_task_says_its_earlier_attempts_are_not_shown(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    count = tmp_path / "count"
    path = taskfile('[[task]]\nid = "r"\nretry = { max = 2, exit_codes = [3] }\n'
                    f'command = "n=$(($(cat {count} 2>/dev/null || echo 0) + 1)); '
                    f'echo $n > {count}; echo attempt-$n; [ $n -ge 3 ] || exit 3"\n')
    run = run_cli("run", str(path))
    assert (run.code, len(run.task("r")["attempts"])) == (0, 2)
    printed = run_cli("logs", str(run.job_dir), "r")
    assert (printed.code, printed.stdout) == (0, "attempt-3\n")
    assert printed.stderr == ("spawnkit: task 'r' was retried: the output of 2 earlier attempts "
                              "is not shown (tasks/r/attempts/)\n")


def test_attempts_that_never_started_have_empty_files_too(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile('[[task]]\nid = "ns"\ncwd = "/nonexistent-spawnkit"\ncommand = "true"\n'
                    'retry = { max = 2, when = ["error"] }\n')
    run = run_cli("run", str(path))
    record = run.task("ns")
    assert (run.code, record["result"], len(record["attempts"])) == (1, "error", 2), record
    named = [record["stdout"], record["stderr"],
             *(a[s] for a in record["attempts"] for s in ("stdout", "stderr"))]
    assert [(run.job_dir / n).read_bytes() for n in named] == [b""] * 6, named


def _follower(tmp_path: Path, *task: str) -> subprocess.Popen[bytes]:
    """`spawnkit logs -f` of the latest job. Unbuffered: a line read is all that was read,
    and communicate() gets the rest (it reads the pipe itself, past any buffer)."""
    return subprocess.Popen([sys.executable, "-m", "spawnkit.cli", "logs", "-f",
                             str((tmp_path / "results" / "latest").resolve()), *task],
                            env=child_env(tmp_path), stdout=subprocess.PIPE, bufsize=0)


def _follow(tmp_path: Path, path: Path, task_id: str, env: dict[str, str]) -> tuple[str, str]:
    """`spawnkit logs -f` of a task that prints a line, touches `tmp_path/printed`, waits for
    `tmp_path/go` (touched once the follower has shown the line): that line, and the rest."""
    go, mark = tmp_path / "go", tmp_path / "printed"
    run = subprocess.Popen([sys.executable, "-m", "spawnkit.cli", "run", "-q", str(path)],
                           env=child_env(tmp_path, env), cwd=tmp_path,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(mark.exists, 30, "the task's first line")
        follow = _follower(tmp_path, task_id)
        assert follow.stdout is not None
        first = follow.stdout.readline().decode()
        go.touch()
        rest = follow.communicate(timeout=60)[0].decode()
    finally:
        go.touch()
        run.wait(timeout=60)
    assert run.returncode == 0
    return first, rest


def test_logs_follow_goes_on_with_the_output_of_a_retry(
    taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    # The first attempt prints, waits until the follower has shown it, then fails; the retry
    # prints into a new file, shorter than what the follower read of the first.
    go, mark = tmp_path / "go", tmp_path / "printed"
    path = taskfile('[[task]]\nid = "r"\n'
                    f'command = "if [ ! -e {mark} ]; then echo first-attempt; touch {mark}; '
                    f'while [ ! -e {go} ]; do sleep 0.05; done; exit 3; fi; echo two"\n'
                    'retry = { max = 1, exit_codes = [3] }\n')
    assert _follow(tmp_path, path, "r", {}) == ("first-attempt\n", "two\n")


def test_logs_follow_prints_a_masked_task_once(taskfile: WriteTaskfile, tmp_path: Path) -> None:
    # A task's file is masked once more when it ends, rewritten whole: the same output, not
    # a retry's.
    go, mark = tmp_path / "go", tmp_path / "printed"
    path = taskfile('[[task]]\nid = "s"\nsecrets = ["API_TOKEN"]\n'
                    f'command = "echo token=$API_TOKEN; touch {mark}; '
                    f'while [ ! -e {go} ]; do sleep 0.05; done; echo done"\n')
    assert _follow(tmp_path, path, "s", {"API_TOKEN": "tok-3c9e1f"}) == ("token=***\n",
                                                                        "done\n")


def test_logs_follow_prints_attempts_that_ended_before_it_saw_the_task(
    taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    # `flaky` waits for `first`, which waits until the follower runs; its first two attempts
    # fail within milliseconds, before the follower's next look.
    gate, hold, count = tmp_path / "gate", tmp_path / "hold", tmp_path / "count"
    path = taskfile(
        f'[[task]]\nid = "first"\ncommand = "echo ready; while [ ! -e {gate} ]; do sleep 0.05; '
        'done"\n'
        '[[task]]\nid = "flaky"\ndepends_on = ["first"]\nretry = { max = 3, exit_codes = [3] }\n'
        f'command = "n=$(($(cat {count} 2>/dev/null || echo 0) + 1)); echo $n > {count}; '
        f'echo attempt-$n; [ $n -ge 3 ] || exit 3; while [ ! -e {hold} ]; do sleep 0.05; done"\n')
    run = subprocess.Popen([sys.executable, "-m", "spawnkit.cli", "run", "-q", str(path)],
                           env=child_env(tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        journal = tmp_path / "results" / "latest" / "journal.jsonl"
        wait_until(journal.exists, 30, "the job")
        follow = _follower(tmp_path)
        assert follow.stdout is not None
        assert follow.stdout.readline() == b"[first] ready\n"
        gate.touch()
        assert follow.stdout.readline() == b"[flaky] attempt-1\n"
        hold.touch()
        rest = follow.communicate(timeout=60)[0]
        assert rest == b"[flaky] attempt-2\n[flaky] attempt-3\n"
    finally:
        gate.touch()
        hold.touch()
        run.wait(timeout=60)
    assert run.returncode == 0


def test_a_latest_that_is_a_folder_is_said_not_silently_left(run_cli: RunCli) -> None:
    """A CI cache or artifact step that follows links can leave `latest` a real folder: the
    run says it cannot point it to the job (found by trying: every run passed, and `latest`
    kept an earlier pipeline's results, without a word)."""
    stale = run_cli("run", "-q", "--", "true").results_root / "latest"
    stale.unlink()
    stale.mkdir()
    (stale / "results.json").write_text("{}\n")
    run = run_cli("run", "-q", "--", "true")
    assert run.code == 0, run.stderr
    said = run.stderr.splitlines()
    job_dir = Path(said[-1].removeprefix("results: "))
    assert said == [
        f"spawnkit: WARNING: {stale} does not point to this job (it is a folder, not a link: "
        f"remove it); its results are in {job_dir}", f"results: {job_dir}"], run.stderr
    assert json.loads((job_dir / "results.json").read_text())["passed"] is True
    assert (stale / "results.json").read_text() == "{}\n"  # nothing of the user's removed


def test_a_closed_stderr_and_a_reader_gone_change_nothing_of_the_run(
    taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    """Found by trying: started with stderr closed (`2>&-`) the run wrote its progress into
    its own event loop's file and ended with exit 70, its tasks lost; piped into `head` it
    ended with exit 1, every task passed."""
    path = taskfile("".join(f'[[task]]\nid = "t{i}"\ncommand = "echo hi; sleep 0.1"\n'
                            for i in range(6)))
    argv = [sys.executable, "-m", "spawnkit.cli", "run", "--max-running", "1"]
    closed = subprocess.run(["sh", "-c", '"$@" 2>&-', "sh", *argv, "--results",
                             str(tmp_path / "closed"), str(path)],
                            env=child_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert closed.returncode == 0, closed.stdout
    assert "6 tasks in" in closed.stdout
    head = subprocess.Popen([*argv, "--results", str(tmp_path / "head"), str(path)],
                            env=child_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert head.stdout is not None
    assert "start" in head.stdout.readline()
    head.stdout.close()  # the reader goes, as `| head -1` does, while the tasks run
    assert head.wait(timeout=120) == 0
    for folder in ("closed", "head"):
        data = json.loads((tmp_path / folder / "latest" / "results.json").read_text())
        assert data["counts"]["passed"] == 6, data["counts"]
