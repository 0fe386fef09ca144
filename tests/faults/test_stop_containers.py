"""A runner of container tasks stopped by a signal, or killed: nothing lost, nothing left.

On the shared engines (docker and podman), through the real command line. "Nothing left"
is looked for from outside: the engine's own listing by the job's label, and every process
of the host (a task's by the job's token in its environment, a shim's or a conmon's by the
container's ID on its command line).
"""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import pytest

from spawnkit.spawners.container.watchdog import WATCHDOG
from tests.conftest import RunCli
from tests.engines.conftest import TEST_IMAGE, containers_of, engine_cli
from tests.faults.jobs import (
    container_job,
    job_dir_of,
    job_processes,
    read_results,
    start_cli,
    started_handles,
    wait_running,
    wait_until,
)
from tests.helpers import processes_with

N = 8


def test_runner_killed_then_gc_leaves_nothing(
    engine_name: str, tmp_path: Path, run_cli: RunCli
) -> None:
    job = container_job(tmp_path, N, "exit_on_term", TEST_IMAGE)
    proc = start_cli(tmp_path, "--spawner", engine_name, "--max-running", str(N), "--no-gc",
                     str(job.path))
    wait_running(job, proc)
    proc.kill()
    proc.communicate(timeout=30)
    job_dir = job_dir_of(tmp_path)
    job_id = job_dir.name
    handles = started_handles(job_dir)
    assert sorted(handles) == job.task_ids()
    # What the dead runner left: every container still there, its task still running.
    assert sorted(containers_of(engine_name, job_id)) == sorted(handles.values())
    assert job_processes(job, list(handles.values()))

    assert (tmp_path / "state" / "runs" / job_id).is_file()  # the runs index still lists it
    gc = run_cli("gc")  # every backend
    assert gc.code == 0, gc.stderr
    assert not (tmp_path / "state" / "runs" / job_id).exists()
    said = re.findall(rf"removed container (\w+) \(job {job_id}, task (t\d+)\)", gc.stdout)
    # (Another runner's start-up reaping may have taken some first: each said is one of ours.)
    assert {(h[:12], t) for t, h in handles.items()} >= set(said)
    assert containers_of(engine_name, job_id) == []
    wait_until(lambda: not job_processes(job, list(handles.values())), 30, "the job's processes")

    rebuilt = run_cli("results", str(job_dir))
    assert rebuilt.code == 1, rebuilt.stderr
    results = read_results(job_dir)
    assert {tid: t["result"] for tid, t in results.items()} == {
        **{tid: "lost" for tid in job.task_ids()}, "queued": "not_run"}
    assert all(results[tid]["handle"] == handles[tid] for tid in job.task_ids())
    assert (job_dir / "results.xml").is_file()


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_containers_within_the_grace_period(
    engine_name: str, tmp_path: Path, sig: int, code: int
) -> None:
    """Tasks that ignore SIGTERM: each is KILLed after the grace period; the runner exits
    within the grace period plus 2 s, every task in results.json, every container gone."""
    grace = 1.0
    job = container_job(tmp_path, N, "ignore_term", TEST_IMAGE)
    proc = start_cli(tmp_path, "--spawner", engine_name, "--max-running", str(N), "--no-gc",
                     "--grace", str(grace), str(job.path))
    wait_running(job, proc)
    proc.send_signal(sig)
    sent = time.monotonic()
    _out, err = proc.communicate(timeout=60)
    took = time.monotonic() - sent
    assert proc.returncode == code, err
    assert took <= grace + 2, f"stopped in {took:.2f} s"
    job_dir = job_dir_of(tmp_path)
    results = read_results(job_dir)
    name = signal.Signals(sig).name
    assert set(results) == {*job.task_ids(), "queued"}
    for tid in job.task_ids():
        assert (results[tid]["result"], results[tid]["reason"]) == (
            "interrupted", f"interrupted: {name} received")
    assert results["queued"]["result"] == "not_run"
    handles = list(started_handles(job_dir).values())
    assert len(handles) == N
    assert containers_of(engine_name, job_dir.name) == []
    wait_until(lambda: not job_processes(job, handles), 10, "the job's processes")


def _watchdogs(job_id: str) -> list[int]:
    """Live container watchdogs of the job on this host."""
    return processes_with(WATCHDOG, job_id)


