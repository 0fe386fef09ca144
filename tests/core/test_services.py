"""The ServiceManager on a spawner whose services are in memory (no engine): one start for the
tasks that share a service, readiness within its timeout, the stop once its last user has
finished, the reason every user gets when it fails, and the end of the job."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from spawnkit.core.errors import RequirementError
from spawnkit.core.services import ServiceManager, with_service_hosts
from spawnkit.core.spawner import Spawner
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.core.task.service import Service, host_variable
from spawnkit.core.task.statusrepo import StatusRepo
from spawnkit.core.taskfile import parse_taskfile


class MemorySpawner(Spawner):
    """Services that are flags: alive until stopped (or `die`), ready after `ready_after`
    tries of the readiness command."""

    name = "memory"
    runs_services = True

    def __init__(self, ready_after: int = 1) -> None:
        super().__init__()
        self.ready_after = ready_after
        self.started: list[str] = []
        self.stopped: list[tuple[str, float]] = []
        self.alive: dict[str, bool] = {}
        self.tries: dict[str, int] = {}
        self.closed = False

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        return None

    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        raise NotImplementedError

    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        return False

    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        return None

    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        return ExitResult(0)

    async def start_service(self, service: Service, out_dir: Path) -> str:
        await asyncio.sleep(0.01)  # two checks meet here
        self.started.append(service.id)
        handle = f"{service.id}#{len(self.started)}"
        self.alive[handle], self.tries[handle] = True, 0
        (out_dir / "stderr").write_text(f"{service.id}: starting\n{service.id}: boom\n")
        return handle

    async def service_alive(self, handle: str) -> bool:
        return self.alive[handle]

    async def service_ready(self, handle: str, service: Service) -> bool:
        self.tries[handle] += 1
        return self.tries[handle] >= self.ready_after

    async def stop_service(self, handle: str, grace_period: float) -> ExitResult | None:
        self.stopped.append((handle, grace_period))
        self.alive[handle] = False
        return ExitResult(143)

    async def close_services(self) -> None:
        self.closed = True


DB = Service("db", ready=("true",), ready_timeout=5, ready_interval=0.01)


def tasks(*ids: str, service: Service = DB) -> list[Task]:
    return [Task.make(i, "true", services=(service,)) for i in ids]


def manager(spawner: Spawner, job_dir: Path, job_tasks: list[Task],
            repo: StatusRepo | None = None) -> ServiceManager:
    return ServiceManager.for_job(spawner, job_dir, job_tasks, repo or StatusRepo(), 2.0)


def test_tasks_that_share_a_service_share_one_start(tmp_path: Path) -> None:
    spawner = MemorySpawner(ready_after=3)
    job_tasks = tasks("a", "b")
    services = manager(spawner, tmp_path, job_tasks)

    async def main() -> None:
        await asyncio.gather(*(services.ensure(t) for t in job_tasks))
        await services.close()

    asyncio.run(main())
    assert spawner.started == ["db"]
    assert spawner.tries == {"db#1": 3}
    assert spawner.stopped == [("db#1", 2.0)] and spawner.closed


def test_a_service_stops_when_its_last_user_has_finished(tmp_path: Path) -> None:
    spawner, repo = MemorySpawner(), StatusRepo()
    job_tasks = tasks("a", "b")
    services = manager(spawner, tmp_path, job_tasks, repo)

    async def main() -> None:
        await services.ensure(job_tasks[0])
        repo.record("a", "retrying")  # not an end: it runs again
        repo.record("a", "finished")
        await asyncio.sleep(0)
        assert spawner.stopped == []
        repo.record("b", "fail_triage")  # any end counts
        for _ in range(3):
            await asyncio.sleep(0)
        assert spawner.stopped == [("db#1", 2.0)]
        await services.close()

    asyncio.run(main())
    assert spawner.stopped == [("db#1", 2.0)]  # once


def test_never_ready_fails_every_user_with_its_last_lines(tmp_path: Path) -> None:
    spawner = MemorySpawner(ready_after=10**9)
    slow = Service("db", ready=("pg_isready", "-q"), ready_timeout=0.2, ready_interval=0.01)
    job_tasks = tasks("a", "b", service=slow)
    services = manager(spawner, tmp_path, job_tasks)

    async def main() -> list[BaseException | None]:
        got = await asyncio.gather(*(services.ensure(t) for t in job_tasks),
                                   return_exceptions=True)
        await services.close()
        return list(got)

    errors = asyncio.run(main())
    reason = ("service 'db' did not become ready within 0.2 s (ready: pg_isready -q); its last "
              "lines (services/db/stderr): db: starting | db: boom")
    assert [str(e) for e in errors] == [reason, reason]
    assert all(isinstance(e, RequirementError) for e in errors)
    assert spawner.stopped == [("db#1", 0.0)]  # at once, and once


def test_a_service_that_ended_after_it_was_ready_fails_later_users(tmp_path: Path) -> None:
    spawner = MemorySpawner()
    job_tasks = tasks("a", "b")
    services = manager(spawner, tmp_path, job_tasks)

    async def main() -> None:
        await services.ensure(job_tasks[0])
        spawner.alive["db#1"] = False
        with pytest.raises(RequirementError, match=r"service 'db' ended after it was ready "
                                                   r"\(exit code 143\); its last lines"):
            await services.ensure(job_tasks[1])
        await services.close()

    asyncio.run(main())


def test_close_before_any_start_starts_nothing(tmp_path: Path) -> None:
    spawner = MemorySpawner()
    job_tasks = tasks("a")
    services = manager(spawner, tmp_path, job_tasks)

    async def main() -> None:
        await services.close()
        with pytest.raises(RequirementError, match="the job is stopping"):
            await services.ensure(job_tasks[0])

    asyncio.run(main())
    assert spawner.started == [] and not spawner.closed


def test_a_task_finds_its_services_host_names(tmp_path: Path) -> None:
    task = with_service_hosts(tasks("a", service=Service("my-db"))[0], MemorySpawner())
    assert task.environment[host_variable("my-db")] == "my-db"
    assert host_variable("my-db") == "SPAWNKIT_SERVICE_MY_DB_HOST"


def test_services_come_from_the_task_or_its_defaults() -> None:
    parsed = parse_taskfile('[[service]]\nid = "db"\ncommand = "x"\nready = "true"\n'
                            '[[service]]\nid = "cache"\ncommand = ["y"]\n'
                            '[defaults]\nservices = ["db"]\n'
                            '[[task]]\nid = "a"\ncommand = "true"\n'
                            '[[task]]\nid = "b"\ncommand = "true"\nservices = ["cache", "db"]\n'
                            '[[task]]\nid = "c"\ncommand = "true"\nservices = []\n')
    by_id = {t.id: [s.id for s in t.services] for t in parsed.tasks}
    assert by_id == {"a": ["db"], "b": ["cache", "db"], "c": []}
    assert parsed.services["db"].ready_argv == ["sh", "-c", "true"]
    assert parsed.services["cache"].argv == ["y"] and parsed.services["cache"].ready is None


# -- a service that ends under a running task ---------------------------------------------------

ENDED = ("service 'db' ended after it was ready (exit code 143); its last lines "
         "(services/db/stderr): db: starting | db: boom")


def test_a_service_ended_under_a_task_is_its_note_and_the_next_users_reason(
    tmp_path: Path,
) -> None:
    spawner = MemorySpawner()
    job_tasks = tasks("a", "b")
    services = manager(spawner, tmp_path, job_tasks)

    async def main() -> tuple[list[str], str]:
        await services.ensure(job_tasks[0])
        spawner.alive["db#1"] = False  # it ends on its own while a runs
        notes = await services.ended_under(job_tasks[0])
        with pytest.raises(RequirementError) as later:
            await services.ensure(job_tasks[1])  # checked after: the same words
        await services.close()
        return notes, str(later.value)

    notes, later = asyncio.run(main())
    assert notes == [ENDED] and later == ENDED


def test_a_task_the_service_was_never_ready_for_gets_no_note(tmp_path: Path) -> None:
    """A task adopted from an earlier runner was checked against that runner's start."""
    spawner = MemorySpawner()
    job_tasks = tasks("a", "adopted")
    services = manager(spawner, tmp_path, job_tasks)

    async def main() -> list[str]:
        await services.ensure(job_tasks[0])
        spawner.alive["db#1"] = False
        notes = await services.ended_under(job_tasks[1])
        await services.close()
        return notes

    assert asyncio.run(main()) == []


class Hesitant(MemorySpawner):
    """Says whether a service runs only once the test lets it."""

    asking: asyncio.Event
    let: asyncio.Event

    async def service_alive(self, handle: str) -> bool:
        self.asking.set()
        await self.let.wait()
        return self.alive[handle]


def test_a_stop_of_ours_while_asking_is_no_end_of_its_own(tmp_path: Path) -> None:
    spawner = Hesitant()
    job_tasks = tasks("a")
    services = manager(spawner, tmp_path, job_tasks)

    async def main() -> list[str]:
        spawner.asking, spawner.let = asyncio.Event(), asyncio.Event()
        spawner.let.set()
        await services.ensure(job_tasks[0])
        spawner.let.clear()
        spawner.asking.clear()
        asking = asyncio.ensure_future(services.ended_under(job_tasks[0]))
        await spawner.asking.wait()
        services.stop_all()  # a signal: the job stops its services
        while not spawner.stopped:
            await asyncio.sleep(0)
        spawner.let.set()  # it answers now: not running, because we stopped it
        notes = await asking
        await services.close()
        return notes

    assert asyncio.run(main()) == []
