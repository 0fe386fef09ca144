"""Slurm's faults: the controller killed mid-job, and the runner killed with `kill -9`.

On the real single-node Slurm of `.ci/slurm.sh`, through the real command line. The
controller test kills the shared slurmctld and starts it again (`.ci/slurm.sh`) whatever
happens: jobs survive a controller restart (slurmd runs them), so nothing of other tests is
lost.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from spawnkit.core.owner import runner_owner
from tests.conftest import REPO, RunCli
from tests.engines.conftest import SLURM_BACKENDS, require_engine, slurm_jobs_of
from tests.faults.jobs import (
    job_dir_of,
    read_results,
    start_cli,
    started_handles,
    wait_until,
)
from tests.helpers import pid_alive

N = 8
BOUND = 3.0  # --engine-down-after of the controller test
#: After the bound: the last poll's wait, collecting, and writing the results.
SLACK = 3.0
STATE = Path(os.environ.get("SPAWNKIT_CI_STATE", "/tmp/spawnkit-ci")) / "slurm"


@pytest.fixture(params=SLURM_BACKENDS)
def slurm(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    require_engine(name)
    return name


@pytest.fixture(autouse=True)
def _nothing_left_after(tmp_path: Path) -> Iterator[None]:
    """A test that fails half-way leaves neither its runner (a process whose working folder
    is tmp_path) nor its Slurm jobs to the tests after it."""
    yield
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cwd").resolve() == tmp_path.resolve():
                os.kill(int(entry.name), signal.SIGKILL)
        except OSError:
            continue
    results = tmp_path / "results"
    job_ids = [d.name for d in results.iterdir() if d.is_dir() and not d.is_symlink()] \
        if results.is_dir() else []
    left = [slurm_id for job_id in job_ids for slurm_id in slurm_jobs_of(job_id)]
    if left:
        subprocess.run(["scancel", *left], capture_output=True, check=False, timeout=60)
        wait_until(lambda: not any(slurm_jobs_of(j) for j in job_ids), 60, "the jobs cancelled")


@dataclass
class MarkerJob:
    """A task file of N tasks t0.. that each write a marker once their command runs, then
    wait (ending at once on TERM); and one task `queued` that waits for t0."""

    path: Path
    folder: Path

    def task_ids(self) -> list[str]:
        return [f"t{i}" for i in range(N)]

    def all_running(self) -> bool:
        return all((self.folder / f"started-{t}").exists() for t in self.task_ids())


def marker_job(tmp_path: Path) -> MarkerJob:
    folder = tmp_path / "markers"
    folder.mkdir()
    text = ""
    for tid in [f"t{i}" for i in range(N)]:
        command = json.dumps(["sh", "-c", f"trap 'exit 143' TERM; touch {folder}/started-{tid}; "
                              "sleep 1000 & wait"])
        text += f'[[task]]\nid = "{tid}"\ncommand = {command}\n'
    text += '[[task]]\nid = "queued"\ncommand = "true"\ndepends_on = ["t0"]\n'
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    return MarkerJob(path, folder)


def wait_running(job: MarkerJob, proc: subprocess.Popen[str], tmp_path: Path) -> None:
    journal = tmp_path / "results" / "latest" / "journal.jsonl"

    def there() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the runner ended first: {proc.communicate()}")
        return (job.all_running() and journal.exists()
                and len(started_handles(journal.parent)) == N)

    wait_until(there, 60, "every task running")


def test_runner_killed_then_gc_empties_the_queue(
    slurm: str, tmp_path: Path, run_cli: RunCli
) -> None:
    job = marker_job(tmp_path)
    proc = start_cli(tmp_path, "--spawner", slurm, "--max-running", str(N), "--no-gc",
                     str(job.path))
    wait_running(job, proc, tmp_path)
    proc.kill()
    proc.communicate(timeout=30)
    job_dir = job_dir_of(tmp_path)
    handles = started_handles(job_dir)
    assert sorted(handles) == job.task_ids()
    # What the dead runner left: every job still in the queue, running (and perhaps its
    # check that a node can write to the job folder, queued behind them).
    left = set(slurm_jobs_of(job_dir.name))
    assert left >= set(handles.values())
    assert all(";task=.node-check" in _comment(j) for j in left - set(handles.values()))

    # Beside them: a job of a live runner, one of a runner on another host, one not ours.
    spared = [_labelled_job(runner_owner(), "alive"), _labelled_job("elsewhere:1:1", "far"),
              _labelled_job(None, "stranger")]
    try:
        gc = run_cli("gc", "--spawner", slurm)
        assert gc.code == 0, gc.stderr
        said = re.findall(rf"slurm: removed Slurm job (\d+) \(job {job_dir.name}, task (t\d+)\)",
                          gc.stdout)
        assert sorted(said) == sorted((h, t) for t, h in handles.items()), gc.stdout
        wait_until(lambda: slurm_jobs_of(job_dir.name) == [], 30, "the queue empty of the job")
        assert _active(spared) == spared  # nothing else touched
    finally:
        subprocess.run(["scancel", *spared], check=False, timeout=60)
    # The jobs' commands are gone from the node too.
    wait_until(lambda: not _processes_of(job), 30, "the jobs' processes")

    rebuilt = run_cli("results", str(job_dir))
    assert rebuilt.code == 1, rebuilt.stderr
    results = read_results(job_dir)
    assert {tid: t["result"] for tid, t in results.items()} == {
        **{tid: "lost" for tid in job.task_ids()}, "queued": "not_run"}
    # Slurm says who ended them.
    for handle in handles.values():
        assert ";cancel=gc" in _comment(handle)


@pytest.fixture
def controller() -> Iterator[None]:
    """The shared slurmctld, started again after the test whatever it did to it."""
    yield
    done = subprocess.run(["bash", str(REPO / ".ci" / "slurm.sh")], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr


def test_controller_killed_mid_job_ends_in_bound_then_gc(
    slurm: str, tmp_path: Path, run_cli: RunCli, controller: None
) -> None:
    job = marker_job(tmp_path)
    proc = start_cli(tmp_path, "--spawner", slurm, "--engine-down-after", str(BOUND),
                     "--max-running", str(N), "--no-gc", "--grace", "1", str(job.path))
    wait_running(job, proc, tmp_path)
    # Killed before it saved its state, slurmctld forgets the jobs (and cancels) since, and
    # starts again from older news (jobs re-run, IDs reused): the jobs it knows are the fault
    # under test, not that. It saves on its own only every few minutes once it holds many
    # ended jobs (MinJobAge); a reconfigure saves at once (Slurm 22.05).
    running = time.time()
    job_state = STATE / "ctld" / "job_state"
    subprocess.run(["scontrol", "reconfigure"], check=True, timeout=30)
    wait_until(lambda: job_state.stat().st_mtime > running, 30, "slurmctld's state saved")
    ctld = int((STATE / "run" / "slurmctld.pid").read_text())
    os.kill(ctld, signal.SIGKILL)
    struck = time.monotonic()
    _out, err = proc.communicate(timeout=BOUND + 60)
    took = time.monotonic() - struck
    assert proc.returncode == 1, err
    assert took <= BOUND + SLACK, f"the runner ended {took:.2f} s after slurmctld was killed"
    # The warning gives squeue's own words: a poll after the kill finds the controller down,
    # one under way when it struck is cut short (the kill does not wait for our polls).
    assert re.search(r"slurm: the controller does not answer \((Slurmctld\(primary\) at |"
                     r"slurm_load_jobs error: Zero Bytes were transmitted or received\))",
                     err), err

    job_dir = job_dir_of(tmp_path)
    results = read_results(job_dir)
    assert set(results) == {*job.task_ids(), "queued"}
    for tid in job.task_ids():
        rec = results[tid]
        assert rec["result"] == "error", rec
        assert rec["reason"].startswith(f"the Slurm controller has not answered for {BOUND:g} s"
                                        " (Slurmctld(primary) at "), rec["reason"]
        assert rec["reason"].endswith(f"is DOWN): Slurm job {rec['handle']} is left to "
                                      "'spawnkit gc'"), rec["reason"]
    assert results["queued"]["result"] == "skipped"
    handles = started_handles(job_dir)
    assert (job_dir / "results.xml").is_file()

    # The controller back: its jobs ran on meanwhile (slurmd keeps them), gc ends them.
    done = subprocess.run(["bash", str(REPO / ".ci" / "slurm.sh")], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert set(slurm_jobs_of(job_dir.name)) >= set(handles.values())
    gc = run_cli("gc", "--spawner", slurm)
    assert gc.code == 0, gc.stderr
    assert gc.stdout.count(f"(job {job_dir.name}, task t") == N, gc.stdout
    wait_until(lambda: slurm_jobs_of(job_dir.name) == [], 30, "the queue empty of the job")
    wait_until(lambda: not _processes_of(job), 30, "the jobs' processes")


# -- looking from outside ------------------------------------------------------------------


def _labelled_job(owner: str | None, task: str) -> str:
    comment = f"spawnkit:owner={owner};job=gc-test;task={task}" if owner else "someone-else"
    done = subprocess.run(["sbatch", "--parsable", "--hold", "--output=/dev/null",
                           f"--comment={comment}", "--wrap", "true"],
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.strip().split(";")[0]


def _node_state(node: str) -> str:
    return subprocess.run(["sinfo", "-h", "-n", node, "-o", "%T"], capture_output=True,
                          text=True, timeout=60, check=False).stdout.strip()


def _active(job_ids: list[str]) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i"],
                         capture_output=True, text=True, timeout=60, check=False).stdout
    return [i for i in job_ids if i in out.split()]


def _comment(job_id: str) -> str:
    return subprocess.run(["squeue", "-h", "-t", "all", "-j", job_id, "-O", "Comment:|"],
                          capture_output=True, text=True, timeout=60, check=True).stdout


def _processes_of(job: MarkerJob) -> list[int]:
    """Live processes of the job's commands: their command line names the marker folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(job.folder).encode() in cmdline and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found




