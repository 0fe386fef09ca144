"""Selection: --only, --exclude, -k; dependencies come along, or the run says why not."""

from __future__ import annotations

from pathlib import Path

import pytest

from spawnkit.core.errors import UsageError
from spawnkit.core.select import select_tasks, split_ids
from spawnkit.core.task.description import Task
from tests.conftest import RunCli

TASKS = [
    Task.make("db-up", "true"),
    Task.make("build", "true"),
    Task.make("test-unit", "true", depends_on=("build",)),
    Task.make("test-db", "true", depends_on=("build", "db-up")),
    Task.make("lint", "true"),
    Task.make("db-down", "true", depends_on=("db-up", "test-db"), teardown=True),
]


def ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


def test_no_option_takes_everything() -> None:
    sel = select_tasks(TASKS)
    assert ids(sel.tasks) == ids(TASKS) and sel.notes == []


def test_only_pulls_in_dependencies() -> None:
    sel = select_tasks(TASKS, only=["test-unit"])
    assert ids(sel.tasks) == ["build", "test-unit"]
    assert sel.notes == ["pulled in as dependencies: build"]


def test_keyword_narrows_and_teardown_comes_along() -> None:
    sel = select_tasks(TASKS, keywords=["db"])
    assert ids(sel.tasks) == ["db-up", "build", "test-db", "db-down"]
    sel = select_tasks(TASKS, only=["db-up"])
    assert ids(sel.tasks) == ["db-up", "db-down"]
    # The teardown waits only for what runs.
    assert sel.tasks[-1].depends_on == ("db-up",)
    assert "teardown pulled in: db-down" in sel.notes


def test_only_and_keyword_both_narrow() -> None:
    assert ids(select_tasks(TASKS, only=["lint", "build"], keywords=["li"]).tasks) == ["lint"]


def test_exclude_leaves_out_what_needs_it_and_says_so() -> None:
    sel = select_tasks(TASKS, exclude=["build"])
    assert ids(sel.tasks) == ["db-up", "lint"]
    assert sorted(sel.notes) == [
        "'db-down' is left out: it needs 'build', which is excluded",
        "'test-db' is left out: it needs 'build', which is excluded",
        "'test-unit' is left out: it needs 'build', which is excluded",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"only": ["nope"]}, "no task with id 'nope'"),
        ({"exclude": ["nope"]}, "no task with id 'nope'"),
        ({"keywords": ["zzz"]}, "no task matches -k zzz"),
        ({"only": ["lint"], "exclude": ["lint"]}, "no task matches --only lint once --exclude"),
        ({"exclude": ["build", "db-up", "lint"]}, "nothing left to run"),
    ],
)
def test_empty_or_wrong_selection_is_a_usage_error(kwargs: dict[str, list[str]],
                                                   message: str) -> None:
    with pytest.raises(UsageError, match=message):
        select_tasks(TASKS, **kwargs)


def test_split_ids() -> None:
    assert split_ids(["a,b", " c ", ",,"]) == ["a", "b", "c"]


def test_run_with_selection(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(
        '[[task]]\nid = "build"\ncommand = "true"\n'
        '[[task]]\nid = "test"\ncommand = "true"\ndepends_on = ["build"]\n'
        '[[task]]\nid = "lint"\ncommand = "true"\n'
        '[[task]]\nid = "docs"\ncommand = "true"\ndepends_on = ["lint"]\n'
    )
    run = run_cli("run", str(path), "--only", "test", "-q", env={"CI": "true"})
    assert run.code == 0, run.stderr
    assert [t["id"] for t in run.results["tasks"]] == ["build", "test"]
    assert "spawnkit: note: pulled in as dependencies: build" in run.stderr
    run = run_cli("run", str(path), "--exclude", "lint", "-k", "o", "-q", env={"CI": "true"})
    assert run.code == 2
    assert run.stderr.splitlines() == [
        "spawnkit: error: nothing left to run once --exclude takes out lint; "
        "'docs' is left out: it needs 'lint', which is excluded"
    ]


@pytest.mark.parametrize("option", ["--only", "--exclude", "-k"])
def test_an_empty_value_is_refused_not_read_as_everything(
    run_cli: RunCli, tmp_path: Path, option: str
) -> None:
    """Found by trying: `--only "$TASKS"` with the variable unset ran every task."""
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "a"\ncommand = "true"\n')
    for value in ("", " ", ","):
        run = run_cli("run", option, value, str(path))
        assert run.code == 2, (value, run)
        assert run.stderr == (f"spawnkit: error: {option}: an empty value (an unset variable?) "
                              "would select every task: give what it names, or leave the "
                              "option out\n")
        assert not (tmp_path / "results").exists()
