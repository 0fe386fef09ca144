"""A full disk under the job folder: the run goes on and says what it found, then one line
and exit 74; nothing half-written left; no task runs twice after it."""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree

import pytest

from spawnkit.core.joblock import JobEnded, JobLock, ended_unrecorded
from tests.conftest import RunCli
from tests.helpers import fill_disk


def test_results_that_cannot_be_written_are_one_line_and_exit_74(
    run_cli: RunCli, full_results_disk: Path
) -> None:
    """A full disk when the result files are written: exit 74 (EX_IOERR), one line naming
    the job folder and the OS's words, no half-written file; once there is room, the
    command it names writes them. Found by trying: exit 70, an internal error."""
    assert run_cli("run", "-q", "--", "echo", "hi").code == 0
    job = (full_results_disk / "latest").resolve()
    (job / "results.json").unlink()
    filler = fill_disk(full_results_disk)
    rebuilt = run_cli("results", str(job))
    assert rebuilt.code == 74, rebuilt
    assert rebuilt.stderr == (f"spawnkit: error: cannot write the results of {job}: No space "
                              f"left on device (once there is room, `spawnkit results {job}` "
                              "writes them)\n")
    assert not [p.name for p in job.iterdir() if p.name.endswith(".tmp")]
    filler.unlink()
    rebuilt = run_cli("results", str(job))
    assert rebuilt.code == 0, rebuilt
    assert json.loads((job / "results.json").read_text())["counts"]["passed"] == 1


def test_a_run_whose_results_disk_fills_still_says_what_it_found(
    run_cli: RunCli, full_results_disk: Path, tmp_path: Path
) -> None:
    """A task's output fills the job folder's disk: the summary is printed all the same,
    `--junit` elsewhere is written, and the run ends with one error line and exit 74."""
    path = tmp_path / "tasks.toml"
    path.write_text('[[task]]\nid = "fill"\ncommand = "yes | head -c 3000000"\n'
                    + "".join(f'[[task]]\nid = "after{i}"\ncommand = "true"\n'
                              f'depends_on = ["fill"]\n' for i in range(3)))
    junit = tmp_path / "junit.xml"
    run = run_cli("run", "-q", "--junit", str(junit), str(path))
    assert run.code == 74, run
    job = (full_results_disk / "latest").resolve()
    last = run.stderr.splitlines()[-1]
    assert last.startswith(f"spawnkit: error: cannot write the results of {job}: No space left "
                           "on device ("), run.stderr
    assert "4 tasks in" in run.stdout and "1 failed, 3 skipped" in run.stdout, run.stdout
    cases = ElementTree.parse(junit).getroot().iter("testcase")
    assert sorted(c.get("name", "") for c in cases) == ["after0", "after1", "after2", "fill"]


def test_a_job_whose_journal_the_disk_refused_is_not_resumed(
    run_cli: RunCli, full_results_disk: Path, tmp_path: Path
) -> None:
    """Found by trying: the journal of a run ended by a full disk has no end record, so
    `spawnkit resume` took it for a dead runner's and ran again tasks that had ended (one
    appended its line twice). The runner now says in its lock file that it ended."""
    ran = tmp_path / "ran"
    path = tmp_path / "tasks.toml"
    # Once `fill` has filled the disk, 40 tasks end, one at a time: far more lines than
    # the journal's last page can still take.
    path.write_text('[[task]]\nid = "fill"\ncommand = "yes | head -c 3000000"\n'
                    + "".join(f'[[task]]\nid = "t{i}"\ncommand = "echo ran >> {ran}"\n'
                              for i in range(40)))
    run = run_cli("run", "-q", "--max-running", "1", str(path))
    assert run.code == 74, run
    assert run.stderr.splitlines()[-1].endswith("(its journal misses the last changes too)")
    job = (full_results_disk / "latest").resolve()
    (job / "tasks" / "fill" / "stdout").unlink()  # room again
    assert ran.read_text() == "ran\n" * 40
    resumed = run_cli("resume", str(job))
    assert resumed.code == 2, resumed
    assert resumed.stderr == (f"spawnkit: error: {job}: the job ended (its journal misses the "
                              "last changes: a full disk); there is nothing to resume\n")
    assert ran.read_text() == "ran\n" * 40
    rebuilt = run_cli("results", str(job))
    assert rebuilt.stderr.startswith(f"spawnkit: warning: {job}: the journal misses the last "
                                     "changes"), rebuilt.stderr
    assert (job / "results.json").is_file()


def test_a_disk_full_before_the_run_is_one_line_and_leaves_no_folder(
    run_cli: RunCli, full_results_disk: Path
) -> None:
    """Found by trying: exit 70, an internal error, when not a byte was left (the lock
    file's owner line; no inode for the journal gives the same line, untested)."""
    fill_disk(full_results_disk)
    run = run_cli("run", "-q", "--", "true")
    assert run.code == 2, run
    [line] = run.stderr.splitlines()
    assert line.startswith(f"spawnkit: error: cannot write in the job folder "
                           f"{full_results_disk}/"), line
    assert line.endswith(": No space left on device"), line
    assert [p.name for p in full_results_disk.iterdir()] == ["filler"]


def test_the_mark_of_a_runner_that_ended_unrecorded_is_kept_and_keeps_runners_out(
    full_results_disk: Path
) -> None:
    """Written on a disk with no byte left, and never taken for a dead runner's lock: a
    resume that got the lock just as that runner let go (the reviewer's race) is refused and
    leaves the mark for the next one."""
    job = full_results_disk / "job"
    job.mkdir()
    lock = JobLock(job)
    lock.acquire("host:1:2")
    filler = fill_disk(full_results_disk)
    lock.release(recorded=False)
    assert ended_unrecorded(job)
    filler.unlink()
    for _ in range(2):
        with pytest.raises(JobEnded):
            JobLock(job).acquire("host:3:4")
        assert ended_unrecorded(job)
    done = full_results_disk / "done"
    done.mkdir()
    other = JobLock(done)
    other.acquire("host:5:6")
    other.release()
    assert not ended_unrecorded(done) and (done / "runner.lock").read_bytes() == b""
