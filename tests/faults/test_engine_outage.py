"""An engine that stops answering, on an engine of our own making: refused, hung, restarted.

The fake engine keeps its containers in memory and fails (or hangs) on demand, so each
outage is exact and the bounds are checked to the second. The real daemons are killed in
test_engines_killed.py; these are the cases a real daemon cannot be made to show on cue.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pytest
import requests

from spawnkit.core.job import Job, JobSettings, make_job_dir, new_job_id
from spawnkit.core.results import JobResult
from spawnkit.core.spawner import JobContext, SpawnerOptions
from spawnkit.core.task.description import Task
from spawnkit.spawners.container.engine import (
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    Engine,
    ImageInfo,
)
from spawnkit.spawners.container.spawner import ContainerSpawner
from spawnkit.spawners.container.spec import LABEL_JOB, LABEL_MANAGED, LABEL_OWNER, LABEL_TASK

DEAD_OWNER = f"{socket.gethostname()}:999999999:1"  # no such PID: a runner that died


@dataclass
class _Box:
    """One container of the fake engine."""

    id: str
    labels: dict[str, str]
    status: str = "created"
    exit_code: int | None = None
    created: float = field(default_factory=time.time)


class FakeEngine(Engine):
    """Containers in memory. `mode`: "ok", "refused" (every call fails at once, as a socket
    with no daemon behind it), or "hung" (every call waits, as a daemon that never replies)."""

    name = "fake"
    url_variable = "FAKE_ENGINE_HOST"
    retry_max_wait: ClassVar[float] = 0.2
    boxes: dict[str, _Box]
    mode: str
    release: threading.Event

    def __init__(self, url: str | None = None, *, pool_size: int = 32, timeout: float = 60.0):
        super().__init__(url, pool_size=pool_size, timeout=timeout)
        self.boxes = {}
        self.mode = "ok"
        self.release = threading.Event()  # lets hung calls go, at the end of a test
        #: call name -> errors its next calls raise, one each (the transient kind).
        self.faults: dict[str, list[BaseException]] = {}

    @classmethod
    def default_url(cls) -> str:
        return "fake:///engine"

    def _answer(self, call: str = "") -> None:
        faults = self.faults.get(call)
        if faults:
            raise faults.pop(0)
        if self.mode == "hung":
            self.release.wait(30)
            raise requests.exceptions.ReadTimeout("read timed out")
        if self.mode == "refused":
            raise requests.exceptions.ConnectionError(
                ConnectionRefusedError(111, "Connection refused")
            )

    def open(self) -> None:
        self._answer()

    def close(self) -> None:
        pass

    def image_exists(self, image: str) -> bool:
        self._answer()
        return True

    def pull(self, image: str) -> None:
        self._answer()

    def build(self, context: str, containerfile: str, tag: str) -> str:
        raise NotImplementedError

    def images(self, label: str) -> list[ImageInfo]:
        return []

    def create(self, spec: ContainerSpec) -> str:
        self._answer()
        box = _Box(secrets.token_hex(32), dict(spec.labels))
        self.boxes[box.id] = box
        return box.id

    def start(self, container_id: str) -> None:
        self._answer("start")
        self.boxes[container_id].status = "running"

    def containers(self, label: str) -> list[ContainerSummary]:
        self._answer("containers")
        key, _, value = label.partition("=")
        return [
            ContainerSummary(b.id, b.status, dict(b.labels), b.created)
            for b in list(self.boxes.values())
            if b.labels.get(key) == value
        ]

    def inspect(self, container_id: str) -> ContainerState | None:
        self._answer()
        box = self.boxes.get(container_id)
        if box is None:
            return None
        return ContainerState(box.id, box.status, box.exit_code, False, None, dict(box.labels))

    def logs(self, container_id: str, *, follow: bool) -> Iterator[tuple[str, bytes]]:
        self._answer()
        return iter(())

    def path_exists(self, container_id: str, path: str) -> bool:
        self._answer()
        return True

    def archive(self, container_id: str, path: str) -> Iterator[bytes] | None:
        self._answer()
        return None

    def image_entrypoint(self, image: str) -> list[str]:
        self._answer()
        return []

    def exit_events(self, label: str) -> tuple[Iterator[str], Callable[[], None]]:
        # No event stream: the listing per poll is what sees exits here.
        return iter(()), lambda: None

    def kill(self, container_id: str, signal: str) -> bool:
        self._answer()
        box = self.boxes.get(container_id)
        if box is None or box.status != "running":
            return False
        self.end(box.id, 128 + (15 if signal == "SIGTERM" else 9))
        return True

    def remove(self, container_id: str) -> None:
        self._answer("remove")
        self.boxes.pop(container_id, None)

    # -- what the test does to it --------------------------------------------------------------

    def end(self, container_id: str, code: int) -> None:
        box = self.boxes[container_id]
        box.status, box.exit_code = "exited", code

    def running(self) -> list[str]:
        return [b.id for b in self.boxes.values() if b.status == "running"]


class FakeSpawner(ContainerSpawner):
    name = "fake"
    engine_class = FakeEngine
    poll_interval = 0.05

    @property
    def fake(self) -> FakeEngine:
        assert isinstance(self.engine, FakeEngine)
        return self.engine


@pytest.fixture
def spawner() -> Iterator[FakeSpawner]:
    made = FakeSpawner(SpawnerOptions(image="img", grace_period=0.5, engine_down_after=1.0))
    yield made
    made.fake.release.set()


def _tasks(n: int, queued: int = 0) -> list[Task]:
    tasks = [Task.make(f"t{i}", ["sleep", "1000"]) for i in range(n)]
    tasks += [Task.make(f"q{i}", ["true"]) for i in range(queued)]
    return tasks


async def _until(condition: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@dataclass
class Outcome:
    result: JobResult
    seconds: float  # from the fault to the job's end


def _run(
    tmp_path: Path, spawner: FakeSpawner, tasks: list[Task], fault: Any, *, running: int,
    max_running: int = 8,
) -> Outcome:
    """Run a job; once `running` containers run, `fault(engine)` (a coroutine) strikes."""
    job_id = new_job_id()
    job = Job(tasks, spawner, make_job_dir(tmp_path / "results", job_id), job_id,
              JobSettings(max_running=max_running, grace_period=0.5))

    async def body() -> Outcome:
        run = asyncio.ensure_future(job.run())
        await _until(lambda: len(spawner.fake.running()) == running)
        struck = time.monotonic()
        await fault(spawner.fake)
        result = await asyncio.wait_for(run, 30)
        return Outcome(result, time.monotonic() - struck)

    return asyncio.run(body())


def _by_id(result: JobResult) -> dict[str, tuple[str, str | None]]:
    return {t.id: (t.result, t.reason) for t in result.tasks}


@pytest.mark.parametrize("mode", ["refused", "hung"])
def test_engine_silent_past_the_bound_ends_tasks_as_error(
    tmp_path: Path, spawner: FakeSpawner, mode: str
) -> None:
    """Refused or hung, the running tasks end as error soon after the bound, with the engine's
    words; tasks not yet started end as error at once, without trying the engine."""

    running: set[str] = set()

    async def fault(engine: FakeEngine) -> None:
        # Which three run is the order their requirement checks ended in: any three.
        running.update(engine.boxes[cid].labels[LABEL_TASK] for cid in engine.running())
        engine.mode = mode

    out = _run(tmp_path, spawner, _tasks(3, queued=2), fault, running=3, max_running=3)
    assert out.seconds < spawner.options.engine_down_after + 2.0, out.seconds
    by_id = _by_id(out.result)
    assert len(by_id) == 5 and len(running) == 3
    said = "Connection refused" if mode == "refused" else "no answer"
    for tid in sorted(running):
        result, reason = by_id[tid]
        assert result == "error" and reason is not None, by_id
        assert reason.startswith("the fake engine at fake:///engine has not answered for 1 s")
        assert said in reason and "'spawnkit gc'" in reason
    for tid in sorted(set(by_id) - running):
        result, reason = by_id[tid]
        assert result == "error" and reason is not None
        assert reason.startswith("not started: the fake engine") and said in reason


def test_short_outage_within_the_bound_loses_nothing(tmp_path: Path) -> None:
    """An engine back before the bound (Podman's service restarted: containers run on)."""
    spawner = FakeSpawner(SpawnerOptions(image="img", engine_down_after=10.0))

    async def fault(engine: FakeEngine) -> None:
        engine.mode = "refused"
        await asyncio.sleep(1.0)  # the outage itself: what is tested is the job across it
        engine.mode = "ok"
        for cid in engine.running():
            engine.end(cid, 0)

    out = _run(tmp_path, spawner, _tasks(3), fault, running=3)
    assert {r for r, _ in _by_id(out.result).values()} == {"passed"}


def test_containers_killed_by_an_engine_restart_are_errors(tmp_path: Path) -> None:
    """Docker's restart kills its containers (137): that is the engine's doing, not a task
    failing, so error with the outage named; a task that exited by itself meanwhile keeps
    its own result."""
    spawner = FakeSpawner(SpawnerOptions(image="img", engine_down_after=10.0))

    async def fault(engine: FakeEngine) -> None:
        engine.mode = "refused"
        await _until(lambda: spawner._watch.outage is not None)
        for box in list(engine.boxes.values()):
            # t0 fails by itself during the outage; the restart SIGKILLs the others.
            engine.end(box.id, 3 if box.labels[LABEL_TASK] == "t0" else 137)
        engine.mode = "ok"

    out = _run(tmp_path, spawner, _tasks(3), fault, running=3)
    by_id = _by_id(out.result)
    assert by_id["t0"] == ("failed", "exit code 3")
    for tid in ("t1", "t2"):
        result, reason = by_id[tid]
        assert result == "error" and reason is not None
        assert "killed (SIGKILL) during an outage of the fake engine (Connection refused)" in reason


def test_outage_is_logged_once_and_the_recovery_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spawner = FakeSpawner(SpawnerOptions(image="img", engine_down_after=10.0))

    async def fault(engine: FakeEngine) -> None:
        engine.mode = "refused"
        # Several listings fail meanwhile: the outage is said once, not once per poll.
        await _until(lambda: spawner._watch.unanswered_for() > 1.0)
        engine.mode = "ok"
        for cid in engine.running():
            engine.end(cid, 0)

    with caplog.at_level(logging.INFO, logger="spawnkit"):
        _run(tmp_path, spawner, _tasks(2), fault, running=2)
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([m for m in said if "the engine does not answer (Connection refused)" in m]) == 1
    assert len([m for m in said if "the engine answers again, after" in m]) == 1
    retries = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("fake: containers failed (Connection refused), try 2 of 4" in m for m in retries)


def test_gc_takes_a_dead_runners_started_containers_at_once(tmp_path: Path) -> None:
    """The creation grace holds only for a container not yet started."""
    spawner = FakeSpawner(SpawnerOptions(image="img"))
    engine = spawner.fake
    labels = {LABEL_MANAGED: "true", LABEL_OWNER: DEAD_OWNER, LABEL_JOB: "j"}
    running = engine.create(ContainerSpec("img", ["x"], labels=labels))
    engine.start(running)
    exited = engine.create(ContainerSpec("img", ["x"], labels=labels))
    engine.start(exited)
    engine.end(exited, 0)
    being_made = engine.create(ContainerSpec("img", ["x"], labels=labels))

    async def reap() -> list[str]:
        await spawner.open(JobContext("gc", tmp_path, "x"))
        try:
            return await spawner.reap_orphans()
        finally:
            await spawner.close()

    assert len(asyncio.run(reap())) == 2
    assert list(engine.boxes) == [being_made]
    engine.boxes[being_made].created -= spawner.orphan_grace
    assert len(asyncio.run(reap())) == 1
    assert not engine.boxes


class _Unavailable(Exception):
    """An engine's 503, as the SDKs raise it."""

    status_code = 503
    explanation = "service unavailable: too many requests in flight"


def test_transient_errors_are_retried_and_said_with_v(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the real tenacity policy: a 503 on a start and resets on listings are tried
    again, said at INFO (what `spawnkit run -v` shows), and the job passes."""
    spawner = FakeSpawner(SpawnerOptions(image="img"))
    engine = spawner.fake
    reset = requests.exceptions.ConnectionError(
        ConnectionResetError(104, "Connection reset by peer")
    )
    engine.faults = {"start": [_Unavailable()], "containers": [reset, reset]}

    async def fault(engine: FakeEngine) -> None:
        for cid in engine.running():
            engine.end(cid, 0)

    with caplog.at_level(logging.INFO, logger="spawnkit"):
        out = _run(tmp_path, spawner, _tasks(2), fault, running=2)
    assert {r for r, _ in _by_id(out.result).values()} == {"passed"}
    said = [r.getMessage() for r in caplog.records if r.name.startswith("spawnkit.")]
    busy = "service unavailable: too many requests in flight"
    assert f"fake: start failed ({busy}), try 2 of 4" in said
    assert said.count("fake: containers failed (Connection reset by peer), try 2 of 4") == 1
    assert "fake: containers failed (Connection reset by peer), try 3 of 4" in said
    assert not engine.faults["start"] and not engine.faults["containers"]


def test_a_container_whose_removal_failed_is_removed_at_the_end(tmp_path: Path) -> None:
    """A start fails, and so does the removal after it (the engine away for a moment): the
    container is not left for gc when the engine is back before the job ends."""
    spawner = FakeSpawner(SpawnerOptions(image="img"))
    engine = spawner.fake
    reset = requests.exceptions.ConnectionError(ConnectionResetError(104, "reset"))
    attempts = engine.retry_attempts
    engine.faults = {"start": [reset] * attempts, "remove": [reset] * attempts}

    async def fault(engine: FakeEngine) -> None:
        for cid in engine.running():
            engine.end(cid, 0)

    # One at a time: the faults hit the first task's start, then its removal.
    out = _run(tmp_path, spawner, _tasks(2), fault, running=1, max_running=1)
    results = sorted(r for r, _ in _by_id(out.result).values())
    assert results == ["error", "passed"]
    assert not engine.faults["start"] and not engine.faults["remove"]
    assert engine.boxes == {}


def test_a_call_stuck_forever_does_not_hold_the_exit(tmp_path: Path) -> None:
    """The engine-call pool's threads are daemons: the runner exits on time even with a call
    in flight to a daemon that never replies (the standard pool would join it at exit)."""
    script = (
        "import threading, time\n"
        "from spawnkit.spawners.container.threads import DaemonThreadPool\n"
        "pool = DaemonThreadPool(2)\n"
        "assert pool.submit(pow, 2, 10).result() == 1024\n"
        "pool.submit(threading.Event().wait)\n"
        "queued = pool.submit(threading.Event().wait)\n"
        "late = pool.submit(time.sleep, 0)\n"
        "pool.shutdown(wait=False, cancel_futures=True)\n"
        "assert late.cancelled()\n"
        "print('done', flush=True)\n"
    )
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, check=False)
    assert (proc.returncode, proc.stdout) == (0, "done\n"), proc.stderr
    assert time.monotonic() - began < 10


def test_a_container_being_removed_from_outside_is_reported_gone(
    tmp_path: Path, spawner: FakeSpawner
) -> None:
    """A `docker rm -f` from outside still under way when the outcome is read: the engine lists
    the container as "removing" and no longer gives its logs. The task says it disappeared,
    as when the removal has already ended."""

    async def fault(engine: FakeEngine) -> None:
        for cid in engine.running():
            engine.boxes[cid].status = "removing"

    out = _run(tmp_path, spawner, _tasks(1), fault, running=1)
    [(result, reason)] = _by_id(out.result).values()
    assert result == "error" and reason is not None
    assert "disappeared: removed outside spawnkit" in reason, reason


class _KillAnswerLost(FakeEngine):
    """The first kill is delivered, and its answer lost on the way back (a reset)."""

    lost = False

    def kill(self, container_id: str, signal: str) -> bool:
        delivered = super().kill(container_id, signal)
        if not self.lost:
            self.lost = True
            raise requests.exceptions.ConnectionError(
                ConnectionResetError(104, "Connection reset by peer"))
        return delivered


class _KillAnswerLostSpawner(FakeSpawner):
    engine_class = _KillAnswerLost


def test_a_timeout_whose_kill_answer_was_lost_is_still_timed_out(tmp_path: Path) -> None:
    """The retried kill finds the container ended, by the first one: that is no task that
    ended by itself before its stop (`ExitResult.ended_before_stop`)."""
    spawner = _KillAnswerLostSpawner(SpawnerOptions(image="img", grace_period=0.5))

    async def nothing(engine: FakeEngine) -> None:
        return None

    task = Task.make("t", ["sleep", "1000"], timeout=0.3)
    out = _run(tmp_path, spawner, [task], nothing, running=1)
    assert isinstance(spawner.engine, _KillAnswerLost) and spawner.engine.lost
    assert _by_id(out.result) == {"t": ("timed_out", "timed out after 0.3 s")}
