"""What only the Slurm backend does: job IDs as handles, Slurm's own outcomes (OOM, a job
cancelled from outside), one squeue per poll, sbatch options, secrets kept off the
controller's words, and a job folder the nodes cannot write to.

On the real single-node Slurm of `.ci/slurm.sh`; with CI=true a test that cannot reach the
controller fails.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from spawnkit.core.registry import get_spawner_class
from spawnkit.core.spawner import SpawnerOptions
from spawnkit.core.task.description import Limits, SlurmSettings, Task
from spawnkit.spawners.slurm.spawner import SlurmSpawner
from spawnkit.spawners.slurm.stop import KILL_WAIT
from tests.conftest import RunCli, WriteTaskfile, cli_env
from tests.engines.conftest import (
    ENGINES,
    TEST_IMAGE,
    StartJob,
    containers_of,
    require_engine,
    run_job,
    scontrol_job,
    slurm_jobs_of,
)
from tests.faults.jobs import job_dir_of, read_results, start_cli, started_handles, wait_until

MiB = 1024 * 1024
HOG = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"
SECRET = "SlurmSecret-7f3a9c"


def victim(tmp_path: Path) -> tuple[Task, Path]:
    """A task that writes a marker once its command runs (a job RUNNING in Slurm's words may
    still be starting its script: a signal then finds nobody), then waits."""
    marker = tmp_path / "running"
    return Task.make("victim", f"touch {marker}; sleep 100", timeout=60.0), marker


def wait_for(path: Path, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not there within {within:g} s"
        time.sleep(0.02)


def test_handles_are_slurm_job_ids(slurm: str, start_job: StartJob, no_leftovers: None) -> None:
    tasks = [Task.make(f"t{i}", ["true"]) for i in range(3)]
    run = run_job(start_job, slurm, tasks)
    for rec in run.job.results().tasks:
        assert rec.result == "passed", rec
        assert rec.handle is not None and re.fullmatch(r"[1-9][0-9]*", rec.handle), rec.handle
        # The controller knows it by that ID, with our label.
        fields = scontrol_job(rec.handle)
        assert fields["JobState"] == "COMPLETED"
        assert fields["Comment"].startswith("spawnkit:owner=")
        assert f";task={rec.id}" in fields["Comment"]


def test_oom_is_reported(slurm: str, start_job: StartJob, no_leftovers: None) -> None:
    task = Task.make("hog", HOG, limits=Limits(memory=32 * MiB))
    run = run_job(start_job, slurm, [task])
    rec = run.record("hog")
    assert rec.oom, rec
    assert (rec.result, rec.reason) == ("error", "killed: out of memory (OOM)")
    assert "survived" not in run.output("hog", "stdout")
    assert scontrol_job(str(rec.handle))["JobState"] == "OUT_OF_MEMORY"


def test_exit_3_through_the_command_line(
    slurm: str, run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile('[[task]]\nid = "three"\ncommand = "echo before; exit 3"\n')
    done = run_cli("run", str(path), "--spawner", slurm, "-q")
    assert done.code == 1, done.stderr
    rec = done.task("three")
    assert (rec["result"], rec["exit_code"], rec["signal"], rec["reason"]) == (
        "failed", 3, None, "exit code 3")
    assert rec["applied"] == {}


def test_a_relative_working_folder_runs_there_and_is_no_warning(
    slurm: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    """A relative `cwd` is a folder of the task file's (its workspace, on the container
    backends): on Slurm the job runs there, and nothing is said to be ignored."""
    (tmp_path / "sub").mkdir()
    path = taskfile('[[task]]\nid = "here"\ncwd = "sub"\ncommand = "pwd"\n')
    done = run_cli("run", str(path), "--spawner", slurm, "-q")
    assert done.code == 0, done.stderr
    assert "cannot enforce" not in done.stderr
    assert (done.job_dir / done.task("here")["stdout"]).read_text() == f"{tmp_path / 'sub'}\n"


def test_timeout_through_the_command_line_leaves_no_job(
    slurm: str, run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile('[[task]]\nid = "sleepy"\ncommand = "sleep 60"\ntimeout = 2\n')
    done = run_cli("run", str(path), "--spawner", slurm, "-q")
    assert done.code == 1, done.stderr
    rec = done.task("sleepy")
    assert (rec["result"], rec["reason"]) == ("timed_out", "timed out after 2 s")
    assert rec["duration"] < 4.0, rec["duration"]
    assert slurm_jobs_of(done.job_dir.name) == []  # squeue no longer lists it
    # Slurm's --time only as a backstop: whole minutes, past the timeout and the grace.
    assert rec["applied"] == {"time_minutes": 2}


def test_a_stop_while_the_job_waits_in_the_queue_cancels_it_at_once(
    slurm: str, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    # Held: it waits in the queue as in a busy cluster. A signal to a job not started has
    # nowhere to go, and scancel tries one again for a minute and a half.
    path = taskfile('[[task]]\nid = "queued"\ncommand = "true"\n'
                    'slurm = { extra = ["--hold"] }\n')
    proc = start_cli(tmp_path, str(path), "--spawner", slurm, "-q")
    try:
        wait_until(lambda: (job_dir_of(tmp_path) / "journal.jsonl").is_file()
                   and "queued" in started_handles(job_dir_of(tmp_path)), 60, "the submit")
        job_id = started_handles(job_dir_of(tmp_path))["queued"]
        assert scontrol_job(job_id)["JobState"] == "PENDING"
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=120)
        assert time.monotonic() - began < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    rec = read_results(job_dir_of(tmp_path))["queued"]
    # Its command never began: not run, as a task the stop found unstarted (found by trying:
    # it was `interrupted`, its time in the queue as its duration).
    assert (rec["result"], rec["reason"]) == ("not_run", "not run: SIGTERM received"), rec
    assert scontrol_job(job_id)["JobState"] == "CANCELLED"
    assert slurm_jobs_of(job_dir_of(tmp_path).name) == []


def test_a_job_that_asks_for_what_no_node_has_ends_within_its_bound(
    slurm: str, start_job: StartJob, no_leftovers: None
) -> None:
    # sbatch takes it (the cluster does not set EnforcePartLimits); it would wait for ever.
    spawner = SlurmSpawner(SpawnerOptions(grace_period=1.0))
    spawner.pending_wait = 2.0
    tasks = [Task.make("huge", ["true"], limits=Limits(cpus=1000)), Task.make("fits", ["true"])]
    run = run_job(start_job, slurm, tasks, spawner=spawner)
    huge = run.record("huge")
    assert huge.result == "error", huge
    assert re.fullmatch(r"Slurm job (\d+) still PENDING \(PartitionConfig\) after 2 s, a reason "
                        r"no wait in the queue ends: Slurm will not run it as asked "
                        r"\('scontrol show job \1' says why\)", str(huge.reason)), huge.reason
    assert run.record("fits").result == "passed"
    assert slurm_jobs_of(run.job.job_id) == []


def test_cancelled_from_outside_is_failed_and_said(
    slurm: str, start_job: StartJob, no_leftovers: None, caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    caplog.set_level(logging.WARNING, logger="spawnkit")
    task, marker = victim(tmp_path)
    run = start_job(slurm, [task])
    handle = run.wait_started("victim")
    wait_for(marker)
    cancelled_at = time.monotonic()
    subprocess.run(["scancel", handle], check=True, timeout=60)
    run.wait(timeout=30)
    took = time.monotonic() - cancelled_at
    assert took < 5.0, (took, run.record("victim"))
    rec = run.record("victim")
    # The command died of Slurm's TERM: failed, with the signal (the node recorded it).
    assert (rec.result, rec.signal, rec.oom) == ("failed", 15, False), rec
    # The signal, and the backend's words on who sent it.
    assert rec.reason == (f"killed by signal 15 (SIGTERM): Slurm job {handle} was cancelled "
                          "outside spawnkit"), rec.reason
    said = [r.getMessage() for r in caplog.records]
    assert f"slurm: job {handle} (task victim) was cancelled outside spawnkit (CANCELLED" \
        in " ".join(said), said


def test_killed_from_outside_is_the_signal(
    slurm: str, start_job: StartJob, no_leftovers: None, tmp_path: Path
) -> None:
    """A KILL of the job's batch script (Slurm then kills the rest): the engine says SIGKILL."""
    task, marker = victim(tmp_path)
    run = start_job(slurm, [task])
    handle = run.wait_started("victim")
    wait_for(marker)
    subprocess.run(["scancel", "-b", "--signal=KILL", handle], check=True, timeout=60)
    run.wait(timeout=30)
    rec = run.record("victim")
    assert (rec.result, rec.signal, rec.reason) == (
        "failed", 9, "killed by signal 9 (SIGKILL)"), rec


