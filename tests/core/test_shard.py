"""Sharding: every task in exactly one share, dependencies kept together, shares balanced by
past durations or by count, the CI's own variables, and bad values said in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spawnkit.core.errors import UsageError
from spawnkit.core.plan import plan
from spawnkit.core.shard import (
    Shard,
    parse_shard,
    read_durations,
    shard_from_environment,
    split_tasks,
)
from spawnkit.core.task.description import Task
from tests.conftest import RunCli, WriteTaskfile


def _ids(tasks: list[Task]) -> list[str]:
    return [t.id for t in tasks]


def _singles(n: int) -> list[Task]:
    return [Task.make(f"t{i}", "true") for i in range(n)]


def test_by_count_is_round_robin_in_plan_order() -> None:
    split = split_tasks(_singles(5), 2)
    assert [_ids(s) for s in split.shares] == [["t0", "t2", "t4"], ["t1", "t3"]]
    assert not split.by_duration


def test_a_connected_group_goes_to_one_share_teardowns_included() -> None:
    tasks = plan([
        Task.make("db", "true"),
        Task.make("lint", "true"),
        Task.make("test", "true", depends_on=("db",)),
        Task.make("stop-db", "true", depends_on=("db",), teardown=True),
        Task.make("docs", "true"),
    ])
    split = split_tasks(tasks, 2)
    shares = [set(_ids(s)) for s in split.shares]
    group = {"db", "test", "stop-db"}
    assert any(group <= share for share in shares)
    assert sorted(i for s in shares for i in s) == sorted(_ids(tasks))


def test_by_duration_longest_first_each_to_the_least_loaded_share() -> None:
    tasks = _singles(5)
    past = {"t0": 10.0, "t1": 9.0, "t2": 6.0, "t3": 4.0, "t4": 3.0}
    split = split_tasks(tasks, 2, past)
    # 10 -> A; 9 -> B; 6 -> B (9 < 10); 4 -> A (10 < 15); 3 -> A (14 < 15).
    assert [_ids(s) for s in split.shares] == [["t0", "t3", "t4"], ["t1", "t2"]]
    assert split.weights == [17.0, 15.0]


def test_a_task_with_no_past_duration_counts_as_the_median() -> None:
    tasks = _singles(4)
    split = split_tasks(tasks, 2, {"t0": 1.0, "t1": 2.0, "t2": 30.0})
    # t3 counts as 2 s: 30 -> A; 2 -> B; 2 (t3) -> B; 1 -> B.
    assert [_ids(s) for s in split.shares] == [["t2"], ["t0", "t1", "t3"]]


def test_more_shares_than_groups_leaves_a_share_empty() -> None:
    tasks = plan([Task.make("a", "true"), Task.make("b", "true", depends_on=("a",))])
    assert [_ids(s) for s in split_tasks(tasks, 3).shares] == [["a", "b"], [], []]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1/2", Shard(1, 2)), (" 2 / 2 ", Shard(2, 2)), ("1/1", Shard(1, 1))],
)
def test_good_shards(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected


def test_the_ci_variables_say_the_share_when_no_option_does() -> None:
    assert shard_from_environment({}) is None
    assert shard_from_environment({"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "3"}) == (
        Shard(2, 3), "CI_NODE_INDEX/CI_NODE_TOTAL")
    # Buildkite counts from 0.
    found = shard_from_environment({"BUILDKITE_PARALLEL_JOB": "0",
                                    "BUILDKITE_PARALLEL_JOB_COUNT": "2"})
    assert found is not None and found[0] == Shard(1, 2)
    with pytest.raises(UsageError, match="CI_NODE_INDEX/CI_NODE_TOTAL: 'x/2'"):
        shard_from_environment({"CI_NODE_INDEX": "x", "CI_NODE_TOTAL": "2"})
    # Half a share (found by trying: every task ran, with no word).
    for half in ({"CI_NODE_INDEX": "2"}, {"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": " "},
                 {"BUILDKITE_PARALLEL_JOB_COUNT": "3"}):
        with pytest.raises(UsageError, match="only one of the two is set"):
            shard_from_environment(half)
    # GitLab sets CI_NODE_TOTAL=1, and no index, in every job without `parallel:` (found by
    # trying: every such job exited 2).
    assert shard_from_environment({"CI_NODE_TOTAL": "1"}) == (
        Shard(1, 1), "CI_NODE_INDEX/CI_NODE_TOTAL")
    # An index past the total is said as the CI gave it (Buildkite's from 0).
    with pytest.raises(UsageError, match=r"BUILDKITE_PARALLEL_JOB_COUNT: '2/2': the index "
                                         r"must be from 0 to 1"):
        shard_from_environment({"BUILDKITE_PARALLEL_JOB": "2",
                                "BUILDKITE_PARALLEL_JOB_COUNT": "2"})


def test_durations_are_read_from_results_files_a_later_one_winning(tmp_path: Path) -> None:
    first, second = tmp_path / "1.json", tmp_path / "2.json"
    first.write_text(json.dumps({"tasks": [{"id": "a", "duration": 1.5},
                                           {"id": "b", "duration": None}]}))
    second.write_text(json.dumps({"tasks": [{"id": "a", "duration": 2}]}))
    assert read_durations([first, second]) == {"a": 2.0}
    (tmp_path / "bad.json").write_text("[]")
    with pytest.raises(UsageError, match=r"not a spawnkit results\.json"):
        read_durations([tmp_path / "bad.json"])
    with pytest.raises(UsageError, match="no such file"):
        read_durations([tmp_path / "none.json"])


TASKS = """
[[task]]
id = "setup"
command = "true"

