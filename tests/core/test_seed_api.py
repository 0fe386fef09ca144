"""Every name in the seed (avocado.core.task) exists in spawnkit with the seed's meaning."""

from __future__ import annotations

import asyncio
import collections
import inspect
import os

from spawnkit.core.task.description import Task
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus
from spawnkit.core.task.statemachine import TaskStateMachine, Worker
from spawnkit.core.task.statusrepo import StatusRepo
from spawnkit.spawners.process import ProcessSpawner


def test_runtime_task_attributes_start_as_none() -> None:
    task = Task.make("a", ["true"])
    rt = RuntimeTask(task)
    assert rt.task is task
    for name in ("status", "spawner_handle", "spawning_result", "execution_timeout"):
        assert getattr(rt, name) is None
    assert rt == RuntimeTask(Task.make("a", ["false"]))  # equal by the task's identifier
    assert len({rt, RuntimeTask(Task.make("a", ["false"]))}) == 1


def test_worker_signature_matches_the_seed() -> None:
    params = list(inspect.signature(Worker).parameters.values())
    seed = ["state_machine", "spawner", "max_triaging", "max_running", "task_timeout", "failfast"]
    assert [p.name for p in params[: len(seed)]] == seed
    defaults = {p.name: p.default for p in params[2 : len(seed)]}
    assert defaults == {
        "max_triaging": None,
        "max_running": None,
        "task_timeout": None,
        "failfast": False,
    }
    for phase in ("bootstrap", "triage", "start", "monitor", "run"):
        assert inspect.iscoroutinefunction(getattr(Worker, phase))


def test_state_machine_queues_lock_and_complete() -> None:
    async def scenario() -> None:
        tasks = [RuntimeTask(Task.make(i, ["true"])) for i in "abc"]
        sm = TaskStateMachine(tasks, StatusRepo())
        assert isinstance(sm.requested, collections.deque)
        assert list(sm.requested) == tasks
        assert sm.triaging == sm.ready == sm.started == sm.finished == []
        assert isinstance(sm.lock, asyncio.Lock)
        assert await sm.complete is False
        first = sm.requested.popleft()
        await sm.finish_task(first, RuntimeTaskStatus.FINISHED)
        await sm.finish_task(first, RuntimeTaskStatus.FINISHED)  # once only
        assert sm.finished == [first]
        await sm.abort_queue("requested", RuntimeTaskStatus.FAILFAST)
        assert await sm.complete is True
        assert [t.status for t in sm.finished[1:]] == [RuntimeTaskStatus.FAILFAST] * 2
        assert [t.result.value for t in sm.finished[1:]] == ["not_run"] * 2  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_abort_moves_every_non_started_queue() -> None:
    async def scenario() -> None:
        tasks = [RuntimeTask(Task.make(i, ["true"])) for i in "abcd"]
        repo = StatusRepo()
        sm = TaskStateMachine(tasks, repo)
        sm.triaging.append(sm.requested.popleft())
        sm.ready.append(sm.requested.popleft())
        sm.started.append(sm.requested.popleft())
        await sm.abort("aborted by test")
        assert sm.requested == collections.deque() and sm.triaging == sm.ready == []
        assert sm.started == [tasks[2]]  # abort leaves running tasks to the worker
        assert {t.identifier for t in sm.finished} == {"a", "b", "d"}
        assert tasks[0].reason == "aborted by test" and tasks[0].result.value == "not_run"  # type: ignore[union-attr]

    asyncio.run(scenario())


def test_worker_runs_the_four_phases_to_completion(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> list[RuntimeTask]:
        tasks = [RuntimeTask(Task.make(f"t{i}", ["sh", "-c", f"exit {i % 2}"])) for i in range(4)]
        for rt in tasks:
            rt.output_dir = tmp_path / rt.identifier
        repo = StatusRepo()
        sm = TaskStateMachine(tasks, repo)
        worker = Worker(sm, ProcessSpawner(), max_triaging=1, max_running=2, task_timeout=30)
        await worker.run()
        assert await sm.complete
        statuses = [e.status for e in repo.history("t0")]
        assert statuses[:4] == ["requested", "triaging", "ready", "started"]
        assert statuses[-1] == "finished"
        return sm.finished

    finished = asyncio.run(scenario())
    assert sorted(rt.identifier for rt in finished) == ["t0", "t1", "t2", "t3"]
    by_id = {rt.identifier: rt for rt in finished}
    assert by_id["t0"].result.value == "passed"  # type: ignore[union-attr]
    assert by_id["t1"].exit.exit_code == 1  # type: ignore[union-attr]
    assert all(rt.status is RuntimeTaskStatus.FINISHED for rt in finished)
    assert all(rt.execution_timeout is not None for rt in finished)


def test_several_workers_share_one_state_machine(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> tuple[list[RuntimeTask], StatusRepo]:
        # Each task exits 3: a worker that collected another's task (through a spawner that
        # never started it) could not know that.
        tasks = [
            RuntimeTask(Task.make(f"t{i}", ["sh", "-c", "sleep 0.05; exit 3"])) for i in range(8)
        ]
        for rt in tasks:
            rt.output_dir = tmp_path / rt.identifier
        repo = StatusRepo()
        sm = TaskStateMachine(tasks, repo)
        workers = [Worker(sm, ProcessSpawner(), max_running=2) for _ in range(3)]
        await asyncio.gather(*(w.run() for w in workers))
        assert await sm.complete
        return sm.finished, repo

    finished, repo = asyncio.run(scenario())
    assert sorted(rt.identifier for rt in finished) == [f"t{i}" for i in range(8)]
    assert all(rt.exit is not None and rt.exit.exit_code == 3 for rt in finished)
    for i in range(8):
        statuses = [e.status for e in repo.history(f"t{i}")]
        assert statuses.count("started") == 1 and statuses.count("finished") == 1


def test_an_exit_status_reaped_elsewhere_is_an_error_not_a_pass(tmp_path) -> None:  # type: ignore[no-untyped-def]
    async def scenario() -> str | None:
        spawner = ProcessSpawner()
        rt = RuntimeTask(Task.make("t", ["sh", "-c", "exit 3"]))
        rt.output_dir = tmp_path / "t"
        await spawner.spawn_task(rt)
        assert rt.spawner_handle is not None
        os.waitpid(int(rt.spawner_handle), 0)  # another reaper took it first
        exit = await spawner.collect_task(rt)
        assert exit.exit_code is None and not exit.successful
        return exit.error

    assert asyncio.run(scenario()) == "exit status lost: the process was reaped by someone else"
