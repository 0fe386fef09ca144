"""--keep-failed, `spawnkit gc --kept` and `spawnkit shell`: keep what failed, and look inside.

The shells here are given their commands through stdin, as a script would; a terminal (a TTY)
is the same command with the engine's command line in raw mode.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import CliRun, RunCli, WriteTaskfile, child_env
from tests.engines.conftest import TEST_IMAGE, containers_of, engine_cli

SECRET = "s3cr3t-value-of-the-runner"

TWO_TASKS = f"""
[defaults]
image = "{TEST_IMAGE}"
cwd = "."

[[task]]
id = "good"
command = "echo fine"

[[task]]
id = "bad"
command = "echo left by bad > /left-behind; echo data > out.txt; exit 3"
env = {{ FOO = "bar" }}
secrets = ["API_TOKEN"]
"""

#: What the shell is asked: the task's file, the working folder, its env, no secret.
LOOK = 'cat /left-behind; pwd; cat out.txt; echo "foo=$FOO token=[$API_TOKEN]"; exit 7\n'


def spawnkit_shell(tmp_path: Path, job_dir: Path, task: str, stdin: str,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`spawnkit shell JOB_DIR TASK` with `stdin` as its input, not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "spawnkit.cli", "shell", str(job_dir), task],
        input=stdin, capture_output=True, text=True, timeout=120,
        env=child_env(tmp_path, {"API_TOKEN": SECRET, **(env or {})}), cwd=tmp_path, check=False,
    )


def shell_images(engine: str, container_id: str) -> list[str]:
    """The temporary images `spawnkit shell` made of this container, still on the engine."""
    listed = engine_cli(engine, "images", "--format", "{{.Repository}}:{{.Tag}}").split()
    return [i for i in listed if f"spawnkit-shell:{container_id[:12]}-" in i]


def test_keep_failed_shell_and_gc_kept(
    engine_name: str, run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
    no_leftovers: None,
) -> None:
    path = taskfile(TWO_TASKS)
    run: CliRun = run_cli("run", str(path), "--spawner", engine_name, "--keep-failed", "-q",
                          env={"API_TOKEN": SECRET})
    assert run.code == 1, run.stderr
    job_id = run.results["job_id"]
    bad, good = run.task("bad"), run.task("good")
    assert (bad["result"], good["result"]) == ("failed", "passed")
    kept = bad["handle"]

    # Only the failing task's container stays, labelled kept, and its note says how to look.
    assert containers_of(engine_name, job_id) == [kept]
    labels = json.loads(engine_cli(engine_name, "inspect", "--format",
                                   "{{json .Config.Labels}}", kept))
    assert labels["spawnkit.keep"] == "failed"
    assert bad["notes"] == [f"container {kept[:12]} kept: spawnkit shell "
                            f"{run.results_root / job_id} bad"]
    assert good["notes"] == []

    # A shell in what the task left: its file system, working folder and env, no secret.
    shell = spawnkit_shell(tmp_path, run.job_dir, "bad", LOOK)
    assert shell.returncode == 7, shell.stderr
    assert shell.stdout.splitlines() == [
        "left by bad", "/workspace", "data", "foo=bar token=[]",
    ]
    assert SECRET not in shell.stdout + shell.stderr
    # The shell's container and image are gone, the kept container is not.
    assert containers_of(engine_name, job_id) == [kept]
    assert shell_images(engine_name, kept) == []

    # A task whose container was not kept: one line, exit 2.
    passed = spawnkit_shell(tmp_path, run.job_dir, "good", "exit\n")
    assert passed.returncode == 2
    assert passed.stderr.count("\n") == 1 and "was not kept" in passed.stderr, passed.stderr

    # The runner is dead now: plain gc leaves the kept container, --kept removes it.
    gc = run_cli("gc", "--spawner", engine_name)
    assert gc.code == 0, gc.stderr
    assert kept[:12] not in gc.stdout
    assert containers_of(engine_name, job_id) == [kept]
    gc = run_cli("gc", "--spawner", engine_name, "--kept")
    assert gc.code == 0, gc.stderr
    assert f"{engine_name}: removed container {kept[:12]} (job {job_id}, task bad, kept)" \
        in gc.stdout.splitlines()
    assert containers_of(engine_name, job_id) == []


def test_process_shell_has_the_task_folder_and_env_without_secrets(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
) -> None:
    path = taskfile(TWO_TASKS.replace(f'image = "{TEST_IMAGE}"', "")
                    .replace("> /left-behind", "> left-behind"))
    run = run_cli("run", str(path), "--keep-failed", "-q", env={"API_TOKEN": SECRET})
    assert run.code == 1, run.stderr
    assert run.task("bad")["notes"] == []  # nothing to keep: the folder is where it ran
    look = LOOK.replace("/left-behind", "left-behind").replace(
        "exit 7", 'echo "id=$SPAWNKIT_TASK_ID"; exit 7')
    shell = spawnkit_shell(tmp_path, run.job_dir, "bad", look, env={"SHELL": "/bin/sh"})
    assert shell.returncode == 7, shell.stderr
    assert shell.stdout.splitlines() == [
        "left by bad", str(tmp_path), "data", "foo=bar token=[]", "id=bad",
    ]
    assert "secrets left out" in shell.stderr


def test_shell_refuses_with_one_line(
    run_cli: RunCli, taskfile: WriteTaskfile, tmp_path: Path,
) -> None:
    path = taskfile('[[task]]\nid = "a"\ncommand = "exit 1"\n\n'
                    '[[task]]\nid = "b"\ncommand = "true"\ndepends_on = ["a"]\n')
    run = run_cli("run", str(path), "-q")
    assert run.code == 1
    cases = {
        ("b",): "task 'b' never started (skipped): it left no state to look into",
        ("zz",): "no task 'zz' (it has a, b)",
    }
    for (task,), words in cases.items():
        shell = spawnkit_shell(tmp_path, run.job_dir, task, "exit\n")
        assert shell.returncode == 2 and shell.stderr.count("\n") == 1, shell.stderr
        assert words in shell.stderr
    missing = spawnkit_shell(tmp_path, tmp_path, "a", "exit\n")
    assert missing.returncode == 2 and "no journal.jsonl here" in missing.stderr

    # A backend with no shell (Slurm: its nodes are not this host) says so, and runs nothing.
    journal = run.job_dir / "journal.jsonl"
    journal.write_text(journal.read_text().replace('"spawner": "process"',
                                                   '"spawner": "slurm"'))
    slurm = spawnkit_shell(tmp_path, run.job_dir, "a", "exit\n")
    assert slurm.returncode == 2 and slurm.stderr.count("\n") == 1, slurm.stderr
    assert "the slurm backend has no shell" in slurm.stderr


def test_which_containers_stay() -> None:
    from spawnkit.core.spawner import SpawnerOptions
    from spawnkit.core.task.outcome import ExitResult
    from spawnkit.spawners.container.keep import keeps

    passed, failed = ExitResult(0), ExitResult(3)
    on_failure = SpawnerOptions(keep_failed=True)
    assert not keeps(on_failure, passed, stopped=False)
    assert keeps(on_failure, failed, stopped=False)
    assert keeps(on_failure, ExitResult(None, error="engine lost it"), stopped=False)
    # Stopped by spawnkit (a timeout, --failfast) never passes, even with exit code 0.
    assert keeps(on_failure, passed, stopped=True)
    assert keeps(SpawnerOptions(keep_containers=True), passed, stopped=False)
    assert not keeps(SpawnerOptions(), failed, stopped=True)


def test_gc_kept_takes_kept_containers_of_dead_runners_only() -> None:
    import socket

    from spawnkit.core.owner import runner_owner
    from spawnkit.spawners.container import reap
    from spawnkit.spawners.container.engine import ContainerSummary

    dead = f"{socket.gethostname()}:999999999:1"

    def made(name: str, owner: str, keep: str | None, status: str = "exited") -> ContainerSummary:
        labels = {"spawnkit.managed": "true", "spawnkit.owner": owner}
        if keep is not None:
            labels["spawnkit.keep"] = keep
        return ContainerSummary(name, status, labels, created=0.0)

    listed = [made("failed", dead, "failed"), made("all", dead, "true"),
              made("plain", dead, None), made("running", dead, "failed", "running"),
              made("alive", runner_owner(), "failed")]
    ids = [c.id for c in reap.orphans(listed, grace=0.0)]
    assert ids == ["plain", "running"]
    ids = [c.id for c in reap.orphans(listed, grace=0.0, kept=True)]
    assert ids == ["failed", "all", "plain", "running"]
