"""What only container backends do: images, OOM, labels, limits, the engine's own faults."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from spawnkit.core.registry import get_spawner_class
from spawnkit.core.task.description import Limits, Mount, Task
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.container.engine import ContainerSpec
from spawnkit.spawners.container.faults import is_transient
from spawnkit.spawners.container.spawner import ContainerSpawner
from spawnkit.spawners.container.spec import LABEL_MANAGED
from tests.engines.conftest import (
    TEST_IMAGE,
    StartJob,
    containers_of,
    engine_class,
    engine_cli,
    make_spawner,
    remove_containers,
    run_job,
)

MiB = 1024 * 1024
# The shell holds 100 MB of output in a variable: far past a 16 MiB limit.
HOG = "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"


def test_oom_is_reported(engine_name: str, start_job: StartJob, no_leftovers: None) -> None:
    task = Task.make("hog", HOG, limits=Limits(memory=16 * MiB))
    run = run_job(start_job, engine_name, [task])
    rec = run.record("hog")
    assert rec.oom, rec
    assert (rec.result, rec.reason) == ("error", "killed: out of memory (OOM)")
    assert "survived" not in run.output("hog", "stdout")


def test_kill_under_a_memory_limit_is_not_oom(
    engine_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    """Podman flags no OOM itself: 137 under a memory limit is told apart by the kill event."""
    task = Task.make("limited", ["sleep", "100"], limits=Limits(memory=64 * MiB))
    run = start_job(engine_name, [task])
    engine_cli(engine_name, "kill", run.wait_started("limited"))
    run.wait()
    rec = run.record("limited")
    assert (rec.result, rec.signal, rec.oom) == ("failed", signal.SIGKILL, False)


def test_missing_image_fails_triage_fast(
    engine_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    image = "spawnkit-missing-image:nope"
    tasks = [Task.make("a", ["true"], image=image), Task.make("b", ["true"], image=image)]
    began = time.monotonic()
    run = run_job(start_job, engine_name, tasks)
    assert time.monotonic() - began < 15
    for tid in ("a", "b"):
        rec = run.record(tid)
        assert (rec.result, rec.status, rec.handle) == ("error", "fail_triage", None)
        assert rec.reason is not None
        assert f"image '{image}' is not on the {engine_name} engine" in rec.reason
        # The engine's own words follow.
        assert rec.reason.split("cannot be pulled: ", 1)[1]


def test_more_cpus_than_the_machine_has_is_one_error_on_both_engines(
    engine_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    # Docker refused such a container with words of its own; Podman ran it with what there is.
    engine = engine_class(engine_name)()
    engine.open()
    try:
        have = engine.machine_cpus()
    finally:
        engine.close()
    assert have is not None and have < 1000
    tasks = [Task.make("big", ["true"], limits=Limits(cpus=1000)),
             Task.make("fits", ["true"], limits=Limits(cpus=1))]
    run = run_job(start_job, engine_name, tasks)
    big = run.record("big")
    assert (big.result, big.status, big.handle) == ("error", "fail_triage", None), big
    assert big.reason == (f"cpus = 1000 is more than the {have} CPUs of the {engine_name} "
                          "engine's machine")
    assert run.record("fits").result == "passed"


def test_no_image_at_all_is_a_clear_triage_failure(
    engine_name: str, start_job: StartJob
) -> None:
    run = run_job(start_job, engine_name, [Task.make("a", ["true"])], image=None)
    rec = run.record("a")
    assert rec.status == "fail_triage"
    assert rec.reason is not None and "no image" in rec.reason and "--image" in rec.reason


def test_removed_from_outside_ends_with_the_reason(
    engine_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    run = start_job(engine_name, [Task.make("gone", ["sleep", "100"], timeout=60.0)])
    handle = run.wait_started("gone")
    engine_cli(engine_name, "rm", "-f", handle)
    run.wait(timeout=30)
    rec = run.record("gone")
    assert rec.result == "error"
    assert rec.reason is not None and f"container {handle[:12]} disappeared" in rec.reason


def test_handle_labels_and_keep(engine_name: str, start_job: StartJob) -> None:
    run = run_job(start_job, engine_name, [Task.make("kept", ["true"])], keep_containers=True)
    handle = run.record("kept").handle
    assert handle is not None and len(handle) == 64 and int(handle, 16) >= 0
    try:
        assert containers_of(engine_name, run.job.job_id) == [handle]
        labels = json.loads(engine_cli(engine_name, "inspect", "--format",
                                       "{{json .Config.Labels}}", handle))
        assert labels["spawnkit.managed"] == "true"
        assert labels["spawnkit.job"] == run.job.job_id
        assert labels["spawnkit.task"] == "kept"
        assert labels["spawnkit.owner"] == run.job.owner
        assert labels["spawnkit.keep"] == "true"  # so that gc leaves it be once ended
    finally:
        remove_containers(engine_name, [handle])


def test_limits_are_applied(
    engine_name: str, start_job: StartJob, tmp_path: Path, no_leftovers: None
) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "input.txt").write_text("from the host\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "data").write_text("mounted\n")
    script = (
        "cat input.txt; pwd; id -u; ls /sys/class/net; cat /data/data; "
        "touch /tmp/ok && echo tmp-writable; "
        "touch /rootfile 2>/dev/null || echo root-read-only; "
        "touch /data/new 2>/dev/null || echo mount-read-only; "
        "echo result > /workspace/out.txt"
    )
    limits = Limits(
        cpus=0.5, memory=64 * MiB, pids=32, network="none", user="65534:65534",
        read_only=True, cap_drop=("NET_RAW",),
        mounts=(Mount(str(extra), "/data", read_only=True),),
        workspace=str(workspace),
    )
    workspace.chmod(0o777)
    run = run_job(start_job, engine_name, [Task.make("limits", script, limits=limits)],
                  keep_containers=True)
    rec = run.record("limits")
    handle = rec.handle
    assert handle is not None
    try:
        assert rec.result == "passed", (rec, run.output("limits", "stderr"))
        assert run.output("limits", "stdout").splitlines() == [
            "from the host", "/workspace", "65534", "lo", "mounted",
            "tmp-writable", "root-read-only", "mount-read-only",
        ]
        assert (workspace / "out.txt").read_text() == "result\n"
        host = json.loads(engine_cli(engine_name, "inspect", "--format",
                                     "{{json .HostConfig}}", handle))
        assert host["Memory"] == 64 * MiB
        assert host["PidsLimit"] == 32
        assert host["ReadonlyRootfs"] is True
        cpu = host.get("NanoCpus") or host["CpuQuota"] * 1e9 / host["CpuPeriod"]
        assert cpu == 0.5e9
    finally:
        remove_containers(engine_name, [handle])


def test_one_listing_per_poll(engine_name: str, start_job: StartJob, no_leftovers: None) -> None:
    """Liveness of many tasks costs one engine call per poll, not one per container."""
    spawner = make_spawner(engine_name, _options())
    assert isinstance(spawner, ContainerSpawner)
    calls: dict[str, int] = {"containers": 0, "inspect": 0}
    engine = spawner.engine
    for name in calls:
        original = getattr(engine, name)

        def counted(*args: Any, _original: Any = original, _name: str = name) -> Any:
            calls[_name] += 1
            return _original(*args)

        setattr(engine, name, counted)
    tasks = [Task.make(f"t{i}", ["sleep", "2"]) for i in range(8)]
    began = time.monotonic()
    run = run_job(start_job, engine_name, tasks, spawner=spawner)
    elapsed = time.monotonic() - began
    assert all(t.result == "passed" for t in run.job.results().tasks)
    polls = elapsed / spawner.poll_interval
    assert calls["containers"] <= polls + 2, (calls, elapsed)
    # Inspect only to collect each task (and its own retries), never to poll.
    assert calls["inspect"] <= 2 * len(tasks), calls


def test_a_task_that_ends_within_a_short_timeout_passes(engine_name: str, run_cli: Any,
                                                        tmp_path: Path) -> None:
    """The engine tells of an exit a moment after it: a deadline that passes in between finds
    the container ended by itself, and its own exit stands (it was `timed_out`, exit code 0)."""
    text = f'[defaults]\nimage = "{TEST_IMAGE}"\n' + "".join(
        f'[[task]]\nid = "t{i}"\ncommand = "sleep 0.2; echo done"\ntimeout = 0.25\n'
        for i in range(6))
    (tmp_path / "short.toml").write_text(text)
    done = run_cli("run", "-q", "--spawner", engine_name, str(tmp_path / "short.toml"))
    assert done.code == 0, done.stdout + done.stderr
    for i in range(6):
        rec = done.task(f"t{i}")
        assert (rec["result"], rec["exit_code"]) == ("passed", 0), rec
        assert rec["notes"] in ([], [
            "it had ended by itself when its stop (timed out after 0.25 s) came: judged by "
            "its own exit"]), rec
        assert (done.job_dir / rec["stdout"]).read_text() == "done\n"


def test_engine_down_is_one_line_and_exit_2(engine_name: str, run_cli: Any) -> None:
    earlier = run_cli("run", "-q", "--", "true")  # on the process backend
    assert earlier.code == 0, earlier.stderr
    done = run_cli("run", "--spawner", engine_name, "--engine-url", "unix:///nonexistent.sock",
                   "--image", TEST_IMAGE, "--", "true")
    assert done.code == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"spawnkit: error: cannot reach the {engine_name} engine at "
                               "unix:///nonexistent.sock")
    assert "started" not in done.stdout + done.stderr
    # Nothing ran: no empty job folder, and `latest` is still the job that ran.
    assert sorted(p.name for p in done.results_root.iterdir()) == sorted(
        [earlier.job_dir.name, "latest"])
    assert done.job_dir == earlier.job_dir and (done.job_dir / "results.json").is_file()


def test_images_build_and_list(engine_name: str, run_cli: Any) -> None:
    tag = f"spawnkit-busybox:test-{int(time.time() * 1000)}"
    try:
        built = run_cli("images", "build", "busybox", "--spawner", engine_name, "--tag", tag)
        assert built.code == 0, built.stderr
        assert f"{engine_name}: built {tag}" in built.stdout
        listed = run_cli("images", "list", "--spawner", engine_name)
        assert listed.code == 0, listed.stderr
        assert tag in listed.stdout
        out = engine_cli(engine_name, "run", "--rm", tag, "sh", "-c", "echo $((6 * 7))")
        assert out == "42\n"
    finally:
        engine_cli(engine_name, "rmi", tag, check=False)


def test_transient_errors_are_told_from_permanent_ones() -> None:
    import requests

    class Fake(Exception):
        def __init__(self, code: int, text: str) -> None:
            super().__init__(text)
            self.status_code = code
            self.explanation = text

    reset = requests.exceptions.ConnectionError(ConnectionResetError(104, "Connection reset"))
    assert is_transient(reset, idempotent=False)
    assert is_transient(Fake(503, "busy"), idempotent=False)
    assert is_transient(Fake(500, "boom"), idempotent=True)
    assert not is_transient(Fake(500, "executable file not found"), idempotent=False)
    assert is_transient(Fake(500, "net/http: TLS handshake timeout"), idempotent=False)
    assert not is_transient(Fake(404, "no such container"), idempotent=True)
    assert not is_transient(Fake(409, "conflict"), idempotent=True)


@pytest.mark.parametrize("name", ["docker", "podman"])
def test_spec_of_a_task(name: str, tmp_path: Path) -> None:
    """No engine needed: what a task becomes, labels and limits included."""
    from spawnkit.core.spawner import JobContext

    spawner = get_spawner_class(name)(_options())
    assert isinstance(spawner, ContainerSpawner)
    spawner.job = JobContext("job-1", tmp_path, "host:1:2")
    task = Task.make("a/b", "echo hi", env={"A": "1"},
                     limits=Limits(read_only=True, workspace="/src", workspace_read_only=True))
    spec = spawner.container_spec(RuntimeTask(task))
    assert isinstance(spec, ContainerSpec)
    assert spec.command == ["sh", "-c", "echo hi"]
    assert spec.image == TEST_IMAGE and spec.env == {"A": "1"}
    assert spec.workdir == "/workspace"
    assert spec.labels == {"spawnkit.managed": "true", "spawnkit.job": "job-1",
                           "spawnkit.task": "a/b", "spawnkit.owner": "host:1:2",
                           "spawnkit.job-dir": str(tmp_path)}
    assert [(m.target, m.source, m.read_only) for m in spec.mounts] == [
        ("/workspace", "/src", True), ("/tmp", None, False)]
    assert spec.name is not None and "/" not in spec.name


def _options() -> Any:
    from spawnkit.core.spawner import SpawnerOptions

    return SpawnerOptions(image=TEST_IMAGE, grace_period=1.0)


def test_reap_orphans_takes_only_dead_runners_containers(engine_name: str) -> None:
    import asyncio
    import socket

    from spawnkit.core.owner import runner_owner

    dead = f"{socket.gethostname()}:999999999:1"
    made = {
        "dead": ["--label", "spawnkit.managed=true", "--label", f"spawnkit.owner={dead}",
                 "--label", "spawnkit.job=j-dead", "--label", "spawnkit.task=t"],
        "alive": ["--label", "spawnkit.managed=true", "--label",
                  f"spawnkit.owner={runner_owner()}"],
        "foreign": ["--label", f"spawnkit.owner={dead}"],  # not spawnkit's
        "kept": ["--label", "spawnkit.managed=true", "--label", f"spawnkit.owner={dead}",
                 "--label", "spawnkit.keep=true"],  # --keep-containers, ended
    }
    ids = {k: engine_cli(engine_name, "create", *labels, TEST_IMAGE, "true").strip()
           for k, labels in made.items()}
    try:
        engine_cli(engine_name, "start", "-a", ids["kept"])  # returns once it has ended
        spawner = make_spawner(engine_name, _options())
        assert isinstance(spawner, ContainerSpawner)

        async def reap(dry_run: bool, grace: float) -> list[str]:
            await spawner.open(None)
            try:
                spawner.orphan_grace = grace  # type: ignore[misc]
                return await spawner.reap_orphans(dry_run=dry_run)
            finally:
                await spawner.close()

        # Too young: a container may be in the middle of being made.
        assert asyncio.run(reap(False, 3600.0)) == []
        said = asyncio.run(reap(True, 0.0))
        assert said == [f"container {ids['dead'][:12]} (job j-dead, task t)"]
        assert asyncio.run(reap(False, 0.0)) == said
        left = set(engine_cli(engine_name, "ps", "-a", "-q", "--no-trunc").split())
        assert ids["dead"] not in left
        assert {ids["alive"], ids["foreign"], ids["kept"]} <= left
    finally:
        remove_containers(engine_name, list(ids.values()))


def test_retry_is_bounded_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import requests

    from spawnkit.spawners.docker import DockerEngine

    engine = DockerEngine("unix:///nonexistent.sock")
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise requests.exceptions.ConnectionError(ConnectionResetError(104, "reset"))
        return "ok"

    with caplog.at_level(logging.INFO, logger="spawnkit"):
        assert engine.retry(flaky, idempotent=False) == "ok"
    assert calls["n"] == 3
    assert len([r for r in caplog.records if "flaky failed" in r.getMessage()]) == 2

    def always_down() -> None:
        calls["n"] += 1
        raise requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused"))

    calls["n"] = 0
    with pytest.raises(requests.exceptions.ConnectionError):
        engine.retry(always_down, idempotent=True)
    assert calls["n"] == engine.retry_attempts

    class Permanent(Exception):
        status_code = 400

    def bad_request() -> None:
        calls["n"] += 1
        raise Permanent("bad")

    calls["n"] = 0
    with pytest.raises(Permanent):
        engine.retry(bad_request, idempotent=True)
    assert calls["n"] == 1


def test_a_followed_log_outlasts_the_engine_calls_timeout(engine_name: str) -> None:
    """Live output of a task silent for longer than the engine client's timeout (2 s here,
    60 s in a run) goes on: the followed stream waits, as long as the container runs."""
    cid = engine_cli(engine_name, "run", "-d", "--label", f"{LABEL_MANAGED}=true", TEST_IMAGE,
                     "sh", "-c", "echo a; sleep 4; echo b").strip()
    engine = engine_class(engine_name)(pool_size=2, timeout=2.0)
    engine.open()
    try:
        began = time.monotonic()
        followed = b"".join(chunk for name, chunk in engine.logs(cid, follow=True)
                            if name == "stdout")
        assert followed == b"a\nb\n"
        assert time.monotonic() - began > 3  # it followed the silence, not a late read
    finally:
        engine.close()
        engine_cli(engine_name, "rm", "-f", cid)
