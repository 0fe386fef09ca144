"""A 2x2 matrix on every backend: four tasks, each with its own values in its command, its
environment and its working folder, and its own id in SPAWNKIT_TASK_ID."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import RunCli, WriteTaskfile
from tests.engines.conftest import TEST_IMAGE

MATRIX = f"""
[defaults]
image = "{TEST_IMAGE}"

[[task]]
id = "unit"
matrix = {{ python = ["3.11", "3.12"], db = ["pg", "sqlite"] }}
command = ["sh", "-c", "echo python=${{{{ matrix.python }}}} db=$DB id=$SPAWNKIT_TASK_ID; pwd"]
env = {{ DB = "${{{{ matrix.db }}}}" }}
cwd = "work/${{{{ matrix.db }}}}"

[[task]]
id = "after"
command = "echo after $SPAWNKIT_TASK_ID"
depends_on = ["unit"]
"""


def test_two_by_two_runs_four_tasks_with_their_values(
    spawner_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    for db in ("pg", "sqlite"):
        (tmp_path / "work" / db).mkdir(parents=True)
    path = taskfile(MATRIX)
    done = run_cli("run", str(path), "--spawner", spawner_name, "-q")
    assert done.code == 0, done.stdout + done.stderr
    ids = [t["id"] for t in done.results["tasks"]]
    expected = [f"unit[python={p},db={d}]" for p in ("3.11", "3.12") for d in ("pg", "sqlite")]
    assert sorted(ids) == sorted([*expected, "after"])
    for task_id in expected:
        record = done.task(task_id)
        assert record["result"] == "passed"
        python, db = task_id[len("unit[python="):-1].split(",db=")
        said, folder = (done.job_dir / record["stdout"]).read_text().splitlines()
        assert said == f"python={python} db={db} id={task_id}"
        assert folder.endswith(f"/work/{db}")
    after = done.task("after")
    assert (done.job_dir / after["stdout"]).read_text() == "after after\n"
    assert set(after["depends_on"]) == set(expected)
