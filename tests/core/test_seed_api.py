"""Every name in the seed (avocado.core.task) exists in spawnkit with the seed's meaning."""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import time
from pathlib import Path

import pytest

from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import Cause, Outcome, TaskResult
from spawnkit.core.task.runtime import RuntimeTask, RuntimeTaskStatus
from spawnkit.core.task.statemachine import TaskStateMachine, Worker
from spawnkit.core.task.statusrepo import StatusRepo
from spawnkit.spawners.process import ProcessSpawner
from tests.helpers import pid_alive


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
        assert list(sm.requested) == tasks and sm.requested == tasks
        assert sm.triaging == sm.ready == sm.started == sm.finished == sm.monitored == []
        assert isinstance(sm.lock, asyncio.Lock) and isinstance(sm.cache_lock, asyncio.Lock)
        assert sm.task_size == 3 and set(sm.tasks_by_id) == {"a", "b", "c"}
        assert sm.tasks_by_id["a"] is tasks[0].task
        assert await sm.complete is False
        first = sm.requested.popleft()
        await sm.finish_task(first, RuntimeTaskStatus.FINISHED)
        await sm.finish_task(first, RuntimeTaskStatus.FINISHED)  # once only
        assert sm.finished == [first]
        await sm.abort_queue("requested", RuntimeTaskStatus.FAILFAST)
        assert await sm.complete is True
        assert [t.status for t in list(sm.finished)[1:]] == [RuntimeTaskStatus.FAILFAST] * 2
        assert [t.result for t in list(sm.finished)[1:]] == [TaskResult.NOT_RUN] * 2

    asyncio.run(scenario())


def test_queues_take_the_originals_verbs() -> None:
    """Code written against the original moves tasks with deque and list verbs."""
    a, b, c = (RuntimeTask(Task.make(i, ["true"])) for i in "abc")
    sm = TaskStateMachine([a, b, c], StatusRepo())
    assert sm.requested.popleft() is a
    sm.triaging.append(a)
    sm.triaging.insert(0, b)
    sm.requested.remove(b)
    assert sm.triaging.pop(0) is b and sm.triaging == [a] and len(sm.triaging) == 1
    assert a in sm.triaging and b not in sm.triaging
    assert sm.requested[0] is c and sm.requested[-1] is c
    with pytest.raises(IndexError):
        sm.ready.pop(0)
    with pytest.raises(ValueError):
        sm.ready.remove(a)


def test_add_new_task_goes_first() -> None:
    async def scenario() -> None:
        a, late = RuntimeTask(Task.make("a", ["true"])), RuntimeTask(Task.make("late", ["true"]))
        sm = TaskStateMachine([a], StatusRepo())
        await sm.add_new_task(late)
        assert list(sm.requested) == [late, a] and sm.task_size == 2
        assert sm.tasks_by_id["late"] is late.task

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
        assert sm.requested == [] and sm.triaging == sm.ready == []
        assert sm.started == [tasks[2]]  # abort leaves running tasks to the worker
        assert {t.identifier for t in sm.finished} == {"a", "b", "d"}
        assert tasks[0].reason == "aborted by test" and tasks[0].result is TaskResult.NOT_RUN

    asyncio.run(scenario())


def test_avocado_job_timeout_then_a_fresh_worker_terminates(tmp_path: Path) -> None:
    """Avocado's job runner: workers gathered under the job's timeout (shielded, so they go
    on), then, once it expires, a fresh Worker's terminate_tasks_timeout() ends everything."""
    pids = [tmp_path / f"pid{i}" for i in range(2)]

    async def scenario() -> TaskStateMachine:
        tasks = [RuntimeTask(Task.make("quick", ["true"]))]
        # The sleepers wait for quick: it has passed before the job's timeout strikes.
        tasks += [RuntimeTask(Task.make(f"slow{i}", f"echo $$ > {p}.tmp; mv {p}.tmp {p}; "
                                        "exec sleep 300", depends_on=("quick",)))
                  for i, p in enumerate(pids)]
        tasks.append(RuntimeTask(Task.make("never", ["true"], depends_on=("slow0",))))
        for rt in tasks:
            rt.output_dir = tmp_path / rt.identifier
        sm = TaskStateMachine(tasks, StatusRepo())
        spawner = ProcessSpawner()
        gathered = asyncio.gather(
            *(Worker(sm, spawner, max_running=3, grace_period=0.5).run() for _ in range(2))
        )
        async with asyncio.timeout(20):  # the job's timeout expires once both sleepers run
            while not all(p.exists() for p in pids):
                await asyncio.sleep(0.01)
        await Worker(sm, spawner, grace_period=0.5).terminate_tasks_timeout()
        await asyncio.wait_for(gathered, 20)  # the shielded workers see the machine done
        assert await sm.complete
        return sm

    sm = asyncio.run(scenario())
    results = {rt.identifier: (rt.result, rt.reason) for rt in sm.finished}
    assert results == {
        "quick": (TaskResult.PASSED, None),
        "slow0": (TaskResult.TIMED_OUT, "timed out: the job's timeout expired"),
        "slow1": (TaskResult.TIMED_OUT, "timed out: the job's timeout expired"),
        "never": (TaskResult.NOT_RUN, "not run: the job's timeout expired"),
    }
    assert not any(pid_alive(int(p.read_text())) for p in pids)


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
        assert statuses[:5] == ["requested", "triaging", "ready", "spawning", "started"]
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


