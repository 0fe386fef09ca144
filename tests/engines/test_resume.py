"""Resume, on every backend: a runner killed with SIGKILL does not lose its job. `spawnkit
resume JOB_DIR` takes running tasks over (never runs them twice), collects those that ended
while no runner watched, runs the rest, and leaves nothing behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import RunCli, child_env
from tests.engines.conftest import TEST_IMAGE
from tests.faults.jobs import start_cli, wait_until


def _started(job_dir: Path) -> set[str]:
    """Tasks the journal says started (what a resume can take over by its handle)."""
    path = job_dir / "journal.jsonl"
    if not path.exists():
        return set()
    found = set()
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        if record.get("status") == "started":
            found.add(record["task"])
    return found


def _kill_runner_once(proc: subprocess.Popen[str], job_dir: Path, n: int) -> None:
    """SIGKILL the runner once `n` tasks have started (by its own journal)."""
    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the runner ended first: {proc.communicate()}")
        return len(_started(job_dir)) >= n

    wait_until(ready, 120, f"{n} tasks started")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _job(tmp_path: Path, n: int, command: str, extra: str = "") -> Path:
    (tmp_path / "ws").mkdir()
    text = "".join(f'[[task]]\nid = "t{i}"\nworkspace = "ws"\n{extra}'
                   f'command = {json.dumps(command.format(id=f"t{i}"))}\n\n' for i in range(n))
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    return path


def test_a_killed_runners_job_is_resumed_and_nothing_runs_twice(
    spawner_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None
) -> None:
    """12 tasks (sleep 5, then `echo done`), 4 at a time; the runner is killed while the
    first 4 run; another job runs meanwhile (its clean-up of dead runners leaves a job that
    may still be resumed); the resume finishes the job: every task passed, with its line,
    once."""
    path = _job(tmp_path, 12, "echo {id} >> ran-{id}; sleep 5; echo done")
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE,
                     "--max-running", "4", str(path))
    _kill_runner_once(proc, tmp_path / "results" / "latest", 4)
    job_dir = (tmp_path / "results" / "latest").resolve()  # before the other job moves it
    other = run_cli("run", "--spawner", spawner_name, "--image", TEST_IMAGE, "--", "true")
    assert other.code == 0, other.stderr
    run = run_cli("resume", str(job_dir), timeout=300)
    assert run.code == 0, run.stderr
    tasks = json.loads((job_dir / "results.json").read_text())["tasks"]
    assert [t["result"] for t in tasks] == ["passed"] * 12
    for task in tasks:
        assert (job_dir / task["stdout"]).read_text() == "done\n"
        # Its marker, written once: it ran exactly once.
        assert (tmp_path / "ws" / f"ran-{task['id']}").read_text() == f"{task['id']}\n"
    adopted = {t["id"] for t in tasks if t["adopted"]}
    assert len(adopted) == 4, adopted
    # The progress line says how long a task taken over ran, as results.json does: not the
    # time since the takeover (found by trying).
    said = dict(re.findall(r"\] passed\s+(\S+) ([\d.]+)s", run.stderr))
    for task in tasks:
        assert abs(float(said[task["id"]]) - task["duration"]) < 0.5, (task, said)
    takeovers = [json.loads(line) for line in (job_dir / "journal.jsonl").read_text()
                 .splitlines() if '"takeover"' in line]
    assert len(takeovers) == 1 and takeovers[0]["old_owner"] != takeovers[0]["new_owner"]


def test_what_ended_without_a_runner_is_collected_whole_and_masked(
    spawner_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None
) -> None:
    """Tasks that print a secret and exit 3 after the runner died: collected once by the
    resume, exit code and output whole, the secret masked."""
    secret = "s3cr3t-value-for-resume"
    path = _job(tmp_path, 2, "while [ ! -e go ]; do sleep 0.05; done; echo token=$API_TOKEN; "
                "echo bye >&2; touch ended-{id}; exit 3", extra='secrets = ["API_TOKEN"]\n')
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, str(path),
                     env={"API_TOKEN": secret})
    job_dir = (tmp_path / "results" / "latest").resolve()
    _kill_runner_once(proc, job_dir, 2)
    (tmp_path / "ws" / "go").touch()
    wait_until(lambda: all((tmp_path / "ws" / f"ended-t{i}").exists() for i in range(2)), 60,
               "both tasks ended")
    # Not a wait for anything: a gap between the tasks' end and the resume, for the end
    # times below to tell one from the other.
    time.sleep(1.5)
    resumed_at = time.time()
    run = run_cli("resume", str(job_dir), env={"API_TOKEN": secret}, timeout=300)
    assert run.code == 1, run.stderr
    for task in run.results["tasks"]:
        assert (task["result"], task["exit_code"]) == ("failed", 3)
        # When it ended (within 0.5 s of its last line), not when the resume collected it.
        assert task["end"] < resumed_at - 1.0, (task["end"], resumed_at)
        assert (job_dir / task["stdout"]).read_text() == "token=***\n"
        assert (job_dir / task["stderr"]).read_text() == "bye\n"
    assert secret not in "".join(p.read_text(errors="replace")
                                 for p in job_dir.rglob("*") if p.is_file())


def test_a_resume_while_the_runner_lives_is_refused(
    spawner_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None
) -> None:
    path = _job(tmp_path, 1, "while [ ! -e go ]; do sleep 0.05; done")
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, str(path))
    job_dir = (tmp_path / "results" / "latest").resolve()
    try:
        wait_until(lambda: _started(job_dir), 120, "the task started")
        run = run_cli("resume", str(job_dir))
        assert run.code == 2
        lines = run.stderr.strip().splitlines()
        assert len(lines) == 1 and "the job is being run" in lines[0], run.stderr
    finally:
        (tmp_path / "ws" / "go").touch()
        _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err  # the refused resume took nothing from it


def test_gc_leaves_a_resumed_job_alone_whatever_index_it_reads(
    spawner_name: str, run_cli: RunCli, tmp_path: Path, no_leftovers: None
) -> None:
    """A resume holds the job: a gc (or a run's clean-up of dead runners) started with
    another index of runs (another HOME, XDG_STATE_HOME or SPAWNKIT_STATE_DIR) asks the job's
    folder, not its index, and takes nothing of it."""
    path = _job(tmp_path, 1, "while [ ! -e go ]; do sleep 0.05; done; echo done")
    proc = start_cli(tmp_path, "--spawner", spawner_name, "--image", TEST_IMAGE, str(path))
    job_dir = (tmp_path / "results" / "latest").resolve()
    _kill_runner_once(proc, job_dir, 1)
    resume = subprocess.Popen(
        [sys.executable, "-m", "spawnkit.cli", "resume", str(job_dir)],
        env=child_env(tmp_path), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        wait_until(lambda: '"takeover"' in (job_dir / "journal.jsonl").read_text(), 60,
                   "the takeover")
        gc = run_cli("gc", "--spawner", spawner_name,
                     env={"SPAWNKIT_STATE_DIR": str(tmp_path / "another-index")})
        assert gc.code == 0, gc.stderr
        handle = json.loads(next(line for line in (job_dir / "journal.jsonl").read_text()
                                 .splitlines() if '"started"' in line))["handle"]
        assert handle[:12] not in gc.stdout, gc.stdout  # the task's container, Pod, job
    finally:
        (tmp_path / "ws" / "go").touch()
        out, err = resume.communicate(timeout=120)
    assert resume.returncode == 0, out + err
    task = json.loads((job_dir / "results.json").read_text())["tasks"][0]
    assert (task["result"], task["adopted"]) == ("passed", True), task
    assert (job_dir / task["stdout"]).read_text() == "done\n"
