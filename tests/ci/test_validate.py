"""`spawnkit validate` and `spawnkit list`: every problem one line, exit 2; nothing runs."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import RunCli

FIVE_MISTAKES = """
[[task]]
id = "build"
command = "make"
colour = "blue"            # 1: unknown key

[[task]]
id = "test"
command = "make test"
timeout = "soon"           # 2: wrong type
depends_on = ["biuld"]     # 3: unknown dependency

[[task]]
id = "build"               # 4: duplicate id
command = "make again"

[[task]]
id = "lint"                # 5: missing command
"""


def test_five_mistakes_five_lines_exit_2(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(FIVE_MISTAKES)
    run = run_cli("validate", str(path))
    assert run.code == 2
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 5, run.stderr
    assert all(line.startswith(f"spawnkit: error: {path}: task '") for line in lines)
    text = "\n".join(lines)
    for expected in ("task 'build': unknown key 'colour'", "task 'test': timeout: must be",
                     "task 'test': depends_on: unknown task 'biuld'",
                     "task 'build': duplicate id", "task 'lint': missing 'command'"):
        assert expected in text
    assert not (run.results_root / "latest").exists()


def test_a_cycle_is_a_problem_not_a_crash(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "a"\ncommand = "true"\ndepends_on = ["b"]\n'
                    '[[task]]\nid = "b"\ncommand = "true"\ndepends_on = ["a"]\n')
    for args in (("validate", str(path)), ("run", str(path))):
        run = run_cli(*args)
        assert run.code == 2
        assert run.stderr.splitlines() == [
            f"spawnkit: error: {path}: task 'a': circular dependency: a -> b -> a"
        ]


def test_a_cycle_is_said_with_the_other_problems(run_cli: RunCli, tmp_path: Path) -> None:
    """Not only once they are fixed (found at an earlier stop: a second try showed it)."""
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "a"\ncommand = "true"\ndepends_on = ["b"]\ncolour = 1\n'
                    '[[task]]\nid = "b"\ncommand = "true"\ndepends_on = ["a", "nope"]\n'
                    '[[task]]\nid = "x"\ncommand = "true"\ndepends_on = ["y"]\n'
                    '[[task]]\nid = "y"\ncommand = "true"\ndepends_on = ["x", "a"]\n')
    run = run_cli("validate", str(path))
    assert run.code == 2
    assert run.stderr.splitlines() == [
        f"spawnkit: error: {path}: task 'a': unknown key 'colour'",
        f"spawnkit: error: {path}: task 'b': depends_on: unknown task 'nope'",
        f"spawnkit: error: {path}: task 'a': circular dependency: a -> b -> a",
        f"spawnkit: error: {path}: task 'x': circular dependency: x -> y -> x",  # each cycle
    ]


def test_a_good_file_validates(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "a"\ncommand = "true"\n')
    run = run_cli("validate", str(path))
    assert (run.code, run.stdout, run.stderr) == (0, f"{path}: ok, 1 task(s)\n", "")
    assert run_cli("validate", "-q", str(path)).stdout == ""


def test_list_shows_the_run_order_and_selection(run_cli: RunCli, tmp_path: Path) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(
        '[[task]]\nid = "test"\ncommand = "make test"\ndepends_on = ["build"]\n'
        '[[task]]\nid = "build"\ncommand = ["make", "all"]\n'
        '[[task]]\nid = "lint"\ncommand = "ruff ."\n'
    )
    run = run_cli("list", str(path))
    assert run.code == 0
    assert run.stdout.splitlines() == [
        "build  make all",
        "test   make test  (after build)",
        "lint   ruff .",
    ]
    run = run_cli("list", "--ids", str(path), "--only", "test")
    assert run.stdout.splitlines() == ["build", "test"]
    assert "pulled in as dependencies: build" in run.stderr
    bad = run_cli("list", str(path), "--only", "nope")
    assert bad.code == 2 and bad.stderr.strip() == "spawnkit: error: no task with id 'nope'"