def test_a_lost_exit_status_is_an_error_not_a_pass(tmp_path: Path) -> None:
    """The task supervisor killed under a running task: how it ended is unknown, which is an
    error, never a pass."""
    async def scenario() -> tuple[str | None, int]:
        spawner = ProcessSpawner()
        rt = RuntimeTask(Task.make("t", ["sleep", "30"]))
        rt.output_dir = tmp_path / "t"
        await spawner.spawn_task(rt)
        assert rt.spawner_handle is not None and rt.spawning_result is not None
        os.kill(int(rt.spawning_result["supervisor"]), signal.SIGKILL)
        async with asyncio.timeout(20):
            while await spawner.is_task_alive(rt):
                await spawner.refresh([rt])
                await asyncio.sleep(0.01)
        exit = await spawner.collect_task(rt)
        assert exit.exit_code is None and not exit.successful
        await spawner.close()
        return exit.error, int(rt.spawner_handle)

    error, pid = asyncio.run(scenario())
    os.killpg(pid, signal.SIGKILL)  # the task itself lived on, orphaned: ended here
    assert error == "exit status lost: the task supervisor ended before the task did"


# -- code written against the original, driving the phases itself ------------------------------

def test_the_originals_own_loop_over_the_phases_runs_a_job(tmp_path: Path) -> None:
    """The original's run() written out by hand: each phase returns with its move made (a
    triaged task is ready, a started one has its handle), and the loop ends."""
    async def scenario() -> tuple[list[str], dict[str, TaskResult | None]]:
        tasks = [RuntimeTask(Task.make(i, ["sh", "-c", f"exit {n}"])) for n, i in
                 enumerate(("ok", "bad"))]
        tasks.append(RuntimeTask(Task.make("after", ["true"], depends_on=("ok",))))
        for rt in tasks:
            rt.output_dir = tmp_path / rt.identifier
        sm = TaskStateMachine(tasks, StatusRepo())
        spawner = ProcessSpawner()
        worker = Worker(sm, spawner, max_running=2, task_timeout=30)
        seen = []
        await worker.bootstrap()
        await worker.triage()
        seen.append(f"ready={[t.identifier for t in sm.ready]}")
        await worker.start()
        seen.append(f"handle={tasks[0].spawner_handle is not None}")
        deadline = time.monotonic() + 20  # a loop that never yields outlives asyncio.timeout
        while not await sm.complete:
            assert time.monotonic() < deadline, "the loop does not end"
            await worker.bootstrap()
            await worker.triage()
            await worker.start()
            await worker.monitor()
        await spawner.close()
        return seen, {rt.identifier: rt.result for rt in sm.finished}

    seen, results = asyncio.run(scenario())
    assert seen == ["ready=['ok']", "handle=True"]
    assert results == {"ok": TaskResult.PASSED, "bad": TaskResult.FAILED,
                       "after": TaskResult.PASSED}


def test_complete_and_the_queue_moves_wait_for_the_lock() -> None:
    """A move made the original's way, under `lock` with an await inside: `complete` does not
    read the task in flight as done, nor does `abort` miss it."""
    async def scenario() -> tuple[bool, bool, list[str]]:
        a = RuntimeTask(Task.make("a", ["true"]))
        sm = TaskStateMachine([a], StatusRepo())
        moved, release = asyncio.Event(), asyncio.Event()

        async def mover() -> None:
            async with sm.lock:
                task = sm.requested.popleft()
                moved.set()
                await release.wait()
                sm.ready.append(task)

        moving = asyncio.ensure_future(mover())
        await moved.wait()
        complete = asyncio.ensure_future(sm.complete)
        aborting = asyncio.ensure_future(sm.abort("aborted"))
        for _ in range(5):
            await asyncio.sleep(0)
        waited = not complete.done() and not aborting.done()
        release.set()
        await moving
        return waited, await complete, [t.identifier for t in sm.finished] + list(
            await asyncio.gather(aborting) and [t.identifier for t in sm.finished])

    waited, complete, finished = asyncio.run(scenario())
    assert waited and complete is False
    assert finished[-1:] == ["a"]