def test_one_squeue_per_poll_for_all_tasks(
    slurm: str, start_job: StartJob, no_leftovers: None
) -> None:
    spawner = get_spawner_class(slurm)(SpawnerOptions(grace_period=1.0))
    assert isinstance(spawner, SlurmSpawner)
    calls: dict[str, int] = {}
    real_open = spawner.open

    async def counting_open(job: Any) -> None:
        await real_open(job)
        tools = spawner._tools
        assert tools is not None
        real_run = tools.run

        async def counted(tool: str, *args: str, **kw: Any) -> Any:
            name = f"{tool} {args[0]}" if tool == "scontrol" else tool
            calls[name] = calls.get(name, 0) + 1
            return await real_run(tool, *args, **kw)

        tools.run = counted  # type: ignore[method-assign]

    spawner.open = counting_open  # type: ignore[method-assign]
    tasks = [Task.make(f"t{i}", ["sleep", "2"]) for i in range(8)]
    began = time.monotonic()
    run = run_job(start_job, slurm, tasks, spawner=spawner)
    elapsed = time.monotonic() - began
    assert all(t.result == "passed" for t in run.job.results().tasks)
    assert calls["squeue"] <= elapsed / spawner.poll_interval + 2, (calls, elapsed)
    # One sbatch per task and the node check; nothing per task to poll or collect (a poll
    # slower than the interval, on a loaded machine, asks `scontrol ping` for the words).
    assert calls["sbatch"] == len(tasks) + 1, calls
    assert set(calls) <= {"sbatch", "squeue", "scontrol ping"}, calls