def _running(engine_name: str, container_id: str) -> bool:
    return engine_cli(engine_name, "inspect", "-f", "{{.State.Running}}",
                      container_id).strip() == "true"


def test_a_dead_runner_s_task_still_times_out(
    engine_name: str, tmp_path: Path, run_cli: RunCli
) -> None:
    """After a `kill -9` of the runner, its container watchdog stops a task at its deadline
    as the runner would (TERM, the grace, KILL: this one ignores TERM), and a resume reports
    it timed out. A task with no timeout runs on: the resume takes it over. Docker has no
    run-time limit of its own: before the watchdog, the container ran until `spawnkit gc`."""
    job = container_job(tmp_path, 2, "ignore_term", TEST_IMAGE)
    job.path.write_text(job.path.read_text().replace('id = "t0"\n', 'id = "t0"\ntimeout = 2\n')
                        .replace("sleep 1000", "while [ ! -e /workspace/go ]; do sleep 0.05; "
                                 "done"))
    proc = start_cli(tmp_path, "--spawner", engine_name, "--max-running", "2", "--no-gc",
                     "--grace", "1", str(job.path))
    wait_running(job, proc)
    proc.kill()
    proc.communicate(timeout=30)
    job_dir = job_dir_of(tmp_path)
    handles = started_handles(job_dir)
    assert _watchdogs(job_dir.name)
    wait_until(lambda: not _running(engine_name, handles["t0"]), 30,
               "the watchdog's stop of the task past its deadline")
    assert engine_cli(engine_name, "inspect", "-f", "{{.State.ExitCode}}",
                      handles["t0"]).strip() == "137"  # its TERM was ignored: the KILL
    assert (job_dir / "tasks" / "t0" / "timed-out").read_text() == "2\n"
    assert _running(engine_name, handles["t1"])
    job.go()
    resumed = run_cli("resume", str(job_dir), timeout=120)
    assert resumed.code == 1, resumed.stderr
    results = read_results(job_dir)
    assert (results["t0"]["result"], results["t0"]["reason"]) == (
        "timed_out", "timed out after 2 s (stopped by the container watchdog: no runner was "
        "watching)")
    assert results["t1"]["result"] == "passed", results["t1"]
    assert containers_of(engine_name, job_dir.name) == []
    wait_until(lambda: not _watchdogs(job_dir.name), 10, "the watchdogs' exit")


def test_a_stop_cut_short_by_a_kill_of_the_runner_still_kills(
    engine_name: str, tmp_path: Path, run_cli: RunCli
) -> None:
    """A CI's cancel: SIGTERM, then SIGKILL of the runner before the grace ends. The task
    that ignores TERM still gets its KILL when the grace is over, from the watchdog (a
    task with no timeout: the stop alone starts it)."""
    job = container_job(tmp_path, 1, "ignore_term", TEST_IMAGE)
    proc = start_cli(tmp_path, "--spawner", engine_name, "--no-gc", "--grace", "3",
                     str(job.path))
    wait_running(job, proc)
    job_dir = job_dir_of(tmp_path)
    handle = started_handles(job_dir)["t0"]
    proc.send_signal(signal.SIGTERM)
    wait_until(lambda: '"terminating"' in (job_dir / "journal.jsonl").read_text(), 30,
               "the stop")
    proc.kill()
    proc.communicate(timeout=30)
    assert _running(engine_name, handle)  # within its grace
    wait_until(lambda: not _running(engine_name, handle), 30, "the KILL its grace ends with")
    assert engine_cli(engine_name, "inspect", "-f", "{{.State.ExitCode}}",
                      handle).strip() == "137"
    wait_until(lambda: not _watchdogs(job_dir.name), 10, "the watchdog's exit")
    # A resume ends the task as the stop began: interrupted, not "killed by SIGKILL".
    assert run_cli("resume", str(job_dir), timeout=120).code == 1
    results = read_results(job_dir)
    assert (results["t0"]["result"], results["t0"]["reason"]) == (
        "interrupted", "interrupted: SIGTERM received")
    assert results["queued"]["result"] == "not_run"  # the interrupt's, before the kill -9
    assert containers_of(engine_name, job_dir.name) == []
