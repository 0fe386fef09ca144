"""Jobs of container tasks for the fault tests, and what they may leave behind."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from tests.conftest import child_env
from tests.helpers import pid_alive

__all__ = [
    "ContainerJob",
    "container_job",
    "job_processes",
    "read_results",
    "start_cli",
    "started_handles",
    "wait_until",
]

TOKEN_VARIABLE = "SPAWNKIT_FAULT_TOKEN"

#: What a task does once its marker is written. Each is PID 1 of its container.
SCRIPTS = {
    # PID 1 ignores TERM anyway; said outright: only the grace period's KILL ends it.
    "ignore_term": "trap '' TERM; touch /workspace/started-{id}; sleep 1000",
    # Ends on TERM at once (a `wait` is interrupted by a trapped signal, a `sleep` is not).
    "exit_on_term": "trap 'exit 143' TERM; touch /workspace/started-{id}; sleep 1000 & wait",
    # Passes once the test writes /workspace/go.
    "wait_for_go": "trap 'exit 143' TERM; touch /workspace/started-{id}; "
    "while [ ! -e /workspace/go ]; do sleep 0.05; done",
}


@dataclass
class ContainerJob:
    """A task file of `n` container tasks t0.. (each writes a marker once it runs) and one
    task `queued` that waits for t0, so never starts while t0 runs."""

    path: Path
    workspace: Path
    token: str  # in every task's environment: how its processes are found on the host
    n: int

    def task_ids(self) -> list[str]:
        return [f"t{i}" for i in range(self.n)]

    def markers(self) -> list[Path]:
        return [self.workspace / f"started-{tid}" for tid in self.task_ids()]

    def go(self) -> None:
        (self.workspace / "go").touch()


def container_job(tmp_path: Path, n: int, script: str, image: str) -> ContainerJob:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    token = secrets.token_hex(8)
    text = (
        "[defaults]\n"
        f"image = {json.dumps(image)}\n"
        f"workspace = {json.dumps(str(workspace))}\n"
        'network = "none"\n'
        f'env = {{ {TOKEN_VARIABLE} = "{token}" }}\n'
    )
    for i in range(n):
        command = json.dumps(["sh", "-c", SCRIPTS[script].format(id=f"t{i}")])
        text += f'\n[[task]]\nid = "t{i}"\ncommand = {command}\n'
    text += '\n[[task]]\nid = "queued"\ncommand = "true"\ndepends_on = ["t0"]\n'
    path = tmp_path / "tasks.toml"
    path.write_text(text)
    return ContainerJob(path, workspace, token, n)


def start_cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, stderr: TextIO | None = None,
    command: str = "run",
) -> subprocess.Popen[str]:
    """`spawnkit COMMAND ARGS` (`run` unless said) in a child process (killable alone),
    results under tmp_path."""
    return subprocess.Popen(
        [sys.executable, "-m", "spawnkit.cli", command, *args],
        env=child_env(tmp_path, env), cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=stderr or subprocess.PIPE, text=True,
    )


def wait_until(condition: Callable[[], Any], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {within:g} s"
        time.sleep(0.05)


def wait_running(job: ContainerJob, proc: subprocess.Popen[str], within: float = 60) -> None:
    """Every task's container runs its command (its marker is there), and the runner knows
    it (the journal says started: the engine's answer to the start is in)."""
    journal = job.workspace.parent / "results" / "latest" / "journal.jsonl"

    def all_there() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"the runner ended first: {proc.communicate()}")
        if not all(m.exists() for m in job.markers()):
            return False
        return journal.exists() and len(started_handles(journal.parent)) == job.n

    wait_until(all_there, within, "every task running")


def job_dir_of(tmp_path: Path) -> Path:
    return (tmp_path / "results" / "latest").resolve()


def started_handles(job_dir: Path) -> dict[str, str]:
    """task id -> container ID, from the journal."""
    handles = {}
    for line in (job_dir / "journal.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("event") == "status" and record.get("status") == "started":
            handles[record["task"]] = record["handle"]
    return handles


def read_results(job_dir: Path) -> dict[str, dict[str, Any]]:
    data = json.loads((job_dir / "results.json").read_text())
    return {t["id"]: t for t in data["tasks"]}


def job_processes(job: ContainerJob, handles: list[str]) -> list[str]:
    """Live processes of the job on this host: a task's own (the job's token is in their
    environment) and what holds a container (a shim, a conmon: its ID on the command line)."""
    token = f"{TOKEN_VARIABLE}={job.token}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ours = token in environ or any(h in cmdline for h in handles)
        if ours and pid_alive(int(entry.name)):
            found.append(f"{entry.name}: {cmdline[:120]}")
    return found
