"""`spawnkit shell` on Docker and Podman: a new container from a kept container's file system.

The kept container is committed (through the SDK) to a temporary image, and a container of that
image is made as the task's own was (`container_spec`: its mounts and workspace, its working
folder, user, network, limits and isolation defaults), but running `sh`, with the image's
entrypoint replaced and stdin kept open. The interactive part is the engine's own command line
(`docker start --attach --interactive ID`): a terminal through the SDKs' attach protocol (raw
mode, window resizes, detach keys, stdin half-closes) would be that command line written again.
The container and the image are removed once the shell has ended.

The task's secrets are left out, as on the process backend: blanked in the image (`ENV NAME=`:
no image's config holds a value) and unset before the shell starts. The run's labels are
blanked in the image too; the shell's container carries labels of its own, owned by this
`spawnkit shell` process, so that `spawnkit gc` removes it should that process be killed.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import shlex
import shutil
import sys

from spawnkit.core.errors import BackendError, UsageError
from spawnkit.core.shell import ShellSession
from spawnkit.core.spawner import JobContext
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.container.calls import EngineCalls
from spawnkit.spawners.container.engine import ContainerSpec, Engine
from spawnkit.spawners.container.faults import engine_message
from spawnkit.spawners.container.spec import (
    LABEL_JOB,
    LABEL_KEEP,
    LABEL_MANAGED,
    LABEL_OWNER,
    LABEL_TASK,
    container_spec,
)

__all__ = ["LABEL_SHELL", "SHELL_REPOSITORY", "open_shell"]

LOG = logging.getLogger(__name__)

#: Where the temporary images go: `spawnkit-shell:<container>-<random>`.
SHELL_REPOSITORY = "spawnkit-shell"
#: On the shell's container, to tell it from a task's.
LABEL_SHELL = "spawnkit.shell"

#: The labels of a run, blanked in the image: a container made of it is nobody's task, and
#: not kept (a label left there would pass on to it).
_RUN_LABELS = (LABEL_MANAGED, LABEL_JOB, LABEL_TASK, LABEL_OWNER, LABEL_KEEP)


async def open_shell(spawner: str, engine: Engine, call: EngineCalls, runtime_task: RuntimeTask,
                     job: JobContext) -> ShellSession:
    """The kept container of `runtime_task`, committed, and a shell's container made of it."""
    task = runtime_task.task
    container_id = runtime_task.spawner_handle or ""
    short = container_id[:12]
    argv = engine.cli_argv()
    if shutil.which(argv[0]) is None:
        raise UsageError(f"spawnkit shell runs the '{argv[0]}' command line for the terminal, "
                         "and it is not on PATH")
    state = await call(engine.inspect, container_id) if container_id else None
    if state is None:
        raise UsageError(
            f"task '{task.id}': its container {short or '(none)'} is not on the {spawner} "
            "engine: it was not kept (run with --keep-failed or --keep-containers) or is "
            "removed already")
    if state.running:
        raise UsageError(f"task '{task.id}': its container {short} still runs: look inside "
                         "once the task has ended")
    tag = f"{short}-{secrets.token_hex(4)}"
    changes = [f"ENV {name}=" for name in task.secrets]
    changes += [f'LABEL {label}=""' for label in _RUN_LABELS]
    try:
        image = await call(engine.commit, container_id, SHELL_REPOSITORY, tag, changes,
                           idempotent=False)
    except Exception as exc:
        raise call.error(BackendError, f"cannot commit container {short}", exc,
                         container_id) from exc
    try:
        shell_id = await call(engine.create, _shell_spec(runtime_task, job, image),
                              idempotent=False)
    except Exception as exc:
        await _remove_image(engine, call, image)
        raise call.error(BackendError, f"cannot make a shell's container of {short}",
                         exc) from exc

    async def cleanup() -> None:
        await call.remove_or_leave(shell_id)
        await _remove_image(engine, call, image)

    return ShellSession(
        argv=[*argv, "start", "--attach", "--interactive", shell_id],
        banner=f"a shell in a copy of container {short} (task '{task.id}'), secrets left out; "
               "'exit' leaves it and removes the copy",
        cleanup=cleanup,
    )


def _shell_spec(runtime_task: RuntimeTask, job: JobContext, image: str) -> ContainerSpec:
    """The task's container spec on `image`, its secrets left out, running `sh`."""
    task = dataclasses.replace(runtime_task.task, secrets=())
    spec = container_spec(task, job, image)
    command = ["sh"]
    if runtime_task.task.secrets:
        names = " ".join(shlex.quote(n) for n in runtime_task.task.secrets)
        command = ["sh", "-c", f"unset {names}; exec sh"]
    return dataclasses.replace(
        spec,
        name=None,  # the engine names it: two shells of one task may be open at once
        command=command,
        entrypoint=(),
        labels={**spec.labels, LABEL_SHELL: "true"},
        interactive=True,
        # A terminal only when there is one: piped commands (`echo ls | spawnkit shell`) go
        # through as they are, and the engine's command line refuses a TTY on a pipe.
        tty=sys.stdin.isatty(),
    )


async def _remove_image(engine: Engine, call: EngineCalls, image: str) -> None:
    try:
        await call(engine.remove_image, image)
    except Exception as exc:
        LOG.warning("%s: cannot remove the shell's image %s (remove it with '%s rmi %s'): %s",
                    engine.name, image[:19], engine.name, image, engine_message(exc))
