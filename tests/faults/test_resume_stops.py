"""A resume and the stops around it, on the process backend: a stop a dead runner began, a
resume itself cancelled and killed, a masked task's leftover, gc from another index, a task
gone with its supervisor. Each found by a CI engineer's try (a helper)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.faults.jobs import read_results, start_cli, wait_until
from tests.helpers import pid_alive, processes_with


def _journal(tmp_path: Path) -> Path:
    return tmp_path / "results" / "latest" / "journal.jsonl"


def _runner_killed(tmp_path: Path, marker: Path, *args: str) -> Path:
    """`spawnkit run ARGS`, killed with SIGKILL once its task wrote `marker` and its journal
    says it started; its job folder."""
    proc = start_cli(tmp_path, *args)
    journal = _journal(tmp_path)
    wait_until(lambda: marker.exists() and '"started"' in journal.read_text(), 30, "the task")
    proc.kill()
    proc.communicate()
    return journal.parent.resolve()


def test_a_carried_on_stop_is_not_retried(tmp_path: Path, run_cli: RunCli) -> None:
    """A CI's cancel cut short by a `kill -9`: the resume ends the task interrupted, and its
    retry policy does not start it again (it did: the retry ran on after the cancel)."""
    marker, go = tmp_path / "pid", tmp_path / "go"
    path = tmp_path / "tasks.toml"
    # It exits 1 on TERM, once the test says so: after the runner is gone.
    path.write_text(f'[[task]]\nid = "t"\nretry = {{ max = 2, exit_codes = [1] }}\n'
                    f'command = "trap \'while [ ! -e {go} ]; do sleep 0.05; done; exit 1\' TERM; '
                    f'echo $$ > {marker}; sleep 300 & wait"\n')
    proc = start_cli(tmp_path, "--grace", "30", str(path))
    journal = _journal(tmp_path)
    wait_until(lambda: marker.exists() and '"started"' in journal.read_text(), 30, "the task")
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: '"terminating"' in journal.read_text(), 30, "the stop")
    proc.kill()
    proc.communicate()
    job_dir = journal.parent.resolve()
    go.touch()
    wait_until((job_dir / "tasks" / "t" / "exit-status").exists, 30, "its exit 1")
    resumed = run_cli("resume", str(job_dir))
    assert resumed.code == 1, resumed.stderr
    record = read_results(job_dir)["t"]
    assert (record["result"], record["reason"]) == ("interrupted",
                                                    "interrupted: SIGTERM received"), record
    assert "attempts" not in record or not record["attempts"], record
    assert '"retrying"' not in journal.read_text()


def test_a_resume_killed_within_its_stop_still_kills(tmp_path: Path, run_cli: RunCli) -> None:
    """A resume cancelled (TERM) and killed within the grace: the task it took over, which
    ignores TERM, still gets its KILL from the supervisor that has it (the mark the resume
    left), and the next resume reports it interrupted."""
    marker = tmp_path / "pid"
    path = tmp_path / "tasks.toml"
    path.write_text(f'[[task]]\nid = "t"\ncommand = "trap \'\' TERM; echo $$ > {marker}; '
                    'while :; do sleep 0.1; done"\n')
    job_dir = _runner_killed(tmp_path, marker, "--grace", "2", str(path))
    journal = job_dir / "journal.jsonl"
    resume = start_cli(tmp_path, str(job_dir), command="resume")
    wait_until(lambda: '"adopted"' in journal.read_text(), 30, "the takeover")
    resume.send_signal(signal.SIGTERM)
    wait_until(lambda: journal.read_text().count('"terminating"') == 1, 30, "the stop")
    wait_until((job_dir / "tasks" / "t" / "kill-at").exists, 10, "the resume's mark")
    resume.kill()
    resume.communicate()
    pid = int(marker.read_text())
    assert pid_alive(pid)  # within its grace
    wait_until(lambda: not pid_alive(pid), 30, "the KILL its grace ends with")
    again = run_cli("resume", str(job_dir))
    assert again.code == 1, again.stderr
    assert read_results(job_dir)["t"]["result"] == "interrupted"


@pytest.mark.parametrize("leftover_command", ["sleep 300", "setsid sleep 300"])
def test_a_masked_task_s_leftover_does_not_hold_its_end(
    tmp_path: Path, run_cli: RunCli, leftover_command: str
) -> None:
    """A task whose output is masked (it has a secret) ends, leaving `sleep 300 &` in its
    group, after a `kill -9` of the runner: the supervisor ends the leftover as the runner
    would have, so the task's end is recorded at once and a resume reports it passed (it
    waited for the leftover: 300 s). One outside the group (`setsid`, which no signal to the
    group reaches; found by review: the task's end was never recorded): its output is taken
    as it is a few seconds on, and the leftover ends with the supervisor."""
    go, leftover = tmp_path / "go", tmp_path / "leftover"
    path = tmp_path / "tasks.toml"
    path.write_text(f'[[task]]\nid = "t"\nsecrets = ["TRY_TOKEN"]\n'
                    f'command = "echo token=$TRY_TOKEN; {leftover_command} & '
                    f'echo $! > {leftover}; while [ ! -e {go} ]; do sleep 0.05; done"\n')
    env = {"TRY_TOKEN": "tok-51fe0a"}
    proc = start_cli(tmp_path, "--grace", "1", str(path), env=env)
    journal = _journal(tmp_path)
    wait_until(lambda: leftover.exists() and leftover.read_text().strip()
               and '"started"' in journal.read_text(), 30, "the task")
    proc.kill()
    proc.communicate()
    job_dir = journal.parent.resolve()
    go.touch()
    wait_until((job_dir / "tasks" / "t" / "exit-status").exists, 30, "its recorded end")
    wait_until(lambda: not pid_alive(int(leftover.read_text())), 30, "the leftover's end")
    resumed = run_cli("resume", str(job_dir), env=env)
    assert resumed.code == 0, resumed.stderr
    record = read_results(job_dir)["t"]
    assert record["result"] == "passed" and record["duration"] < 60, record
    assert (job_dir / record["stdout"]).read_text() == "token=***\n"


def test_gc_from_another_index_says_who_ended_the_task(tmp_path: Path, run_cli: RunCli) -> None:
    """`spawnkit gc` with another state folder (another CI job's) ends a dead runner's task
    through its supervisor; the resume reports it lost, ended by gc, not failed."""
    marker = tmp_path / "pid"
    path = tmp_path / "tasks.toml"
    path.write_text(f'[[task]]\nid = "t"\ncommand = "echo $$ > {marker}; exec sleep 300"\n')
    job_dir = _runner_killed(tmp_path, marker, str(path))
    other = {"SPAWNKIT_STATE_DIR": str(tmp_path / "other-state")}
    gc = run_cli("gc", "--spawner", "process", env=other)
    assert gc.code == 0, gc.stderr
    assert "task t" in gc.stdout, gc.stdout
    wait_until(lambda: not pid_alive(int(marker.read_text())), 10, "the task's end")
    resumed = run_cli("resume", str(job_dir))
    assert resumed.code == 1, resumed.stderr
    record = read_results(job_dir)["t"]
    assert record["result"] == "lost", record
    assert "`spawnkit gc` ended it once its runner was gone" in record["reason"], record


def test_a_task_gone_with_its_supervisor_is_lost(tmp_path: Path, run_cli: RunCli) -> None:
    """The runner, then the task supervisor, then the task are killed: nothing is left to say
    how the task ended, so the resume reports it lost (as the README says of a task the
    backend cannot find), not an error of the engine; the job runs on."""
    marker = tmp_path / "pid"
    path = tmp_path / "tasks.toml"
    path.write_text(f'[[task]]\nid = "t"\ncommand = "echo $$ > {marker}; exec sleep 300"\n'
                    '[[task]]\nid = "after"\ncommand = "true"\ndepends_on = ["t"]\n'
                    '[[task]]\nid = "other"\ncommand = "true"\n')
    job_dir = _runner_killed(tmp_path, marker, "--max-running", "1", str(path))
    [supervisor] = processes_with("spawnkit.spawners.process.supervisor", "--job", job_dir.name)
    os.kill(supervisor, signal.SIGKILL)
    wait_until(lambda: not pid_alive(supervisor), 30, "the supervisor's end")
    pid = int(marker.read_text())
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 30, "the task's end")
    resumed = run_cli("resume", str(job_dir))
    assert resumed.code == 1, resumed.stderr
    results = read_results(job_dir)
    assert results["t"]["result"] == "lost", results["t"]
    assert "its process and the task supervisor that had it are gone" in results["t"]["reason"]
    assert results["after"]["result"] == "skipped", results["after"]
    assert results["other"]["result"] == "passed", results["other"]
    assert not (job_dir / "tasks" / "t" / "exit-status").exists()
