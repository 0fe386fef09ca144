"""Fixtures of the conformance suite: the same tests on process, docker and podman.

An engine that cannot be reached (or lacks the test image) skips its tests with the reason,
except with CI=true, where it fails them: CI must never pass on tests that did not run.
Set the engines up with `source .ci/engines.sh`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import threading
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

TEST_IMAGE = os.environ.get("SPAWNKIT_TEST_IMAGE", "spawnkit-busybox:latest")
ENGINES = ("docker", "podman")

BACKENDS = [
    pytest.param("process", id="process"),
    pytest.param("docker", id="docker", marks=[pytest.mark.docker, pytest.mark.engine]),
    pytest.param("podman", id="podman", marks=[pytest.mark.podman, pytest.mark.engine]),
]
CONTAINER_BACKENDS = BACKENDS[1:]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def engine_class(name: str) -> type[Engine]:
    cls = get_spawner_class(name)
    assert issubclass(cls, ContainerSpawner)
    return cls.engine_class


@functools.cache
def _engine_problem(name: str) -> str | None:
    """Why the engine cannot serve the tests, or None. Asked once per session."""
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


def engine_cli(name: str, *args: str, check: bool = True) -> str:
    """Run the engine's own command line (`docker ...`, `podman ...`)."""
    proc = subprocess.run([name, *args], capture_output=True, text=True, timeout=60, check=False)
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


@pytest.fixture
def no_leftovers(tmp_path: Path) -> Iterator[None]:
    """After the test, no container of the test's jobs is left on any engine used."""
    yield
    results = tmp_path / "results"
    job_ids = [p.name for p in results.iterdir() if p.is_dir()] if results.is_dir() else []
    left: dict[str, list[str]] = {}
    for name in ENGINES:
        if _engine_problem(name) is not None:
            continue
        for job_id in job_ids:
            ids = containers_of(name, job_id)
            if ids:
                left.setdefault(name, []).extend(ids)
                remove_containers(name, ids)
    assert not left, f"containers left behind: {left}"
