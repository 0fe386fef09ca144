"""Matrix tasks: one task per combination, placeholders replaced, dependencies on every
expansion, selection by the matrix task's id or an expansion's, one-line problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from spawnkit.core.errors import TaskFileError, UsageError
from spawnkit.core.matrix import MAX_EXPANSIONS
from spawnkit.core.select import select_tasks, split_ids
from spawnkit.core.task.description import Task
from spawnkit.core.taskfile import TASK_ID_VARIABLE, parse_taskfile
from tests.conftest import RunCli, WriteTaskfile

TWO_BY_TWO = """
[defaults]
env = { SHARED = "yes" }

[[task]]
id = "unit"
matrix = { python = ["3.11", "3.12"], db = ["pg", "sqlite"] }
command = ["run-tests", "--python=${{ matrix.python }}", "${{matrix.db}}"]
image = "python:${{ matrix.python }}"
env = { DB = "${{ matrix.db }}", LABEL = "py${{ matrix.python }}-${{ matrix.db }}" }
cwd = "work/${{ matrix.db }}"

[[task]]
id = "report"
command = "echo done"
depends_on = ["unit"]
"""

IDS = [
    "unit[python=3.11,db=pg]",
    "unit[python=3.11,db=sqlite]",
    "unit[python=3.12,db=pg]",
    "unit[python=3.12,db=sqlite]",
]


def _tasks(text: str) -> dict[str, Task]:
    return {t.id: t for t in parse_taskfile(text, "tasks.toml").tasks}


def _problems(text: str) -> list[str]:
    with pytest.raises(TaskFileError) as caught:
        parse_taskfile(text, "tasks.toml")
    return caught.value.lines()


def test_two_by_two_makes_four_tasks_in_a_stable_order_with_values_replaced() -> None:
    tasks = _tasks(TWO_BY_TWO)
    assert list(tasks) == [*IDS, "report"]
    one = tasks["unit[python=3.12,db=sqlite]"]
    assert one.command == ("run-tests", "--python=3.12", "sqlite")
    assert one.image == "python:3.12"
    assert one.cwd == "work/sqlite"
    env = one.environment
    assert (env["DB"], env["LABEL"], env["SHARED"]) == ("sqlite", "py3.12-sqlite", "yes")
    assert one.matrix_of == "unit"
    assert one.matrix == (("python", "3.12"), ("db", "sqlite"))


def test_a_dependency_on_the_matrix_task_is_one_on_every_expansion() -> None:
    tasks = _tasks(TWO_BY_TWO)
    assert tasks["report"].depends_on == tuple(IDS)


def test_an_expansion_keeps_its_own_dependencies_and_may_name_one_expansion() -> None:
    tasks = _tasks("""
[[task]]
id = "build"
matrix = { arch = ["amd64", "arm64"] }
command = "make ARCH=${{ matrix.arch }}"

[[task]]
id = "test"
matrix = { os = ["linux"] }
command = "test ${{ matrix.os }}"
depends_on = ["build", "lint"]

[[task]]
id = "lint"
command = "lint"

[[task]]
id = "publish"
command = "publish"
depends_on = ["build[arch=arm64]"]
""")
    assert tasks["test[os=linux]"].depends_on == ("build[arch=amd64]", "build[arch=arm64]", "lint")
    assert tasks["publish"].depends_on == ("build[arch=arm64]",)


def test_a_shell_command_and_values_from_defaults_are_replaced() -> None:
    tasks = _tasks("""
[defaults]
image = "img:${{ matrix.v }}"
env = { V = "${{ matrix.v }}" }