def test_abort_queue_refuses_running_tasks_and_leaves_finished_ones() -> None:
    async def scenario() -> None:
        a, b = (RuntimeTask(Task.make(i, ["true"])) for i in "ab")
        sm = TaskStateMachine([a, b], StatusRepo())
        sm.started.append(sm.requested.popleft())
        with pytest.raises(ValueError, match="started tasks run"):
            await sm.abort_queue("started", "stop")
        assert sm.started == [a]
        await sm.finish_task(sm.requested.popleft(), RuntimeTaskStatus.FAIL_START)
        await sm.abort_queue("finished", "stop")
        assert sm.finished == [b] and b.status is RuntimeTaskStatus.FAIL_START
        with pytest.raises(ValueError, match="no such queue"):
            await sm.abort_queue("nowhere")

    asyncio.run(scenario())


def test_waiting_on_a_dependency_is_recorded_once(tmp_path: Path) -> None:
    async def scenario() -> list[str]:
        first = RuntimeTask(Task.make("first", ["sh", "-c", "sleep 0.3"]))
        second = RuntimeTask(Task.make("second", ["true"]))
        child = RuntimeTask(Task.make("child", ["true"], depends_on=("first", "second")))
        tasks = [child, first, second]
        for rt in tasks:
            rt.output_dir = tmp_path / rt.identifier
        repo = StatusRepo()
        spawner = ProcessSpawner()
        await Worker(TaskStateMachine(tasks, repo), spawner, max_running=2).run()
        await spawner.close()
        return [e.status for e in repo.history("child")]

    history = asyncio.run(scenario())
    assert history.count("wait_dependencies") == 1
    assert history.index("wait_dependencies") < history.index("ready")


class _NoSpawner(ProcessSpawner):
    """An Avocado-style spawner: it answers False for a requirement not met, a start failed."""

    def __init__(self, refuse: str) -> None:
        super().__init__()
        self.refuse = refuse

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> bool:
        return self.refuse != "check"

    async def spawn_task(self, runtime_task: RuntimeTask) -> bool:
        return False


@pytest.mark.parametrize(("refuse", "status"), [("check", RuntimeTaskStatus.FAIL_TRIAGE),
                                                 ("spawn", RuntimeTaskStatus.FAIL_START)])
def test_a_spawner_answering_false_fails_the_task(
    refuse: str, status: RuntimeTaskStatus
) -> None:
    async def scenario() -> RuntimeTask:
        rt = RuntimeTask(Task.make("t", ["true"]))
        await Worker(TaskStateMachine([rt], StatusRepo()), _NoSpawner(refuse)).run()
        return rt

    rt = asyncio.run(scenario())
    assert rt.status is status and rt.result is TaskResult.ERROR, (rt.status, rt.result)
    assert rt.spawner_handle is None


def test_a_task_aborted_while_its_triage_waits_for_the_lock_is_not_started(
    tmp_path: Path
) -> None:
    """The triage step takes and moves a task under one hold of `lock`: an abort queued
    meanwhile finds it in triaging or in ready, never half-way, and nothing starts it."""
    async def scenario() -> tuple[list[str], str | None, bool]:
        dep = RuntimeTask(Task.make("dep", ["true"]))
        rt = RuntimeTask(Task.make("a", ["true"], depends_on=("dep",)))
        rt.output_dir = tmp_path / "a"
        sm = TaskStateMachine([rt, dep], StatusRepo())
        spawner = ProcessSpawner()
        worker = Worker(sm, spawner)
        await worker.bootstrap()
        await worker.triage()  # checked, then parked on dep
        sm.requested.remove(dep)
        await sm.finish_task(dep, RuntimeTaskStatus.FINISHED, outcome=Outcome(
            TaskResult.PASSED, Cause.EXIT_CODE, None))  # a is due for its dependency step
        async with sm.lock:
            triaging = asyncio.ensure_future(worker.triage())
            aborting = asyncio.ensure_future(sm.abort("stopped"))
            await asyncio.sleep(0)
        await asyncio.gather(triaging, aborting)
        await worker.start()
        await spawner.close()
        return [t.identifier for t in sm.ready], rt.spawner_handle, await sm.complete

    ready, handle, complete = asyncio.run(scenario())
    assert (ready, handle, complete) == ([], None, True)