def test_sbatch_gets_the_settings(slurm: str, start_job: StartJob, no_leftovers: None) -> None:
    settings = SlurmSettings(partition="spawnkit", extra=("--nice=7",))
    task = Task.make("sized", ["sh", "-c", "echo $SLURM_CPUS_PER_TASK"], slurm=settings,
                     limits=Limits(cpus=1.5, memory=100 * MiB), timeout=30.0)
    run = run_job(start_job, slurm, [task])
    rec = run.record("sized")
    assert rec.result == "passed", rec
    assert run.output("sized", "stdout") == "2\n"  # 1.5 cpus: Slurm allocates whole ones
    fields = scontrol_job(str(rec.handle))
    assert (fields["Partition"], fields["Nice"], fields["MinMemoryNode"]) == (
        "spawnkit", "7", "100M")
    assert fields["TimeLimit"] == "00:02:00"  # the backstop: 30 s + 1 s grace, whole minutes
    assert rec.applied == {"partition": "spawnkit", "cpus_per_task": 2, "mem": "102400K",
                           "time_minutes": 2, "extra": ["--nice=7"]}


def test_options_spawnkit_sets_are_refused(
    slurm: str, start_job: StartJob, no_leftovers: None
) -> None:
    """However they are written: sbatch takes `--comm` for `--comment`, `-ofile` for `-o file`.
    What only begins like one of them (`--wait-all-nodes`, not `--wait`) is the user's."""
    extra = ("--output=/tmp/x", "-J", "x", "--comm=mine", "--requ", "--job-n=renamed",
             "-o/tmp/y", "--wait-all-nodes=1", "--nice=7")
    task = Task.make("bad", ["true"], slurm=SlurmSettings(extra=extra))
    run = run_job(start_job, slurm, [task])
    rec = run.record("bad")
    assert (rec.result, rec.status) == ("error", "fail_triage")
    assert rec.reason == ("slurm extra sets what spawnkit sets itself: --output=/tmp/x, -J, "
                          "--comm=mine, --requ, --job-n=renamed, -o/tmp/y")