[[task]]
id = "t"
matrix = { v = [1, true] }
command = "echo ${{ matrix.v }}"
""")
    assert tasks["t[v=1]"].command == "echo 1"
    assert tasks["t[v=true]"].image == "img:true"
    assert tasks["t[v=true]"].environment["V"] == "true"


def test_every_task_knows_its_own_id() -> None:
    for task_id, task in _tasks(TWO_BY_TWO).items():
        assert task.environment[TASK_ID_VARIABLE] == task_id


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ('matrix = { python = ["3.11"] }\ncommand = "echo ${{ matrix.pyton }}"',
         "task 'u': command: '${{ matrix.pyton }}' names no axis of the matrix (axes: python)"),
        ('matrix = { python = [] }\ncommand = "x"',
         "task 'u': matrix: axis 'python' is empty: give it at least one value"),
        ('matrix = { python = "3.11" }\ncommand = "x"',
         "task 'u': matrix: axis 'python' must be a list of values, such as [\"a\", \"b\"]"),
        ('matrix = {}\ncommand = "x"',
         "task 'u': matrix: must be a table of axes such as { python = [\"3.11\", \"3.12\"] }"),
        ('matrix = { a = [1, 1] }\ncommand = "x"',
         "task 'u': matrix: axis 'a': value '1' is given twice"),
        ('matrix = { v = ["a,b"] }\ncommand = "x"',
         "task 'u': matrix: axis 'v': value 'a,b' holds one of , = [ ], which the task's id "
         "cannot"),
        ('command = "echo ${{ matrix.x }}"',
         "task 'u': command: '${{ matrix.x }}', but the task has no matrix"),
        ('matrix = { a = ["x"] }\ncommand = "x"\nworkspace = "w/${{ matrix.a }}"',
         "task 'u': workspace: placeholders are replaced only in command, image, env, cwd"),
        ('matrix = { a = ["x"] }\ncommand = "x"\ndepends_on = ["u"]',
         "task 'u': depends on itself (a dependency on a matrix task is one on each of its "
         "expansions)"),
    ],
)
def test_a_bad_matrix_is_one_line_naming_file_task_and_what(task: str, expected: str) -> None:
    assert _problems(f'[[task]]\nid = "u"\n{task}\n') == [f"tasks.toml: {expected}"]


def test_a_version_written_as_a_number_is_refused() -> None:
    (line,) = _problems('[[task]]\nid = "u"\nmatrix = { python = [3.10] }\ncommand = "x"\n')
    assert "3.1 is a decimal number (3.10 would read as 3.1)" in line


def test_a_matrix_too_large_is_refused_with_its_size() -> None:
    axes = ", ".join(f"a{i} = [1, 2, 3, 4]" for i in range(5))  # 4**5 = 1024
    (line,) = _problems(f'[[task]]\nid = "u"\nmatrix = {{ {axes} }}\ncommand = "x"\n')
    assert f"makes 1024 tasks, more than {MAX_EXPANSIONS}" in line


def test_a_task_with_another_bad_key_is_reported_once_not_per_expansion() -> None:
    lines = _problems('[[task]]\nid = "u"\nmatrix = { a = [1, 2, 3] }\ncommand = "x"\n'
                      'timeout = -1\n')
    assert lines == ["tasks.toml: task 'u': timeout: must be a finite number greater than 0"]


def test_an_expansion_id_taken_by_another_task_is_a_duplicate() -> None:
    lines = _problems('[[task]]\nid = "u"\nmatrix = { a = [1] }\ncommand = "x"\n'
                      '[[task]]\nid = "u[a=1]"\ncommand = "y"\n'
                      '[[task]]\nid = "u"\ncommand = "z"\n')
    assert "tasks.toml: task 'u[a=1]': duplicate id" in lines
    assert any(line.startswith("tasks.toml: task 'u': duplicate id") for line in lines)


def test_ids_split_at_commas_between_ids_not_inside_brackets() -> None:
    assert split_ids(["unit[python=3.11,db=pg],lint", "x"]) == [
        "unit[python=3.11,db=pg]", "lint", "x"]


def test_selection_by_the_matrix_task_or_one_expansion_or_a_keyword() -> None:
    tasks = list(_tasks(TWO_BY_TWO).values())
    assert [t.id for t in select_tasks(tasks, only=["unit"]).tasks] == IDS
    assert [t.id for t in select_tasks(tasks, only=[IDS[2]]).tasks] == [IDS[2]]
    assert [t.id for t in select_tasks(tasks, keywords=["db=pg"]).tasks] == [IDS[0], IDS[2]]
    with pytest.raises(UsageError, match="nothing left to run"):
        select_tasks(tasks, exclude=["unit"])
    kept = select_tasks(tasks, exclude=[IDS[0]], only=["unit"])
    assert [t.id for t in kept.tasks] == IDS[1:]


def test_list_shows_the_expansions_and_only_takes_a_full_id(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile(TWO_BY_TWO)
    listed = run_cli("list", str(path), "--ids")
    assert listed.code == 0, listed.stderr
    assert listed.stdout.split() == [*IDS, "report"]
    two = run_cli("list", str(path), "--ids", "--only", f"{IDS[1]},{IDS[2]}")
    assert two.stdout.split() == [IDS[1], IDS[2]]
    table = run_cli("list", str(path)).stdout.splitlines()
    assert table[-1].endswith("(after unit[*])")
    unknown = run_cli("list", str(path), "--only", "unit[python=3.9,db=pg]")
    assert unknown.code == 2
    assert unknown.stderr.strip() == "spawnkit: error: no task with id 'unit[python=3.9,db=pg]'"


def test_validate_names_an_unknown_axis_in_one_line(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile('[[task]]\nid = "unit"\nmatrix = { python = ["3.11"] }\n'
                    'command = ["pytest", "--py=${{ matrix.pyhton }}"]\n')
    done = run_cli("validate", str(path))
    assert done.code == 2
    assert done.stderr.strip().splitlines() == [
        f"spawnkit: error: {path}: task 'unit': command: '${{{{ matrix.pyhton }}}}' names no "
        "axis of the matrix (axes: python)"]


def test_an_ad_hoc_command_knows_its_id(run_cli: RunCli, tmp_path: Path) -> None:
    done = run_cli("run", "-q", "--", "sh", "-c", f'echo "$SPAWNKIT_TASK_ID" > {tmp_path}/id')
    assert done.code == 0, done.stderr
    assert (tmp_path / "id").read_text() == "command\n"