[[task]]
id = "unit"
matrix = { n = [1, 2, 3, 4] }
command = "echo ${{ matrix.n }}"

[[task]]
id = "integration"
command = "true"
depends_on = ["setup"]

[[task]]
id = "cleanup"
command = "true"
depends_on = ["setup"]
teardown = true

[[task]]
id = "lint"
command = "true"
"""


@pytest.mark.parametrize("balance", ["count", "durations"])
def test_two_shards_together_run_every_task_exactly_once(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path, balance: str
) -> None:
    path = taskfile(TASKS)
    every = run_cli("list", str(path), "--ids").stdout.split()
    extra: list[str] = []
    if balance == "durations":
        past = tmp_path / "past.json"
        past.write_text(json.dumps({"tasks": [{"id": i, "duration": float(n)}
                                              for n, i in enumerate(every, 1)]}))
        extra = ["--durations", str(past)]
    ran: list[list[str]] = []
    for index in (1, 2):
        done = run_cli("run", str(path), "-q", "--shard", f"{index}/2", *extra)
        assert done.code == 0, done.stderr
        assert f"spawnkit: note: shard {index}/2:" in done.stderr
        ran.append([t["id"] for t in done.results["tasks"]])
    assert sorted(ran[0] + ran[1]) == sorted(every)
    assert not set(ran[0]) & set(ran[1])
    assert all(ran)
    # A task and what it depends on share a share.
    assert any({"setup", "integration", "cleanup"} <= set(r) for r in ran)


def test_gitlab_variables_shard_a_run_and_an_empty_share_passes(
    run_cli: RunCli, taskfile: WriteTaskfile
) -> None:
    path = taskfile('[[task]]\nid = "a"\ncommand = "true"\n')
    mine = run_cli("run", str(path), "-q", env={"CI_NODE_INDEX": "1", "CI_NODE_TOTAL": "2"})
    assert mine.code == 0 and [t["id"] for t in mine.results["tasks"]] == ["a"]
    assert "(from CI_NODE_INDEX/CI_NODE_TOTAL)" in mine.stderr
    empty = run_cli("run", str(path), "-q", env={"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "2"})
    assert empty.code == 0, empty.stderr
    # passed as its exit says (found by a user's try: `jq -e .passed` failed it), and the
    # summary says why nothing ran.
    assert (empty.results["tasks"], empty.results["passed"]) == ([], True)
    assert "0 tasks in 0.00s: nothing to run" in empty.stdout
    assert "shard 2/2: 0 of 1 task(s)" in empty.stderr
    # --shard wins over the variables; 1/1 is everything.
    every = run_cli("run", str(path), "-q", "--shard", "1/1",
                    env={"CI_NODE_INDEX": "2", "CI_NODE_TOTAL": "2"})
    assert [t["id"] for t in every.results["tasks"]] == ["a"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("3/2", "--shard: '3/2': I must be from 1 to N, and N at least 1"),
        ("0/2", "--shard: '0/2': I must be from 1 to N, and N at least 1"),
        ("1/0", "--shard: '1/0': I must be from 1 to N, and N at least 1"),
        ("1-2", "--shard: '1-2' is not I/N (such as 1/2: the first of two shares)"),
        ("", "--shard: '' is not I/N (such as 1/2: the first of two shares)"),
    ],
)
def test_a_bad_shard_is_one_line_exit_2(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path, value: str, expected: str
) -> None:
    marker = tmp_path / "ran"
    path = taskfile(f'[[task]]\nid = "a"\ncommand = "touch {marker}"\n')
    done = run_cli("run", str(path), "--shard", value)
    assert done.code == 2
    assert done.stderr.strip().splitlines() == [f"spawnkit: error: {expected}"]
    assert not marker.exists()


def test_a_bad_durations_file_is_one_line_exit_2(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path
) -> None:
    path = taskfile('[[task]]\nid = "a"\ncommand = "true"\n')
    (tmp_path / "bad.json").write_text("{not json")
    done = run_cli("run", str(path), "--shard", "1/2", "--durations", str(tmp_path / "bad.json"))
    assert done.code == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"spawnkit: error: --durations {tmp_path / 'bad.json'}: not JSON")
