"""The engine itself killed mid-job: on a daemon of the test's own, never the shared one.

Killed (or frozen) and left down, the job ends within its bound (`--engine-down-after`) with
every running task as error and the engine's words, and writes its results; once the daemon
is back, `spawnkit gc` leaves nothing of the job. Killed and restarted at once, the job goes
on: Docker's restart kills its containers (error, the outage named), Podman's containers
run on under conmon (they pass).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.conftest import RunCli
from tests.engines.conftest import TEST_IMAGE
from tests.faults.daemons import PrivateDaemon
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

N = 8
BOUND = 3.0  # --engine-down-after of these jobs
#: After the bound: the listing's last round of retries (under a second), collecting, and
#: writing the results.
SLACK = 3.0


@pytest.mark.parametrize("fault", ["killed", "frozen"])
def test_engine_down_mid_job_ends_it_in_bound_then_gc_leaves_nothing(
    private_engine: PrivateDaemon, tmp_path: Path, run_cli: RunCli, fault: str
) -> None:
    """killed: SIGKILL, its socket refuses. frozen: SIGSTOP, its socket takes each call and
    nothing answers it (the SDK's own timeout is a minute a try): the bound holds for both,
    to the runner's exit."""
    kind, url = private_engine.kind, private_engine.url
    job = container_job(tmp_path, N, "exit_on_term", TEST_IMAGE)
    proc = start_cli(
        tmp_path, "--spawner", kind, "--engine-url", url, "--engine-down-after", str(BOUND),
        "--max-running", str(N), "--no-gc", "--grace", "1", str(job.path),
        env=private_engine.client_env(),
    )
    wait_running(job, proc)
    if fault == "killed":
        private_engine.kill()
    else:
        private_engine.freeze()
    struck = time.monotonic()
    _out, err = proc.communicate(timeout=BOUND + 60)
    took = time.monotonic() - struck
    assert proc.returncode == 1, err
    assert took <= BOUND + SLACK, f"the runner ended {took:.2f} s after the engine went {fault}"

    job_dir = job_dir_of(tmp_path)
    results = read_results(job_dir)
    assert set(results) == {*job.task_ids(), "queued"}
    for tid in job.task_ids():
        result, reason = results[tid]["result"], results[tid]["reason"]
        assert result == "error", results[tid]
        assert reason.startswith(f"the {kind} engine at {url} has not answered for {BOUND:g} s")
        if fault == "killed":
            assert "Connection refused" in reason  # the engine's socket, with nobody behind it
        else:
            assert "no answer: the engine accepts calls but never replies" in reason
    assert results["queued"]["result"] == "skipped"  # its dependency did not pass
    handles = list(started_handles(job_dir).values())
    assert len(handles) == N

    if fault == "killed":
        private_engine.restart()
    else:
        private_engine.thaw()
    gc = run_cli("gc", "--spawner", kind, "--engine-url", url, env=private_engine.client_env())
    assert gc.code == 0, gc.stderr
    assert gc.stdout.count(f"(job {job_dir.name}, task t") == N, gc.stdout
    assert private_engine.containers(f"spawnkit.job={job_dir.name}") == []
    wait_until(lambda: not job_processes(job, handles), 30, "the job's processes")


def test_engine_restarted_mid_job_loses_no_result(
    private_engine: PrivateDaemon, tmp_path: Path
) -> None:
    kind = private_engine.kind
    job = container_job(tmp_path, N, "wait_for_go", TEST_IMAGE)
    log = tmp_path / "runner.log"
    with open(log, "w") as stderr:
        proc = start_cli(
            tmp_path, "--spawner", kind, "--engine-url", private_engine.url, "-v",
            "--max-running", str(N), "--no-gc", "--grace", "1", str(job.path),
            env=private_engine.client_env(), stderr=stderr,
        )
        wait_running(job, proc)
        private_engine.kill()
        # The runner has seen it (and says so, with -v its retries too) before it comes back.
        wait_until(lambda: "the engine does not answer" in log.read_text(), 30, "the outage seen")
        private_engine.restart()
        job.go()
        _out, _ = proc.communicate(timeout=120)
    said = log.read_text()
    # Each listing the outage broke was tried again, and -v says so.
    retried = rf"{kind}: containers failed \(Connection refused\), try [234] of 4"
    assert re.search(retried, said), said
    assert f"{kind}: the engine answers again, after" in said, said

    job_dir = job_dir_of(tmp_path)
    results = read_results(job_dir)
    assert set(results) == {*job.task_ids(), "queued"}
    if kind == "docker":
        # dockerd, restarted without live-restore, stops every container it finds running.
        assert proc.returncode == 1
        for tid in job.task_ids():
            result, reason = results[tid]["result"], results[tid]["reason"]
            assert result == "error", results[tid]
            assert "during an outage of the docker engine (Connection refused)" in reason
        assert results["queued"]["result"] == "skipped"
    else:
        # Podman's containers live under conmon, not the service: they ran on, and passed.
        assert proc.returncode == 0, said
        assert {t["result"] for t in results.values()} == {"passed"}
    handles = list(started_handles(job_dir).values())
    assert private_engine.containers(f"spawnkit.job={job_dir.name}") == []
    wait_until(lambda: not job_processes(job, handles), 30, "the job's processes")
