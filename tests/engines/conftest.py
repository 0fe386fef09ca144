"""Fixtures of the conformance suite: the same tests on process, docker, podman and slurm.

An engine that cannot be reached (or lacks the test image) skips its tests with the reason,
except with CI=true, where it fails them: CI must never pass on tests that did not run.
Set the engines up with `source .ci/engines.sh`, Slurm with `source .ci/slurm.sh`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from spawnkit.core.errors import EngineUnavailable
from spawnkit.core.job import Job, JobSettings, make_job_dir, new_job_id
from spawnkit.core.registry import get_spawner_class
from spawnkit.core.results import JobResult, TaskRecord
from spawnkit.core.spawner import Spawner, SpawnerOptions
from spawnkit.core.task.description import Task
from spawnkit.core.task.statusrepo import StatusEntry
from spawnkit.spawners.container.engine import Engine
from spawnkit.spawners.container.spawner import ContainerSpawner
from spawnkit.spawners.container.spec import LABEL_JOB, LABEL_MANAGED
from tests.engines.kubernetes_cluster import kubectl, kubernetes_objects, kubernetes_problem

TEST_IMAGE = os.environ.get("SPAWNKIT_TEST_IMAGE", "spawnkit-busybox:latest")
ENGINES = ("docker", "podman")

BACKENDS = [
    pytest.param("process", id="process"),
    pytest.param("docker", id="docker", marks=[pytest.mark.docker, pytest.mark.engine]),
    pytest.param("podman", id="podman", marks=[pytest.mark.podman, pytest.mark.engine]),
    pytest.param("slurm", id="slurm", marks=[pytest.mark.slurm]),
    pytest.param("kubernetes", id="kubernetes", marks=[pytest.mark.kubernetes]),
]
CONTAINER_BACKENDS = [p for p in BACKENDS if p.values[0] in ENGINES]
SLURM_BACKENDS = [p for p in BACKENDS if p.values[0] == "slurm"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def engine_class(name: str) -> type[Engine]:
    cls = get_spawner_class(name)
    assert issubclass(cls, ContainerSpawner)
    return cls.engine_class


def _slurm_problem() -> str | None:
    """`scontrol ping`: the controller answers, or why not."""
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scontrol ping: {exc} (run: source .ci/slurm.sh)"
    if ping.returncode != 0 or "is UP" not in ping.stdout:
        words = " ".join((ping.stderr or ping.stdout).split())
        return f"scontrol ping: {words} (run: source .ci/slurm.sh)"
    return None


@functools.cache
def _engine_problem(name: str) -> str | None:
    """Why the engine cannot serve the tests, or None. Asked once per session."""
    if name == "slurm":
        return _slurm_problem()
    if name == "kubernetes":
        return kubernetes_problem()
    engine = engine_class(name)()
    try:
        engine.open()
    except EngineUnavailable as exc:
        return str(exc)
    try:
        if not engine.image_exists(TEST_IMAGE):
            return f"test image {TEST_IMAGE} is not on {name} (run: source .ci/engines.sh)"
    finally:
        engine.close()
    return None


def require_engine(name: str) -> None:
    if name == "process":
        return
    problem = _engine_problem(name)
    if problem is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and {name} cannot be used: {problem}", pytrace=False)
    pytest.skip(f"{name} cannot be used: {problem}")


@pytest.fixture(params=BACKENDS)
def spawner_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    require_engine(name)
    return name


@pytest.fixture(params=CONTAINER_BACKENDS)
def engine_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    require_engine(name)
    return name


@pytest.fixture(params=SLURM_BACKENDS)
def slurm(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    require_engine(name)
    return name


def scontrol_job(job_id: str) -> dict[str, str]:
    """Slurm's word on a job (`scontrol show job`): its fields by name."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job_id], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)


