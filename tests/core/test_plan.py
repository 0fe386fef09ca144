"""depends_on through the scheduler's Dependencies: cycles rejected, teardowns ordered."""

from __future__ import annotations

from pathlib import Path

import pytest

from spawnkit.core.plan import cycles_in, plan
from spawnkit.core.select import select_tasks
from spawnkit.core.task.description import Task
from tests.conftest import RunCli, WriteTaskfile


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": ["b"], "b": ["c"], "c": ["a"]}, "task 'a': circular dependency: a -> b -> c -> a"),
        ({"a": [], "b": ["c"], "c": ["b"]}, "task 'b': circular dependency: b -> c -> b"),
        ({"a": ["a"]}, "task 'a': depends on itself"),
        ({"a": ["nope"]}, "task 'a': depends_on: unknown task 'nope'"),
    ],
)
def test_bad_graph_is_one_line_exit_2_before_anything_runs(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path, edges: dict[str, list[str]],
    expected: str,
) -> None:
    marker = tmp_path / "ran"
    text = "".join(
        f'[[task]]\nid = "{k}"\ncommand = "touch {marker}"\ndepends_on = {v!r}\n'.replace("'", '"')
        for k, v in edges.items()
    )
    path = taskfile(text)
    for command in ("run", "validate"):
        run = run_cli(command, str(path))
        assert run.code == 2
        assert run.stderr.strip().splitlines() == [f"spawnkit: error: {path}: {expected}"]
    assert not marker.exists()


def _ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


def test_teardowns_wait_for_users_and_stop_in_reverse_order() -> None:
    tasks = [
        Task.make("stop-db", "true", teardown=True, depends_on=("db",)),
        Task.make("stop-web", "true", teardown=True, depends_on=("web",)),
        Task.make("db", "true"),
        Task.make("web", "true", depends_on=("db",)),
        Task.make("test", "true", depends_on=("web",)),
    ]
    planned = {t.id: t for t in plan(tasks)}
    assert set(planned["stop-web"].depends_on) == {"web", "test"}
    assert set(planned["stop-db"].depends_on) == {"db", "web", "test", "stop-web"}
    order = _ids(plan(tasks))
    assert order.index("test") < order.index("stop-web") < order.index("stop-db")


def test_teardown_runs_after_a_failure_in_reverse_order(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    path = taskfile(
        f'[[task]]\nid = "stop-db"\nteardown = true\ncommand = "echo stop-db >> {log}"\n'
        'depends_on = ["db"]\n'
        f'[[task]]\nid = "stop-web"\nteardown = true\ncommand = "echo stop-web >> {log}"\n'
        'depends_on = ["web"]\n'
        f'[[task]]\nid = "db"\ncommand = "echo db >> {log}"\n'
        f'[[task]]\nid = "web"\ncommand = "echo web >> {log}"\ndepends_on = ["db"]\n'
        f'[[task]]\nid = "test"\ncommand = "echo test >> {log}; exit 1"\ndepends_on = ["web"]\n'
        f'[[task]]\nid = "report"\ncommand = "echo report >> {log}"\ndepends_on = ["test"]\n'
    )
    # Without --failfast, what needs the failed task is skipped; with it, not run at all.
    for args, report in (([], "skipped"), (["--failfast"], "not_run")):
        log.write_text("")
        run = run_cli("run", *args, str(path))
        assert run.code == 1
        assert log.read_text().split() == ["db", "web", "test", "stop-web", "stop-db"]
        results = {t["id"]: t["result"] for t in run.results["tasks"]}
        assert results["test"] == "failed"
        assert results["stop-web"] == results["stop-db"] == "passed"
        assert results["report"] == report


def test_teardown_runs_even_when_its_service_failed(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile(
        '[[task]]\nid = "svc"\ncommand = "exit 3"\n'
        '[[task]]\nid = "use"\ncommand = "true"\ndepends_on = ["svc"]\n'
        '[[task]]\nid = "stop"\nteardown = true\ncommand = "true"\ndepends_on = ["svc"]\n'
    )
    run = run_cli("run", str(path))
    results = {t["id"]: t["result"] for t in run.results["tasks"]}
    assert results == {"svc": "failed", "use": "skipped", "stop": "passed"}


def test_a_chain_of_thousands_of_tasks_is_planned_and_selected() -> None:
    """Declared last first, with a teardown, and as a cycle: no recursion limit is reached
    (found by review: `spawnkit list` of such a file was an internal error)."""
    n = 3000
    chain = [Task.make(f"t{i}", "true", depends_on=(f"t{i + 1}",) if i < n - 1 else ())
             for i in range(n)]
    down = Task.make("down", "true", depends_on=(f"t{n - 1}",), teardown=True)
    order = [t.id for t in plan([*chain, down])]
    assert order[:2] == [f"t{n - 1}", f"t{n - 2}"] and order[-1] == "down"
    picked = select_tasks([*chain, down], only=["t5"])
    assert len(picked.tasks) == n - 5 + 1  # t5 and what it needs, and the teardown
    ring = [Task.make(f"r{i}", "true", depends_on=(f"r{(i + 1) % n}",)) for i in range(n)]
    [cycle] = cycles_in({t.id: t.depends_on for t in ring})
    assert len(cycle) == n + 1 and cycle[0] == cycle[-1]