def test_node_failure_is_an_error_never_a_second_run(
    slurm: str, tmp_path: Path, run_cli: RunCli
) -> None:
    """The node goes DOWN under a running task: Slurm's NODE_FAIL is an error, and the job is
    not put back in the queue to run again (--no-requeue)."""
    node = subprocess.run(["hostname", "-s"], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()
    job = marker_job(tmp_path)
    proc = start_cli(tmp_path, "--spawner", slurm, "--max-running", str(N), "--no-gc",
                     str(job.path))
    wait_running(job, proc, tmp_path)
    try:
        subprocess.run(["scontrol", "update", f"NodeName={node}", "State=DOWN",
                        "Reason=spawnkit-fault-test"], check=True, timeout=60)
        _out, err = proc.communicate(timeout=120)
    finally:
        # Back in service: by itself once slurmd answers (ReturnToService=2), or told to.
        subprocess.run(["scontrol", "update", f"NodeName={node}", "State=RESUME"],
                       capture_output=True, check=False, timeout=60)
        wait_until(lambda: _node_state(node) in ("idle", "mixed", "allocated"), 60,
                   f"node {node} back in service")
    assert proc.returncode == 1, err
    job_dir = job_dir_of(tmp_path)
    results = read_results(job_dir)
    for tid in job.task_ids():
        rec = results[tid]
        assert rec["result"] == "error", rec
        # slurmd TERMs the job when its node goes down: the command's exit (143, its trap's)
        # is only the effect; Slurm may or may not have the batch script's status by then.
        said = (rf"Slurm job {rec['handle']} ended NODE_FAIL \(NodeDown(, exit 143)?\) on "
                rf"{node}: its node failed \(its command: exit 143\)")
        assert re.fullmatch(said, rec["reason"]), rec["reason"]
    assert slurm_jobs_of(job_dir.name) == []  # none queued again
    wait_until(lambda: not _processes_of(job), 30, "the jobs' processes")
