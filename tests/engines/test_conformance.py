"""The same behaviour from every backend: process, docker, podman, slurm, kubernetes (and any
backend added later: a backend is one entry of the conftest's BACKENDS)."""

from __future__ import annotations

import json
import signal
import time
from importlib import resources
from pathlib import Path

import jsonschema
import pytest

from spawnkit.core.errors import ResultsUnwritable
from spawnkit.core.registry import get_spawner_class
from spawnkit.core.spawner import Spawner, SpawnerOptions
from spawnkit.core.task.description import Limits, Mount, RetryPolicy, Task
from spawnkit.core.task.runtime import RuntimeTask
from tests.engines.conftest import TEST_IMAGE, StartJob, kill_from_outside, run_job, task_gone


def test_pass(spawner_name: str, start_job: StartJob, no_leftovers: None) -> None:
    run = run_job(start_job, spawner_name, [Task.make("ok", ["echo", "hello"])])
    rec = run.record("ok")
    assert (rec.result, rec.exit_code, rec.reason) == ("passed", 0, None)
    assert run.output("ok", "stdout") == "hello\n"


def test_results_json_keeps_its_schema(
    spawner_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    """results.json as core/results.schema.json documents it, with what each backend applied
    (limits and a timeout: Slurm's --time, say) and every result of a small job."""
    tasks = [Task.make("limited", "echo hi", timeout=60, limits=Limits(cpus=1, memory=2**27)),
             Task.make("bad", "exit 3"), Task.make("after", "true", depends_on=("bad",))]
    run = run_job(start_job, spawner_name, tasks)
    data = json.loads((run.job.job_dir / "results.json").read_text())
    schema = json.loads(resources.files("spawnkit.core").joinpath("results.schema.json")
                        .read_text())
    jsonschema.Draft202012Validator(schema).validate(data)
    assert [t["result"] for t in data["tasks"]] == ["passed", "failed", "skipped"]


def test_a_command_that_cannot_be_executed_fails_as_a_shell_says(
    spawner_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    """Not there: exit code 127; there, but not executable: 126 (what a container's init and a
    shell say), with a line on stderr that names it. The same when the image's entrypoint
    runs it (on Kubernetes the runtime itself then fails to execute it: found by trying)."""
    tasks = [Task.make("missing", ["no-such-command-xyz"]), Task.make("plain", ["/etc/passwd"]),
             Task.make("missing-ep", ["no-such-command-xyz"], entrypoint="image"),
             Task.make("plain-ep", ["/etc/passwd"], entrypoint="image")]
    run = run_job(start_job, spawner_name, tasks)
    for task_id, code, program in (("missing", 127, "no-such-command-xyz"),
                                   ("plain", 126, "/etc/passwd"),
                                   ("missing-ep", 127, "no-such-command-xyz"),
                                   ("plain-ep", 126, "/etc/passwd")):
        rec = run.record(task_id)
        assert (rec.result, rec.exit_code, rec.reason) == ("failed", code, f"exit code {code}")
        assert program in run.output(task_id, "stderr")


def test_a_mount_whose_source_is_missing_is_refused_where_mounts_are(
    spawner_name: str, start_job: StartJob, no_leftovers: None, tmp_path: Path
) -> None:
    """Docker, Podman and Kubernetes mount: a source that is not there is an error, and
    nothing is made in its place. Process and Slurm (without a container) cannot mount: they
    say so (unenforced) and run the task."""
    missing = tmp_path / "not-there"
    task = Task.make("m", "true", limits=Limits(mounts=(Mount(str(missing), "/m"),)))
    rec = run_job(start_job, spawner_name, [task]).record("m")
    mounts = spawner_name in ("docker", "podman", "kubernetes")
    assert rec.result == ("error" if mounts else "passed"), rec
    assert not missing.exists()


def test_fail_keeps_exit_code(spawner_name: str, start_job: StartJob, no_leftovers: None) -> None:
    run = run_job(start_job, spawner_name, [Task.make("bad", "echo before; exit 3")])
    rec = run.record("bad")
    assert (rec.result, rec.exit_code, rec.signal) == ("failed", 3, None)
    assert rec.reason == "exit code 3"
    assert run.output("bad", "stdout") == "before\n"


def test_stdout_and_stderr_apart(
    spawner_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    cmd = "echo out1; echo err1 >&2; echo out2; echo err2 >&2"
    run = run_job(start_job, spawner_name, [Task.make("io", cmd)])
    assert run.output("io", "stdout") == "out1\nout2\n"
    assert run.output("io", "stderr") == "err1\nerr2\n"


def test_env_and_cwd(spawner_name: str, start_job: StartJob, no_leftovers: None) -> None:
    task = Task.make("envcwd", 'echo "$GREETING|$OTHER|$(pwd)"',
                     env={"GREETING": "hello world", "OTHER": "x=y"}, cwd="/tmp")
    run = run_job(start_job, spawner_name, [task])
    assert run.output("envcwd", "stdout") == "hello world|x=y|/tmp\n"


def test_timeout_kills_and_leaves_nothing(
    spawner_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    run = start_job(spawner_name, [Task.make("slow", ["sleep", "100"], timeout=1.0)], grace=1.0)
    handle = run.wait_started("slow")
    result = run.wait()
    rec = run.record("slow")
    assert (rec.result, rec.reason) == ("timed_out", "timed out after 1 s")
    # Timeout 1 s + grace 1 s + 1 s of slack for the engine.
    assert rec.duration is not None and rec.duration < 3.0, rec.duration
    assert result.counts["timed_out"] == 1
    assert task_gone(spawner_name, run, handle)


def _hearing_of_ends_late(name: str) -> Spawner:
    """The backend, told of no end until the worker stops the task."""

    class HearsLate(get_spawner_class(name)):  # type: ignore[misc]
        async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
            return True

    return HearsLate(SpawnerOptions(image=TEST_IMAGE, grace_period=1.0))


def test_a_stop_that_finds_the_task_ended_lets_its_exit_stand(
    spawner_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    """Every backend hears of an exit a moment after it, so a deadline may pass in between:
    the stop then finds the task ended, sends nothing, and the task is judged by its own
    exit, not timed out. Here the backend hears of no end before the deadline (what a real
    engine does only by chance), so the stop always comes after the end."""
    task = Task.make("quick", "echo done", timeout=3.0)
    run = run_job(start_job, spawner_name, [task], spawner=_hearing_of_ends_late(spawner_name))
    rec = run.record("quick")
    assert (rec.result, rec.exit_code, rec.reason) == ("passed", 0, None), rec
    assert rec.notes == ["it had ended by itself when its stop (timed out after 3 s) came: "
                         "judged by its own exit"], rec
    assert run.output("quick", "stdout") == "done\n"


def test_killed_from_outside(spawner_name: str, start_job: StartJob, no_leftovers: None) -> None:
    run = start_job(spawner_name, [Task.make("victim", ["sleep", "100"], timeout=60.0)])
    handle = run.wait_started("victim")
    killed_at = time.monotonic()
    kill_from_outside(spawner_name, handle)
    run.wait(timeout=30)
    ended_after = time.monotonic() - killed_at
    rec = run.record("victim")
    assert rec.result == "failed"
    if spawner_name == "kubernetes":
        # Kubernetes reports an exit code, never a signal: a SIGKILL from inside the Pod (not
        # `kubectl delete pod`, which is known: test_kubernetes.py) reads as exit code 137,
        # as a shell reports it (README, "A task file means the same on every backend").
        assert (rec.exit_code, rec.signal, rec.oom) == (128 + signal.SIGKILL, None, False)
        assert rec.reason == "exit code 137"
    else:
        assert rec.signal == signal.SIGKILL and not rec.oom
        assert rec.reason == "killed by signal 9 (SIGKILL)"
    assert ended_after < 5.0, f"the job took {ended_after:.1f} s to see the kill"


def test_many_tasks_at_once(spawner_name: str, start_job: StartJob, no_leftovers: None) -> None:
    tasks = [Task.make(f"t{i}", f"echo task {i}; exit {i % 2}") for i in range(8)]
    run = run_job(start_job, spawner_name, tasks, max_running=4)
    for i in range(8):
        rec = run.record(f"t{i}")
        assert rec.exit_code == i % 2
        assert run.output(f"t{i}", "stdout") == f"task {i}\n"


def test_failfast_stops_the_rest(
    spawner_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    tasks = [
        Task.make("slow1", ["sleep", "100"]),
        Task.make("slow2", ["sleep", "100"]),
        Task.make("breaks", "exit 1"),
        # A teardown is spared: a CI job must still stop what it started.
        Task.make("cleanup", "echo cleaned", depends_on=("breaks",), teardown=True),
    ]
    run = run_job(start_job, spawner_name, tasks, failfast=True, max_running=3)
    assert run.record("breaks").result == "failed"
    # All three were started (max_running 3): the two still running are interrupted.
    for tid in ("slow1", "slow2"):
        assert run.record(tid).result == "interrupted", run.record(tid)
    assert task_gone(spawner_name, run, run.record("slow1").handle or "")
    assert run.record("cleanup").result == "passed", run.record("cleanup")
    assert run.output("cleanup", "stdout") == "cleaned\n"


def test_output_kept_byte_for_byte(
    spawner_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    """No trailing newline, bytes that are not UTF-8, more than one read's worth, and lines
    longer than an engine's log message (Docker's: 16 KiB) that end where they should."""
    cmd = (r"printf 'a\377b'; head -c 300000 /dev/zero | tr '\0' x; echo; "
           r"head -c 20000 /dev/zero | tr '\0' y; echo; head -c 300000 /dev/zero | tr '\0' z; "
           r"printf 'end'; printf 'e\001' >&2")
    run = run_job(start_job, spawner_name, [Task.make("bytes", cmd)])
    out_dir = run.job.job_dir / "tasks" / "bytes"
    assert (out_dir / "stdout").read_bytes() == (
        b"a\xffb" + b"x" * 300000 + b"\n" + b"y" * 20000 + b"\n" + b"z" * 300000 + b"end")
    assert (out_dir / "stderr").read_bytes() == b"e\x01"


def test_timeout_asks_politely_first(
    spawner_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    """SIGTERM first: a task that handles it ends within the grace period, its way."""
    cmd = "trap 'echo got TERM; exit 0' TERM; echo ready; sleep 100 & wait"
    run = run_job(start_job, spawner_name, [Task.make("polite", cmd, timeout=1.0)], grace=10.0)
    rec = run.record("polite")
    assert rec.result == "timed_out"
    assert rec.duration is not None and rec.duration < 5.0, rec.duration
    assert run.output("polite", "stdout") == "ready\ngot TERM\n"


def test_every_output_file_the_results_name_is_there(
    spawner_name: str, start_job: StartJob, no_leftovers: None
) -> None:
    """A CI step that reads each task's output needs no special case: a retried task's
    attempts keep theirs, and a task that never started has empty ones."""
    tasks = [Task.make("bad", "echo try; exit 3", retry=RetryPolicy(max=1, exit_codes=(3,))),
             Task.make("after", "echo never", depends_on=("bad",))]
    run = run_job(start_job, spawner_name, tasks)
    job = run.job.job_dir
    bad, after = run.record("bad"), run.record("after")
    assert (bad.result, len(bad.attempts), after.result) == ("failed", 1, "skipped")
    assert [(job / p).read_text() for p in (bad.stdout, bad.attempts[0]["stdout"])] == \
        ["try\n", "try\n"]
    assert [(job / p).read_bytes() for p in (after.stdout, after.stderr)] == [b"", b""]


def test_a_full_results_disk_ends_the_run_with_one_line(
    spawner_name: str, full_results_disk: Path, start_job: StartJob, no_leftovers: None
) -> None:
    """A task's output fills the disk of the job folder: the tasks still run to their ends
    (their status changes wait for room, in memory), and the run ends with one error naming
    the folder and the OS's words, with no half-written file left. Found by trying: the
    journal's refused write crashed the worker, whose clean-up could then start no stop."""
    fill = Task.make("fill", "head -c 3000000 /dev/zero | tr '\\0' x; echo end")
    after = [Task.make(f"after{i}", f"echo {i}", depends_on=("fill",)) for i in range(5)]
    run = start_job(spawner_name, [fill, *after])
    with pytest.raises(ResultsUnwritable) as raised:
        run.wait(180)
    assert str(raised.value).startswith(f"cannot write the results of {run.job.job_dir}: "
                                        "No space left on device ("), str(raised.value)
    assert not [p for p in full_results_disk.rglob(".*") if p.name.endswith(".tmp")]
    assert not (run.job.job_dir / "results.json").exists()
    # Each task ended by itself. `fill` may not pass: on process its own write is refused,
    # on Slurm its exit status cannot be written (error); in a container it is the copy.
    ended = {t.id: t.result.value for t in run.job.results().tasks}
    assert ended["fill"] in ("passed", "failed", "error"), ended
    expected = "passed" if ended["fill"] == "passed" else "skipped"
    assert {ended[t.id] for t in after} == {expected}, ended