@pytest.fixture(autouse=True)
def _own_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs index of in-process jobs under tmp_path, as the CLI fixtures do."""
    monkeypatch.setenv("SPAWNKIT_STATE_DIR", str(tmp_path / "state"))


# -- running jobs through the Job API ---------------------------------------------------------


@dataclass
class JobRun:
    """A job running in a thread of its own, so a test can act while it runs."""

    job: Job
    started: dict[str, str] = field(default_factory=dict)  # task id -> handle
    _events: dict[str, threading.Event] = field(default_factory=dict)
    result: JobResult | None = None
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def wait_started(self, task_id: str, timeout: float = 30.0) -> str:
        event = self._events.setdefault(task_id, threading.Event())
        assert event.wait(timeout), f"task {task_id} did not start within {timeout} s"
        return self.started[task_id]

    def wait(self, timeout: float = 60.0) -> JobResult:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"job did not end within {timeout} s"
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def record(self, task_id: str) -> TaskRecord:
        assert self.result is not None
        return next(t for t in self.result.tasks if t.id == task_id)

    def output(self, task_id: str, stream: str) -> str:
        return (self.job.job_dir / self.record(task_id).__dict__[stream]).read_text()

    def _listen(self, entry: StatusEntry) -> None:
        if entry.status == "started":
            self.started[entry.task_id] = str(entry.data["handle"])
            self._events.setdefault(entry.task_id, threading.Event()).set()


def make_spawner(name: str, options: SpawnerOptions) -> Spawner:
    return get_spawner_class(name)(options)


StartJob = Callable[..., JobRun]


@pytest.fixture
def start_job(tmp_path: Path) -> Iterator[StartJob]:
    """Start a job of tasks on a backend, in a thread; `.wait()` gives its results."""
    runs: list[JobRun] = []

    def _start(
        name: str,
        tasks: Sequence[Task],
        *,
        timeout: float | None = None,
        grace: float = 1.0,
        failfast: bool = False,
        max_running: int | None = 8,
        image: str | None = TEST_IMAGE,
        keep_containers: bool = False,
        spawner: Spawner | None = None,
    ) -> JobRun:
        options = SpawnerOptions(image=image, keep_containers=keep_containers, grace_period=grace)
        spawner = spawner or make_spawner(name, options)
        job_id = new_job_id()
        job_dir = make_job_dir(tmp_path / "results", job_id)
        settings = JobSettings(
            max_running=max_running, task_timeout=timeout, failfast=failfast, grace_period=grace
        )
        run = JobRun(Job(list(tasks), spawner, job_dir, job_id, settings))
        run.job.status_repo.add_listener(run._listen)

        def body() -> None:
            try:
                run.result = asyncio.run(run.job.run())
            except BaseException as exc:
                run.error = exc

        run.thread = threading.Thread(target=body, name=f"job-{job_id}", daemon=True)
        run.thread.start()
        runs.append(run)
        return run

    yield _start
    for run in runs:
        if run.thread is not None:
            run.thread.join(60)


def run_job(start_job: StartJob, name: str, tasks: Sequence[Task], **kw: Any) -> JobRun:
    run = start_job(name, tasks, **kw)
    run.wait()
    return run


# -- looking at the engines from outside -------------------------------------------------------


def engine_argv(name: str) -> list[str]:
    """The engine's own command line. Podman's talks to the same API service spawnkit does
    (--remote): its local mode needs this machine's containers.conf (.ci/engines.sh), the
    service has it already."""
    if name == "podman":
        return ["podman", "--remote", "--url", engine_class(name).default_url()]
    return [name]


def engine_cli(name: str, *args: str, check: bool = True) -> str:
    """Run the engine's own command line (`docker ...`, `podman ...`)."""
    proc = subprocess.run([*engine_argv(name), *args], capture_output=True, text=True,
                          timeout=120, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{name} {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout


def containers_of(name: str, job_id: str | None = None) -> list[str]:
    """IDs of spawnkit's containers on the engine (of one job, if given), running or not."""
    label = f"{LABEL_JOB}={job_id}" if job_id else f"{LABEL_MANAGED}=true"
    out = engine_cli(name, "ps", "-a", "-q", "--no-trunc", "--filter", f"label={label}")
    return out.split()


def remove_containers(name: str, ids: Sequence[str]) -> None:
    if ids:
        engine_cli(name, "rm", "-f", *ids, check=False)


def slurm_jobs_of(job_id: str, *, active: bool = True) -> list[str]:
    """Slurm job IDs of a spawnkit job (by the label in their comment): those still queued,
    running or ending, or with `active` False every one the controller remembers."""
    states = [] if active else ["-t", "all"]
    out = subprocess.run(["squeue", "-h", *states, "-O", "JobID:|,Comment:"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    found = []
    for line in out.splitlines():
        slurm_id, _, comment = line.partition("|")
        if f";job={job_id};" in comment:
            found.append(slurm_id.strip())
    return found


def kill_from_outside(name: str, handle: str) -> None:
    """SIGKILL the task from outside spawnkit, as each backend's users would: a process by its
    PID, a container through its engine, a Slurm job through Slurm (its batch script; Slurm
    then kills the rest of the job)."""
    if name in ENGINES:
        engine_cli(name, "kill", handle)
    elif name == "slurm":
        _wait_command_started(handle)
        subprocess.run(["scancel", "-b", "--signal=KILL", handle], check=True, timeout=60)
    elif name == "kubernetes":
        # Every process of the Pod's task but its PID 1 (/pause), as `kubectl exec` lets one.
        kubectl("exec", handle, "-c", "main", "--", "kill", "-KILL", "-1", check=False)
    else:
        os.kill(int(handle), signal.SIGKILL)


def _wait_command_started(job_id: str, within: float = 30.0) -> None:
    """A Slurm job's command runs: its node program, the output helper and the command are
    there (a job RUNNING in Slurm's words may still be starting its script)."""
    deadline = time.monotonic() + within
    while True:
        listed = subprocess.run(["scontrol", "listpids", job_id], capture_output=True,
                                text=True, timeout=60, check=False).stdout.splitlines()[1:]
        if len(listed) >= 3:
            return
        assert time.monotonic() < deadline, f"Slurm job {job_id}: command not running"
        time.sleep(0.05)


def task_gone(name: str, run: JobRun | str, handle: str) -> bool:
    """Nothing of the task is left on its backend (`run`: the job, or its ID)."""
    job_id = run if isinstance(run, str) else run.job.job_id
    if name in ENGINES:
        return containers_of(name, job_id) == []
    if name == "slurm":
        return handle not in slurm_jobs_of(job_id)
    if name == "kubernetes":
        return kubernetes_objects(job_id) == []
    return not os.path.exists(f"/proc/{handle}")


@pytest.fixture
def no_leftovers(tmp_path: Path) -> Iterator[None]:
    """After the test, no container of the test's jobs is left on any engine used, and no
    Slurm job of theirs in the queue."""
    yield
    results = tmp_path / "results"
    job_ids = [p.name for p in results.iterdir() if p.is_dir()] if results.is_dir() else []
    left: dict[str, list[str]] = {}
    if job_ids and _engine_problem("slurm") is None:
        for job_id in job_ids:
            ids = slurm_jobs_of(job_id)
            if ids:
                left.setdefault("slurm", []).extend(ids)
                subprocess.run(["scancel", *ids], check=False, timeout=60)
    if job_ids and _engine_problem("kubernetes") is None:
        for job_id in job_ids:
            objects = kubernetes_objects(job_id)
            if objects:
                left.setdefault("kubernetes", []).extend(objects)
                kubectl("delete", "--grace-period=0", "--force", *objects, check=False)
    for name in ENGINES:
        if _engine_problem(name) is not None:
            continue
        for job_id in job_ids:
            ids = containers_of(name, job_id)
            if ids:
                left.setdefault(name, []).extend(ids)
                remove_containers(name, ids)
    assert not left, f"containers left behind: {left}"
