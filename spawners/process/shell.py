"""`spawnkit shell` on the process backend: a shell in the task's working folder, with its
environment and without any secret.

A process task leaves its state where it ran, on this host: there is nothing to keep, so any
task that started can be looked into, ended or not. The environment is the one the task got,
taken afresh: this environment less every secret of the job (and any variable holding such a
value, as the task supervisor does), plus the task's own `env` (`SPAWNKIT_TASK_ID` among
them). The shell is `$SHELL`, else `sh`.
"""

from __future__ import annotations

import os

from spawnkit.core.errors import UsageError
from spawnkit.core.shell import ShellSession
from spawnkit.core.spawner import JobContext
from spawnkit.core.task.runtime import RuntimeTask

__all__ = ["CWD_KEY", "process_shell"]

#: The key of the process backend's spawning result that names the folder a task ran in.
CWD_KEY = "cwd"


def process_shell(runtime_task: RuntimeTask, job: JobContext) -> ShellSession:
    task = runtime_task.task
    recorded = (runtime_task.spawning_result or {}).get(CWD_KEY)
    folder = recorded if isinstance(recorded, str) else task.workdir()
    if folder is None:
        raise UsageError(f"task '{task.id}' ran in its runner's folder, which job "
                         f"{job.job_id} does not record")
    if not os.path.isdir(folder):
        raise UsageError(f"task '{task.id}': its working folder {folder} is gone")
    hidden = job.secret_names | set(task.secrets)
    values = {os.environ[name] for name in hidden if os.environ.get(name)}
    env = {k: v for k, v in os.environ.items() if k not in hidden and v not in values}
    env.update(task.environment)
    return ShellSession(
        argv=[os.environ.get("SHELL") or "sh"],
        env=env,
        cwd=folder,
        banner=f"a shell in the working folder of task '{task.id}' ({folder}), with its "
               "environment, secrets left out; 'exit' leaves it",
    )
