"""Time in Slurm's queue is not run time: a job held in the queue (as a busy cluster holds
it) has its duration and its timeout counted from when its command began, whether a runner
watched it begin or a resume took it over later."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import RunCli, WriteTaskfile
from tests.engines.conftest import scontrol_job
from tests.faults.jobs import job_dir_of, read_results, start_cli, started_handles, wait_until

#: How long the test holds a job in the queue: longer than its timeout.
HELD = 5.0


def _submitted(tmp_path: Path, proc: subprocess.Popen[str]) -> str:
    """The held job's ID, once the runner's journal has it."""
    def seen() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the runner ended first: {proc.communicate()}")
        journal = job_dir_of(tmp_path) / "journal.jsonl"
        return journal.is_file() and "queued" in started_handles(job_dir_of(tmp_path))

    wait_until(seen, 60, "the submit")
    job_id = started_handles(job_dir_of(tmp_path))["queued"]
    assert scontrol_job(job_id)["JobState"] == "PENDING"
    return job_id


def _release_after_the_hold(job_id: str) -> None:
    # The wait is the scenario (a queue that holds the job longer than its timeout), not a
    # guess at when something happens.
    time.sleep(HELD)
    assert scontrol_job(job_id)["JobState"] == "PENDING"
    subprocess.run(["scontrol", "release", job_id], check=True, timeout=60)


def test_time_in_the_queue_is_not_in_the_duration(
    slurm: str, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    path = taskfile('[[task]]\nid = "queued"\ncommand = "sleep 1; echo done"\ntimeout = 3\n'
                    'slurm = { extra = ["--hold"] }\n')
    proc = start_cli(tmp_path, str(path), "--spawner", slurm)
    try:
        _release_after_the_hold(_submitted(tmp_path, proc))
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    rec = read_results(job_dir_of(tmp_path))["queued"]
    assert rec["result"] == "passed", rec
    # Its second of sleep, and the moments the runner takes to hear of its end (a slower
    # poll by then, a shared folder's lag): not the hold, which alone is longer.
    assert 1.0 <= rec["duration"] < HELD, rec
    assert rec["end"] - rec["start"] < HELD, rec
    # The summary and the progress line say the same.
    row = next(line.split() for line in out.splitlines() if line.startswith("queued "))
    assert row[1] == "passed" and float(row[2].rstrip("s")) < HELD, row
    said = next(line.split() for line in err.splitlines() if "passed" in line)
    assert float(said[-2].rstrip("s")) < HELD, said


def test_a_resume_counts_the_timeout_from_when_the_command_began(
    slurm: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    """The runner dies while its job waits in the queue; the job begins while no runner
    watches; the resume that takes it over later gives it its whole timeout from there."""
    path = taskfile('[[task]]\nid = "queued"\ncommand = "echo begin; sleep 4; echo end"\n'
                    'timeout = 6\nslurm = { extra = ["--hold"] }\n')
    proc = start_cli(tmp_path, str(path), "--spawner", slurm)
    try:
        job_id = _submitted(tmp_path, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    _release_after_the_hold(job_id)
    job_dir = job_dir_of(tmp_path)
    stdout = job_dir / "tasks" / "queued" / "stdout"
    wait_until(lambda: stdout.is_file() and stdout.read_text() == "begin\n", 60,
               "the command's start on the node")
    # Half its run goes by without a runner: it was submitted more than its timeout ago.
    time.sleep(2.0)
    run = run_cli("resume", str(job_dir), timeout=120)
    assert run.code == 0, run.stdout + run.stderr
    rec = json.loads((job_dir / "results.json").read_text())["tasks"][0]
    assert (rec["result"], rec["adopted"]) == ("passed", True), rec
    assert (job_dir / rec["stdout"]).read_text() == "begin\nend\n"
    assert 4.0 <= rec["duration"] < 5.5, rec
