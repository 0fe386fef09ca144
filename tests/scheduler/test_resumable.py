"""DependencyTaskGroup driving real spawnkit tasks (process backend) from synchronous code."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import pytest

from spawnkit.core import scheduler
from spawnkit.core.dependencies import Dependencies
from spawnkit.core.resumable import SpawnkitSteps, TaskNotPassed
from spawnkit.core.task.description import Task
from spawnkit.spawners.process import ProcessSpawner
from tests.helpers import pid_alive


@pytest.fixture(autouse=True)
def real_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    # These steps poll real processes: let TaskRunner sleep its (short) wait_time.
    monkeypatch.setattr(scheduler, "ENABLE_SLEEP", True)


def test_group_runs_tasks_in_dependency_order(tmp_path: Path) -> None:
    log = tmp_path / "log"
    tasks = {
        name: Task.make(name, f"echo {name} >> {log}")
        for name in ("build", "unit", "lint", "package")
    }
    deps = Dependencies(
        [("unit", "build"), ("lint", "build"), ("package", "unit"), ("package", "lint")]
    )
    with SpawnkitSteps(ProcessSpawner(), tmp_path / "job") as steps:
        group = scheduler.DependencyTaskGroup(deps, lambda key: steps.task(tasks[key]))
        scheduler.TaskRunner(group)(wait_time=0.01)
        assert {k: rt.result.value for k, rt in steps.finished.items()} == dict.fromkeys(  # type: ignore[union-attr]
            tasks, "passed"
        )
    order = log.read_text().split()
    assert order[0] == "build" and order[-1] == "package"
    assert set(order[1:3]) == {"unit", "lint"}


def test_failure_raises_after_cancelling_the_rest(tmp_path: Path) -> None:
    deps = Dependencies([("after", "bad"), ("bad", None)])
    tasks = {"bad": Task.make("bad", "exit 3"), "after": Task.make("after", "true")}
    with SpawnkitSteps(ProcessSpawner(), tmp_path / "job") as steps:
        group = scheduler.DependencyTaskGroup(deps, lambda key: steps.task(tasks[key]))
        with pytest.raises(TaskNotPassed, match="task 'bad' failed: exit code 3"):
            scheduler.TaskRunner(group)(wait_time=0.01)
        assert "after" not in steps.finished


def test_scheduler_timeout_terminates_the_task(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    task = Task.make("slow", f"echo $$ > {pidfile}; exec sleep 100")
    # Time stands still until the task has written its PID; then each reading is 5 s later.
    clock = iter(range(5, 10_000, 5))

    def wallclock() -> int:
        return next(clock) if pidfile.exists() else 0

    with (
        SpawnkitSteps(ProcessSpawner(), tmp_path / "job", grace_period=1) as steps,
        mock.patch("spawnkit.core.timeutils.wallclock", side_effect=wallclock),
    ):
        runner = scheduler.TaskRunner(steps.task, task)
        with pytest.raises(scheduler.Timeout):
            runner(wait_time=0.01, timeout=12)
        rt = steps.finished["slow"]
    assert rt.result is not None and rt.result.value == "interrupted"
    assert not pid_alive(int(pidfile.read_text()))


def test_a_secret_is_masked_in_a_scheduled_tasks_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's driver goes through the same life cycle as a job: masked output."""
    value = "s3cr3t-in-the-scheduler-91f2"
    monkeypatch.setenv("API_TOKEN", value)
    task = Task.make("leaky", 'echo "token=$API_TOKEN"; echo "$API_TOKEN" >&2',
                     secrets=("API_TOKEN",))
    with SpawnkitSteps(ProcessSpawner(), tmp_path / "job") as steps:
        scheduler.TaskRunner(steps.task, task)(wait_time=0.01)
        assert steps.finished["leaky"].result == "passed"
    out_dir = tmp_path / "job" / "tasks" / "leaky"
    assert (out_dir / "stdout").read_text() == "token=***\n"
    assert (out_dir / "stderr").read_text() == "***\n"
    found = [p for p in tmp_path.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]
    assert found == []
