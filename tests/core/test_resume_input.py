"""`spawnkit resume` with bad input: one line and exit 2, never a traceback; a torn journal
stays readable after a takeover; a journal a full disk refused is whole once there is room."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from spawnkit.core.journal import Journal, read_journal
from spawnkit.core.task.description import Task
from tests.conftest import RunCli
from tests.helpers import fill_disk


def _journal(tmp_path: Path, run_cli: RunCli, text: str, env: dict[str, str] | None = None,
             ) -> Path:
    """A finished job's folder, its end record cut off: as a killed runner leaves it."""
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    run = run_cli("run", str(path), env=env)
    assert run.code in (0, 1), run.stderr
    journal = run.job_dir / "journal.jsonl"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(line for line in lines if '"event": "end"' not in line) + "\n")
    return run.job_dir


def test_a_resume_without_the_jobs_secret_is_refused(run_cli: RunCli, tmp_path: Path) -> None:
    """Without the value, what a task printed while no runner watched could not be masked."""
    job_dir = _journal(tmp_path, run_cli, '[[task]]\nid = "a"\nsecrets = ["SK_RESUME_TOKEN"]\n'
                       'command = "true"\n', env={"SK_RESUME_TOKEN": "x1y2z3"})
    run = run_cli("resume", str(job_dir))
    assert run.code == 2
    [line] = run.stderr.strip().splitlines()
    assert "SK_RESUME_TOKEN not set" in line
    assert run_cli("resume", str(job_dir), env={"SK_RESUME_TOKEN": "x1y2z3"}).code == 0


@pytest.mark.parametrize("damage", [
    lambda h: h | {"tasks": 5},
    lambda h: h | {"settings": [1]},
    lambda h: h | {"settings": {**h["settings"], "max_running": "4"}},
    lambda h: h | {"options": {**h["options"], "grace_period": "x"}},
])
def test_a_damaged_journal_is_one_line(run_cli: RunCli, tmp_path: Path, damage: object) -> None:
    job_dir = _journal(tmp_path, run_cli, '[[task]]\nid = "a"\ncommand = "true"\n')
    journal = job_dir / "journal.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    assert callable(damage)
    lines[0] = json.dumps(damage(header))
    journal.write_text("\n".join(lines) + "\n")
    run = run_cli("resume", str(job_dir))
    assert run.code == 2, run.stderr
    [line] = run.stderr.strip().splitlines()
    assert line.startswith("spawnkit: error: ") and "journal" in line


def test_a_torn_last_line_stays_readable_after_a_takeover(run_cli: RunCli,
                                                         tmp_path: Path) -> None:
    job_dir = _journal(tmp_path, run_cli, '[[task]]\nid = "a"\ncommand = "true"\n'
                       '[[task]]\nid = "b"\ncommand = "echo b"\ndepends_on = ["a"]\n')
    journal = job_dir / "journal.jsonl"
    lines = journal.read_text().splitlines()
    # The runner died while it wrote b's last entry: b's line is torn, b never finished.
    kept = [line for line in lines if not ('"task": "b"' in line and '"finished"' in line)]
    journal.write_text("\n".join(kept) + '\n{"event": "status", "task": "b", "sta')
    run = run_cli("resume", str(job_dir))
    assert run.code == 0, run.stderr
    assert [t["result"] for t in run.results["tasks"]] == ["passed", "passed"]
    again = run_cli("results", str(job_dir))
    assert again.code == 0, again.stderr


def test_a_journal_refused_by_a_full_disk_is_whole_once_there_is_room(
    full_results_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """What the disk refused waits in memory, said once, and is written, in order and whole,
    at the first flush that finds room: the run it records goes on meanwhile."""
    path = full_results_disk / "journal.jsonl"
    journal = Journal(path)
    journal.begin("j", [Task.make("a", "true")])
    filler = fill_disk(full_results_disk)
    with caplog.at_level(logging.WARNING, logger="spawnkit"):
        for i in range(300):
            journal.takeover(old_owner=f"runner-{i}", new_owner=f"runner-{i + 1}")
    assert not journal.complete
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"cannot write {path}: No space left on device; its lines wait in "
                    "memory until it can be written"]
    filler.unlink()
    journal.end(signal=None)
    journal.close()
    assert journal.complete
    assert caplog.records[-1].getMessage() == f"{path}: written again, no line lost"
    header, _entries, end = read_journal(path)
    assert [t["old_owner"] for t in header["takeovers"]] == [f"runner-{i}" for i in range(300)]
    assert end is not None
