"""The worker under stress: cancelled, stopped during a requirement check, failfast across
workers sharing one state machine. Real processes; waits on events and marker files."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

from spawnkit.core.errors import StartError
from spawnkit.core.job import Job, JobSettings, make_job_dir
from spawnkit.core.task.description import RetryPolicy, Task
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.core.task.statemachine import TaskStateMachine, Worker
from spawnkit.core.task.statusrepo import StatusEntry, StatusRepo
from spawnkit.spawners.process import ProcessSpawner
from tests.helpers import pid_alive


async def _until(predicate: object, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


def _sleeper(task_id: str, marker: Path, **kw: object) -> Task:
    return Task.make(
        task_id, f"echo $$ > {marker}.tmp; mv {marker}.tmp {marker}; exec sleep 300", **kw
    )


def test_cancelled_job_stops_its_tasks_and_keeps_their_results(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    tasks = [_sleeper("long", marker), Task.make("later", "true", depends_on=("long",))]
    job = Job(
        tasks, ProcessSpawner(), make_job_dir(tmp_path / "r", "j"), "j", JobSettings(grace_period=1)
    )

    async def scenario() -> None:
        running = asyncio.ensure_future(job.run())
        await _until(marker.exists)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    asyncio.run(scenario())
    assert not pid_alive(int(marker.read_text()))
    results = {t.id: (t.result, t.reason) for t in job.results().tasks}
    assert results == {
        "long": ("interrupted", "interrupted: the job was cancelled"),
        "later": ("not_run", "not run: the job was cancelled"),
    }


class GatedSpawner(ProcessSpawner):
    """Requirement checks of the named tasks wait for a gate the test opens."""

    def __init__(self, gated: set[str]) -> None:
        super().__init__()
        self.gated = gated
        self.checking = asyncio.Event()
        self.gate = asyncio.Event()

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        if runtime_task.identifier in self.gated:
            self.checking.set()
            await self.gate.wait()


def _machine(tmp_path: Path, tasks: list[Task]) -> tuple[TaskStateMachine, StatusRepo]:
    runtime = [RuntimeTask(t) for t in tasks]
    for rt in runtime:
        rt.output_dir = tmp_path / rt.identifier
    repo = StatusRepo()
    return TaskStateMachine(runtime, repo), repo


def test_a_slow_requirement_check_does_not_stall_other_tasks(tmp_path: Path) -> None:
    # If the check blocked the loop, "quick" would never be timed out and the gate never open.
    sm, repo = _machine(
        tmp_path, [Task.make("quick", "exec sleep 300", timeout=0.5), Task.make("gated", "true")]
    )
    spawner = GatedSpawner({"gated"})

    async def scenario() -> None:
        worker = Worker(sm, spawner, grace_period=0.5)
        running = asyncio.ensure_future(worker.run())
        await _until(lambda: any(e.status == "timeout" for e in repo.history("quick")))
        spawner.gate.set()
        await asyncio.wait_for(running, 20)

    asyncio.run(scenario())
    results = {rt.identifier: rt.result.value for rt in sm.finished}  # type: ignore[union-attr]
    assert results == {"quick": "timed_out", "gated": "passed"}


def test_a_task_stopped_while_checked_is_never_started(tmp_path: Path) -> None:
    sm, repo = _machine(tmp_path, [Task.make("checked", "true")])
    spawner = GatedSpawner({"checked"})

    async def scenario() -> None:
        worker = Worker(sm, spawner)
        running = asyncio.ensure_future(worker.run())
        await asyncio.wait_for(spawner.checking.wait(), 20)
        await worker.interrupt(why="stopped by the test")
        spawner.gate.set()
        await asyncio.wait_for(running, 20)

    asyncio.run(scenario())
    (rt,) = sm.finished
    assert (rt.result.value, rt.reason) == ("not_run", "not run: stopped by the test")  # type: ignore[union-attr]
    assert "started" not in [e.status for e in repo.history("checked")]


def test_failfast_stops_the_tasks_of_every_worker(tmp_path: Path) -> None:
    m1, m2 = tmp_path / "m1", tmp_path / "m2"
    bad = Task.make("bad", f"while [ ! -e {m1} ] || [ ! -e {m2} ]; do sleep 0.01; done; exit 1")
    sm, repo = _machine(tmp_path, [_sleeper("long1", m1), _sleeper("long2", m2), bad])

    async def scenario() -> None:
        workers = [
            Worker(sm, ProcessSpawner(), max_running=3, failfast=True, grace_period=0.5)
            for _ in range(2)
        ]
        await asyncio.wait_for(asyncio.gather(*(w.run() for w in workers)), 30)

    asyncio.run(scenario())
    results = {rt.identifier: rt.result.value for rt in sm.finished}  # type: ignore[union-attr]
    assert results == {"bad": "failed", "long1": "interrupted", "long2": "interrupted"}
    assert not pid_alive(int(m1.read_text())) and not pid_alive(int(m2.read_text()))
    slots = [
        e.data["slot"]
        for t in ("long1", "long2", "bad")
        for e in repo.history(t)
        if e.status == "started"
    ]
    assert sorted(slots) == [0, 1, 2]  # one numbering across workers


class _StartsOnSecondTry(ProcessSpawner):
    """A backend whose first start fails (a registry, a node, for a moment)."""

    tries = 0

    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        self.tries += 1
        if self.tries == 1:
            raise StartError("cannot start: the node went away", spawner=self.name)
        await super().spawn_task(runtime_task)


def test_a_start_that_failed_is_retried_as_an_error(tmp_path: Path) -> None:
    """`retry = {}` is one more attempt on an error, one of starting too."""
    task = Task.make("t", "echo ran", retry=RetryPolicy())
    job = Job([task], _StartsOnSecondTry(), make_job_dir(tmp_path / "r", "j"), "j",
              JobSettings())
    result = asyncio.run(job.run())
    data = json.loads((job.job_dir / "results.json").read_text())
    (record,) = data["tasks"]
    assert (record["result"], record["flaky"]) == ("passed", True), record
    assert [(a["result"], a["reason"]) for a in record["attempts"]] == [
        ("error", "cannot start: the node went away")]
    assert (job.job_dir / record["stdout"]).read_text() == "ran\n"
    assert result.passed


def test_an_error_of_ours_in_a_move_still_stops_what_runs(tmp_path: Path) -> None:
    """Found by trying (a full disk refused the journal's line inside a start): the worker's
    task group shut down on the error, and its clean-up could then start no stop, so the
    other task ran on. Now it is stopped, and the error still ends the run."""
    started: dict[str, int] = {}

    class Bug(Exception):
        pass

    def listener(entry: StatusEntry) -> None:
        if entry.status == "started":
            started[entry.task_id] = int(str(entry.data["handle"]))
            if len(started) == 2:  # the other one runs
                raise Bug("an error of ours")

    tasks = [Task.make("long", "exec sleep 300"), Task.make("second", "exec sleep 300")]
    job = Job(tasks, ProcessSpawner(), make_job_dir(tmp_path / "r", "j"), "j",
              JobSettings(grace_period=1))
    job.status_repo.add_listener(listener)
    with pytest.raises(BaseExceptionGroup) as raised:
        asyncio.run(job.run())
    assert raised.group_contains(Bug)
    assert started.keys() == {"long", "second"}
    assert not any(pid_alive(pid) for pid in started.values())
    first = next(iter(started))  # started, seen, then stopped by the wind-down
    results = {t.id: t.result.value for t in job.results().tasks}
    assert results[first] == "interrupted", results
