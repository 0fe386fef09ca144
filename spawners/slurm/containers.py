"""Container tasks on Slurm: a task with an image runs in its Slurm job under the node's
engine (`slurm.container`, or `--slurm-container`: docker or podman), with the isolation
defaults of the container backends (spawners.container.isolation, through the same
ContainerSpec).

A plain `docker run` in a job outlives `scancel`: the container lives under the engine's
daemon, outside the job's cgroup. So the job runs a wrapper (WRAPPER) between the output
helper and the engine's CLI:
  TERM (spawnkit's polite stop, or a plain scancel): passed on to the container's command,
        and the wrapper waits for it to end;
  KILL of the wrapper (spawnkit's "kill now", Slurm's KillWait, an OOM kill): the container's
        stdin is a FIFO whose only writer is the wrapper; when it dies, a watcher inside the
        container sees the end of its input and kills the command, and --rm removes the
        container. The image needs /bin/sh for that (not with `entrypoint = "image"`).
The node program then removes the container by name whatever happened (idempotent).
Environment variables go by name (`-e NAME`): their values, secrets too, come from the job's
environment, never a command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from spawnkit.core.spawner import JobContext
from spawnkit.core.task.description import Task

__all__ = ["ENGINES", "OOM_MARKER", "ContainerPlan", "engine_of", "plan", "problem"]

ENGINES = ("docker", "podman")
#: Written in the task's folder by the wrapper when the engine reports an OOM kill.
OOM_MARKER = "container-oom"

#: $1 engine, $2 container name, $3 the task's folder, $4 "init" or "", then the engine's
#: `run` arguments. The init (PID 1: forwards signals to the command's whole process group,
#: reaps orphans) is the node's: docker's own; for podman a tini where the node has one
#: (podman's catatonit signals the child alone), else catatonit, else none.
WRAPPER = r"""
engine=$1; name=$2; out=$3; want_init=$4; shift 4
remove() {
    if [ "$engine" = podman ]; then podman rm -f -t 0 "$name"; else docker rm -f "$name"; fi
}
polite() { "$engine" kill --signal "$1" "$name" >/dev/null 2>&1; }
trap 'polite TERM' TERM
trap 'polite INT' INT
trap 'polite HUP' HUP
init=
if [ -n "$want_init" ]; then
    init=--init
    if [ "$engine" = podman ]; then
        init=
        for path in /usr/bin/tini-static /usr/bin/docker-init; do
            if [ -x "$path" ]; then init="--init --init-path=$path"; break; fi
        done
        if [ -z "$init" ] && [ -x /usr/libexec/podman/catatonit ]; then init=--init; fi
    fi
fi
fifo=${TMPDIR:-/tmp}/spawnkit-stdin-$$
rm -f "$fifo"
mkfifo -m 600 "$fifo" || exit 125
began=$(date +%s)
# shellcheck disable=SC2086 # $init is words
"$engine" run -i --rm --name "$name" $init "$@" <"$fifo" &
run=$!
exec 3>"$fifo"
rm -f "$fifo"
while :; do
    wait "$run"
    rc=$?
    kill -0 "$run" 2>/dev/null || break
done
if [ "$rc" = 137 ] && "$engine" events --since "$began" --until "$(date +%s.%N)" \
        --filter "container=$name" --filter event=oom --format x 2>/dev/null | grep -q x; then
    : >"$out/container-oom"
fi
exec 3>&-
remove >/dev/null 2>&1
exit "$rc"
"""

#: Inside the container: the command with stdin /dev/null, and a watcher holding the FIFO
#: that kills every process but PID 1 (the init) when the wrapper is gone.
WATCHER = ('exec 3<&0 </dev/null; { cat <&3 >/dev/null; kill -9 -1; } 2>/dev/null & '
           'exec 3<&-; exec "$@"')


@dataclass(frozen=True)
class ContainerPlan:
    argv: tuple[str, ...]
    cleanup: tuple[str, ...]
    applied: dict[str, object]


def engine_of(task: Task, default_image: str | None = None) -> str | None:
    """The node engine a task runs under: only a task with an image (its own, or --image)
    and an engine named; otherwise it runs on the node itself, as on the process backend."""
    engine = task.slurm.container if task.slurm is not None else None
    return engine if engine is not None and (task.image or default_image) else None


def problem(task: Task) -> str | None:
    engine = task.slurm.container if task.slurm is not None else None
    if engine is not None and engine not in ENGINES:
        return f"slurm container must be one of {', '.join(ENGINES)}, not {engine!r}"
    return None


def plan(task: Task, job: JobContext, image: str, engine: str, out_dir: Path) -> ContainerPlan:
    """The command the Slurm job runs for a container task, and how to remove it after."""
    # Imported here: the container backends' modules (and their SDKs) only for image tasks.
    from spawnkit.spawners.container.isolation import applied_settings
    from spawnkit.spawners.container.spec import container_spec

    spec = container_spec(task, job, image)
    name = str(spec.name)
    run: list[str] = []
    for key, value in spec.labels.items():
        run += ["--label", f"{key}={value}"]
    for key in spec.env:
        run += ["-e", key]  # by name: the value comes from the job's environment
    if spec.init:
        run += ["-e", "TINI_KILL_PROCESS_GROUP=1"]
    if spec.workdir:
        run += ["-w", spec.workdir]
    if spec.cpus is not None:
        run += [f"--cpus={spec.cpus:g}"]
    if spec.memory is not None:
        run += [f"--memory={spec.memory}", f"--memory-swap={spec.memory}"]
    if spec.pids is not None:
        run += [f"--pids-limit={spec.pids}"]
    if spec.network:
        run += [f"--network={spec.network}"]
    if spec.user:
        run += [f"--user={spec.user}"]
    if spec.read_only:
        run += ["--read-only"]
    if spec.privileged:
        run += ["--privileged"]
    run += [f"--cap-add={c}" for c in spec.cap_add]
    run += [f"--cap-drop={c}" for c in spec.cap_drop]
    run += [f"--security-opt={o}" for o in spec.security_opt]
    for mount in spec.mounts:
        if mount.is_tmpfs:
            run += ["--tmpfs", mount.target]
        else:
            suffix = ":ro" if mount.read_only else ""
            run += ["-v", f"{mount.source}:{mount.target}{suffix}"]
    if spec.entrypoint is None:
        # The image's own entrypoint: no watcher can go in front of it.
        tail = [spec.image, *spec.command]
    else:
        run += ["--entrypoint", "sh"]
        tail = [spec.image, "-c", WATCHER, "sh", *spec.entrypoint, *spec.command]
    # podman's default stop timeout (10 s) outlasts Slurm's KillWait: none.
    force = ("-f", "-t", "0") if engine == "podman" else ("-f",)
    cleanup = (engine, "rm", *force, name)
    return ContainerPlan(
        argv=("sh", "-c", WRAPPER, "sh", engine, name, str(out_dir),
              "init" if spec.init else "", *run, *tail),
        cleanup=cleanup,
        applied={"container": {"engine": engine, "name": name, "image": spec.image,
                               **applied_settings(spec)}},
    )