def test_missing_working_folder_is_named(
    slurm: str, start_job: StartJob, no_leftovers: None
) -> None:
    run = run_job(start_job, slurm, [Task.make("lost", ["true"], cwd="/no/such/dir")])
    rec = run.record("lost")
    assert (rec.result, rec.status) == ("error", "fail_start"), rec
    assert rec.reason == "working folder '/no/such/dir' does not exist"


def test_secret_reaches_only_its_task_masked_and_off_slurm(
    slurm: str, start_job: StartJob, no_leftovers: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLURM_TEST_TOKEN", SECRET)
    tasks = [
        Task.make("uses", 'echo "token=$SLURM_TEST_TOKEN"; echo $SLURM_TEST_TOKEN >&2',
                  secrets=("SLURM_TEST_TOKEN",)),
        Task.make("other", 'echo "seen=${SLURM_TEST_TOKEN:-none}"'),
    ]
    run = run_job(start_job, slurm, tasks)
    assert run.output("uses", "stdout") == "token=***\n"
    assert run.output("uses", "stderr") == "***\n"
    assert run.output("other", "stdout") == "seen=none\n"  # undeclared: not in its job
    job_dir = run.job.job_dir
    assert [p for p in job_dir.rglob("*") if p.is_file() and SECRET.encode() in p.read_bytes()
            ] == []
    for rec in run.job.results().tasks:
        words = subprocess.run(["scontrol", "show", "job", "-dd", str(rec.handle)],
                               capture_output=True, text=True, timeout=60, check=True).stdout
        script = subprocess.run(["scontrol", "write", "batch_script", str(rec.handle), "-"],
                                capture_output=True, text=True, timeout=60, check=True).stdout
        assert SECRET not in words + script


def test_slurm_options_on_the_command_line(
    slurm: str, run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile('[[task]]\nid = "p"\ncommand = "true"\n'
                    '[[task]]\nid = "own"\ncommand = "true"\nslurm = { partition = "nope" }\n')
    done = run_cli("run", str(path), "--spawner", slurm, "--slurm-partition", "spawnkit", "-q")
    assert done.task("p")["result"] == "passed", done.stderr
    assert done.task("p")["applied"]["partition"] == "spawnkit"
    # The task file's own partition wins (as for --network); Slurm refuses an unknown one.
    own = done.task("own")
    assert (own["result"], own["status"]) == ("error", "fail_start")
    assert "sbatch refused the job of task 'own'" in own["reason"]
    assert "invalid partition" in own["reason"].lower()


def test_job_folder_the_nodes_cannot_write_is_a_clear_error(
    slurm: str, tmp_path: Path
) -> None:
    """The runner writes its results where no node sees them (a mount of its own): the check
    job says so, every task fails with that said, nothing is lost or left in the queue."""
    results = tmp_path / "private-results"
    results.mkdir()
    path = tmp_path / "tasks.toml"
    path.write_text("".join(f'[[task]]\nid = "t{i}"\ncommand = "echo {i}"\n' for i in range(3)))
    # The runner in a mount namespace of its own, its results folder a tmpfs only it sees.
    runner = (f"mount -t tmpfs none {results} && exec {sys.executable} -m spawnkit.cli run "
              f"{path} --spawner {slurm} --results {results} --max-running 1 -q --json "
              f"{tmp_path / 'results.json'}")
    done = subprocess.run(["unshare", "-m", "sh", "-c", runner], capture_output=True, text=True,
                          timeout=120, env={**cli_env(tmp_path), "PATH": "/usr/bin:/bin",
                                            **_slurm_env()}, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    tasks = json.loads((tmp_path / "results.json").read_text())["tasks"]
    assert len(tasks) == 3
    for rec in tasks:
        assert rec["result"] == "error", rec
        assert ("must be on storage the nodes share" in rec["reason"]), rec["reason"]
    job_id = json.loads((tmp_path / "results.json").read_text())["job_id"]
    assert slurm_jobs_of(job_id) == []


def _slurm_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("SLURM_")}


# -- container tasks on Slurm ---------------------------------------------------------------


@pytest.fixture(params=[pytest.param(e, marks=[getattr(pytest.mark, e), pytest.mark.engine])
                        for e in ENGINES])
def node_engine(request: pytest.FixtureRequest, slurm: str) -> str:
    """An engine the Slurm node runs container tasks on (the shared one: one machine)."""
    name: str = request.param
    require_engine(name)
    return name


def test_container_task_runs_isolated_under_the_node_engine(
    slurm: str, node_engine: str, start_job: StartJob, no_leftovers: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLURM_TEST_TOKEN", SECRET)
    on_node = SlurmSettings(container=node_engine)
    tasks = [
        Task.make("inside", 'echo "$GREETING $SLURM_TEST_TOKEN"; grep NoNewPrivs /proc/self/status',
                  env={"GREETING": "hello"}, secrets=("SLURM_TEST_TOKEN",), image=TEST_IMAGE,
                  slurm=on_node),
        Task.make("three", "exit 3", image=TEST_IMAGE, slurm=on_node),
        Task.make("stubborn", "trap '' TERM; sleep 100", image=TEST_IMAGE, slurm=on_node,
                  timeout=1.0),
    ]
    run = run_job(start_job, slurm, tasks, grace=1.0)
    assert run.record("inside").result == "passed", run.record("inside")
    assert run.output("inside", "stdout") == "hello ***\nNoNewPrivs:\t1\n"
    applied = run.record("inside").applied
    assert applied is not None and applied["container"]["engine"] == node_engine
    assert applied["container"]["no_new_privileges"] is True
    assert (run.record("three").result, run.record("three").exit_code) == ("failed", 3)
    stubborn = run.record("stubborn")
    assert stubborn.result == "timed_out", stubborn
    # Timeout, grace, KILL; on a loaded node the engine's CLI may still be starting the
    # container then, and the job is cancelled outright after KILL_WAIT: bounded either way.
    assert stubborn.duration is not None and stubborn.duration < 1 + 1 + KILL_WAIT + 2, \
        stubborn.duration
    # Every container of the job removed (the TERM-proof one by the KILL after the grace).
    assert containers_of(node_engine, run.job.job_id) == []


def test_container_task_killed_from_outside_leaves_no_container(
    slurm: str, node_engine: str, start_job: StartJob, no_leftovers: None, tmp_path: Path
) -> None:
    """A plain `docker run` in a job outlives the job; the wrapper's dead-man switch does not
    let it, even when its batch script is KILLed."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    task = Task.make("victim", "touch /workspace/running; sleep 100", image=TEST_IMAGE,
                     slurm=SlurmSettings(container=node_engine), timeout=60.0,
                     limits=Limits(workspace=str(workspace)))
    run = start_job(slurm, [task])
    handle = run.wait_started("victim")
    wait_for(workspace / "running")
    subprocess.run(["scancel", "-b", "--signal=KILL", handle], check=True, timeout=60)
    run.wait(timeout=60)
    rec = run.record("victim")
    assert (rec.result, rec.signal) == ("failed", 9), rec
    deadline = time.monotonic() + 20
    while containers_of(node_engine, run.job.job_id):
        assert time.monotonic() < deadline, "the container outlived its Slurm job"
        time.sleep(0.1)


def test_an_entrypoint_without_a_container_is_named_and_strict_refuses(
    slurm: str, run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    # Words of an image's, on a node without the image: as on the process backend.
    path = taskfile('[[task]]\nid = "e"\ncommand = ["echo", "cmd"]\n'
                    'entrypoint = ["echo", "entry"]\n')
    done = run_cli("run", str(path), "--spawner", slurm, "--strict")
    assert done.code == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        "spawnkit: error: the slurm backend cannot enforce: entrypoint (e); use a container "
        "backend, or drop --strict"]
