"""The Pod a task becomes, and the Secret that carries its secrets: plain v1 manifests.

Only the stable v1 Pod API is used, so any cluster from 1.20 on takes them (kind, k3s, a
cloud's). What the container backends give a task, the Pod gives it too:

- the task's command, the image's ENTRYPOINT replaced unless `entrypoint = "image"`;
- `shareProcessNamespace`: the sandbox's /pause is PID 1, so the command is never PID 1 (a
  PID 1 ignores a TERM it has no handler for) and orphans are reaped, as tini does for a
  container; spawnkit's TERM then reaches every process of the task (see `stop.py`);
- the isolation defaults of `isolation_of` in the container's securityContext;
- `cpus`/`memory` as requests equal to limits;
- a workspace as a hostPath volume at /workspace: a host folder is only the node's own on a
  one-node cluster whose node is this machine (docs/cluster.md says so);
- secrets through `secretKeyRef` to a Secret of the task's own: their values are in no Pod
  spec, label or annotation, and a task gets only those it declares;
- stdout and stderr apart: the v1 log API merges a container's two streams, so the command
  runs with its stderr on a FIFO that a second container copies to its own log
  (STDERR_READER).

Labels carry the job and say the object is spawnkit's; the owner runner ("host:pid:start"),
the job and task ids and the job folder (whose lock tells `spawnkit gc` that a resumed runner
holds the job), which a label value cannot hold, go in annotations.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import stat
from typing import Any

from spawnkit.core.errors import StartError
from spawnkit.core.secrets import secret_env
from spawnkit.core.spawner import JobContext
from spawnkit.core.task.description import KubernetesSettings, Task
from spawnkit.spawners.container.isolation import isolation_of
from spawnkit.spawners.container.spec import (
    LABEL_JOB,
    LABEL_JOB_DIR,
    LABEL_KEEP,
    LABEL_MANAGED,
    LABEL_OWNER,
    LABEL_TASK,
    WORKSPACE_TARGET,
    entrypoint_of,
)

__all__ = [
    "CONTAINER",
    "CWD_CHECK",
    "CWD_MISSING",
    "HOST_NETWORK_VARIABLE",
    "LABEL_JOB",
    "LABEL_JOB_DIR",
    "LABEL_MANAGED",
    "LABEL_OWNER",
    "LABEL_TASK",
    "READER_PID",
    "STDERR_READER",
    "PodPlan",
    "check_mount_sources",
    "label_value",
    "pod_name",
    "pod_plan",
    "user_ids",
]

#: The task's container in its Pod.
CONTAINER = "main"
#: An init container that checks a working folder the image must have: the runtime would
#: make a missing one, and the same task would then mean two things on two backends.
CWD_CHECK = "spawnkit-cwd"
CWD_MISSING = 66
#: "1": Pods use the node's network unless a task sets `network` (a cluster with no pod
#: network, as the one-node CI cluster of .ci/kubernetes.sh).
HOST_NETWORK_VARIABLE = "SPAWNKIT_KUBERNETES_HOST_NETWORK"
#: The container whose output is the task's stderr: the v1 log API serves a container's two
#: streams as one, so the task's command runs with its stderr on a FIFO that this container
#: copies to its own stdout (`cat`), read through the API as a log of its own.
STDERR_READER = "spawnkit-stderr"
#: A folder of the Pod's own (an emptyDir) in both containers: the FIFO, the reader's PID.
SPLIT_DIR = "/.spawnkit"
STDERR_FIFO = f"{SPLIT_DIR}/stderr"
READER_PID = f"{SPLIT_DIR}/reader"
#: Before the command (which it execs: same process, same exit status): its stderr onto the
#: FIFO, made by whichever container comes first. An image with no mkfifo gets no FIFO: the
#: command then runs with its stderr in its stdout, and the reader ends at once.
_WRAP = (f"f={STDERR_FIFO}; mkfifo -m 666 \"$f\" 2>/dev/null; "
         '[ -p "$f" ] && exec "$@" 2>"$f"; exec "$@"')
_READ = (f"f={STDERR_FIFO}; mkfifo -m 666 \"$f\" 2>/dev/null; [ -p \"$f\" ] || exit 0; "
         f'echo $$ > {READER_PID}; exec cat "$f"')
#: The reader's share, when the task's container has requests and limits (the Pod keeps its
#: Guaranteed class): `cat` needs little of either.
_READER_RESOURCES = {"cpu": "50m", "memory": "16Mi"}

_NAME_MAX = 63  # a Pod's name is a hostname when hostNetwork is off: keep to a DNS label


def label_value(text: str) -> str:
    """A label value (63 characters of [A-Za-z0-9._-], alphanumeric at both ends)."""
    value = re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:_NAME_MAX].strip("._-")
    return value or "x"


def pod_name(job_id: str, task_id: str, attempt: int = 1) -> str:
    """`sk-<job>-<task>`, lower case, with a hash of the task id (and of the attempt, for a
    retry) so that two ids that read alike, or two attempts, still get two Pods."""
    key = task_id if attempt == 1 else f"{task_id}\0{attempt}"
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    job = re.sub(r"[^a-z0-9]+", "-", job_id.lower()).strip("-")
    task = re.sub(r"[^a-z0-9]+", "-", task_id.lower()).strip("-")
    room = _NAME_MAX - len("sk---") - len(job) - len(digest)
    task = task[:max(room, 0)].strip("-")
    return "-".join(p for p in ("sk", job, task, digest) if p)


def user_ids(user: str) -> tuple[int, int | None] | None:
    """"UID" or "UID:GID" as numbers; None for a user name (a Pod takes numbers only)."""
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return None
    return int(uid), int(gid) if gid else None


def _verbatim(word: str) -> str:
    """`word` as Kubernetes must be given it to pass it on unchanged: it expands `$(NAME)` in
    a command, its arguments and variable values, and reads `$$` as `$`."""
    return word.replace("$", "$$")


def _quantity_cpu(cpus: float) -> str:
    return f"{max(math.ceil(cpus * 1000), 1)}m"


def _tolerations(settings: KubernetesSettings) -> list[dict[str, Any]]:
    out = []
    for pairs in settings.tolerations:
        item: dict[str, Any] = dict(pairs)
        if "tolerationSeconds" in item:
            item["tolerationSeconds"] = int(item["tolerationSeconds"])
        out.append(item)
    return out


class PodPlan:
    """A task's Pod and Secret manifests, and what was applied (for the task's record)."""

    def __init__(self, name: str, pod: dict[str, Any], secret: dict[str, Any] | None,
                 applied: dict[str, Any], split: bool) -> None:
        self.name = name
        self.pod = pod
        self.secret = secret
        self.applied = applied
        #: The task's stderr is apart, the log of the STDERR_READER container.
        self.split = split


def _host_path_type(path: str) -> str:
    """The hostPath type of what `path` is on this host ("" for what has none: no check)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return ""
    for test, kind in ((stat.S_ISDIR, "Directory"), (stat.S_ISREG, "File"),
                       (stat.S_ISSOCK, "Socket"), (stat.S_ISCHR, "CharDevice"),
                       (stat.S_ISBLK, "BlockDevice")):
        if test(mode):
            return kind
    return ""


def check_mount_sources(task: Task, spawner: str) -> None:
    """StartError for a mount whose source is not on this host, which spawnkit takes for the
    node (a hostPath the runtime would make, empty, where the other backends refuse)."""
    for mount in task.limits.mounts:
        if not os.path.exists(mount.source):
            raise StartError(f"mount source '{mount.source}' does not exist", spawner=spawner)


def pod_plan(task: Task, job: JobContext, image: str, *, grace: float,
             keep: str | None = None, attempt: int = 1, split: bool = True) -> PodPlan:
    """The Pod of `task` in `job`, on `image`. `keep`: the value of its keep label (the
    container backends' KEEP_ALL or KEEP_FAILED), if it may be kept. `split`: its stderr
    apart (see STDERR_READER), unless the image's own entrypoint runs (`entrypoint =
    "image"`: what it is, and whether it passes its arguments to a shell, is not known)."""
    name = pod_name(job.job_id, task.id, attempt)
    labels = {LABEL_MANAGED: "true", LABEL_JOB: label_value(job.job_id),
              LABEL_TASK: label_value(task.id)}
    if keep is not None:
        labels[LABEL_KEEP] = keep
    annotations = {LABEL_OWNER: job.owner, LABEL_TASK: task.id, LABEL_JOB: job.job_id,
                   LABEL_JOB_DIR: str(job.job_dir)}
    limits = task.limits
    settings = task.kubernetes or KubernetesSettings()
    isolation = isolation_of(limits)

    env: list[dict[str, Any]] = [{"name": k, "value": _verbatim(v)} for k, v in task.env]
    secret: dict[str, Any] | None = None
    values = secret_env(task)
    if values:
        # One key per secret, named by position: a variable's name may not be a valid key.
        secret = {
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "labels": labels, "annotations": annotations},
            "stringData": {f"s{i}": value for i, value in enumerate(values.values())},
        }
        env += [{"name": var, "valueFrom": {"secretKeyRef": {"name": name, "key": f"s{i}"}}}
                for i, var in enumerate(values)]

    security: dict[str, Any] = {}
    if limits.privileged:
        security["privileged"] = True
    elif isolation.security_opt:
        security["allowPrivilegeEscalation"] = False
    caps: dict[str, list[str]] = {}
    if isolation.cap_add:
        caps["add"] = list(isolation.cap_add)
    if isolation.cap_drop:
        caps["drop"] = list(isolation.cap_drop)
    if caps:
        security["capabilities"] = caps
    if limits.read_only:
        security["readOnlyRootFilesystem"] = True
    if limits.user is not None:
        ids = user_ids(limits.user)
        if ids is not None:  # a user name is said unenforced (KubernetesSpawner.unenforced)
            security["runAsUser"] = ids[0]
            if ids[1] is not None:
                security["runAsGroup"] = ids[1]

    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for i, mount in enumerate(limits.mounts):
        # What it is on this host, which spawnkit takes for the node (docs/cluster.md): the
        # kubelet checks it, and makes nothing that is not there.
        volumes.append({"name": f"mount-{i}", "hostPath": {
            "path": mount.source, "type": _host_path_type(mount.source)}})
        mounts.append({"name": f"mount-{i}", "mountPath": mount.target,
                       "readOnly": mount.read_only})
    if limits.workspace:
        volumes.append({"name": "workspace",
                        "hostPath": {"path": limits.workspace, "type": "Directory"}})
        mounts.append({"name": "workspace", "mountPath": WORKSPACE_TARGET,
                       "readOnly": limits.workspace_read_only})
    if limits.read_only:
        # A read-only root still needs somewhere to write scratch files.
        volumes.append({"name": "tmp", "emptyDir": {}})
        mounts.append({"name": "tmp", "mountPath": "/tmp"})

    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": settings.image_pull_policy or "IfNotPresent",
        "env": env,
        "securityContext": security,
        "volumeMounts": mounts,
    }
    entrypoint = entrypoint_of(task)
    argv = [_verbatim(word) for word in task.argv]
    split = split and entrypoint is not None
    if entrypoint is None:
        container["args"] = argv
    elif split:
        container["command"] = ["sh", "-c", _verbatim(_WRAP), "spawnkit",
                                *map(_verbatim, entrypoint), *argv]
    else:
        container["command"] = [*map(_verbatim, entrypoint), *argv]
    workdir = task.workdir(WORKSPACE_TARGET)
    if workdir is not None:
        container["workingDir"] = workdir
    resources: dict[str, str] = {}
    if limits.cpus is not None:
        resources["cpu"] = _quantity_cpu(limits.cpus)
    if limits.memory is not None:
        resources["memory"] = str(limits.memory)
    if resources:
        container["resources"] = {"requests": resources, "limits": resources}

    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "shareProcessNamespace": True,
        # A Pod gets no Service's variables and no API token unless the task names an account.
        "enableServiceLinks": False,
        "automountServiceAccountToken": settings.service_account is not None,
        "terminationGracePeriodSeconds": max(math.ceil(grace), 1),
        "containers": [container],
        "volumes": volumes,
    }
    if split:
        volumes.append({"name": "spawnkit", "emptyDir": {}})
        mounts.append({"name": "spawnkit", "mountPath": SPLIT_DIR})
        spec["containers"].append(_reader(container, security))
    network = limits.network
    if network == "host" or (network is None and os.environ.get(HOST_NETWORK_VARIABLE) == "1"):
        spec["hostNetwork"] = True
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    if settings.tolerations:
        spec["tolerations"] = _tolerations(settings)
    if task.host_workdir() is None and workdir is not None:
        spec["initContainers"] = [{
            "name": CWD_CHECK, "image": image, "imagePullPolicy": container["imagePullPolicy"],
            "command": ["sh", "-c", f'cd "$1" 2>/dev/null || exit {CWD_MISSING}', "sh",
                        workdir],
            "securityContext": security,
            **({"resources": container["resources"]} if resources else {}),
        }]
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "labels": labels, "annotations": {
               **annotations, "kubectl.kubernetes.io/default-container": CONTAINER}},
           "spec": spec}
    applied: dict[str, Any] = {
        "cpus": limits.cpus, "memory": limits.memory, "user": limits.user,
        "read_only": bool(limits.read_only), "privileged": limits.privileged,
        "no_new_privileges": bool(isolation.security_opt) and not limits.privileged,
        "cap_add": list(isolation.cap_add), "cap_drop": list(isolation.cap_drop),
        "host_network": bool(spec.get("hostNetwork")),
        "image_pull_policy": container["imagePullPolicy"],
        "entrypoint": list(entrypoint) if entrypoint is not None else None,
        "stderr_apart": split,
    }
    applied = {k: v for k, v in applied.items() if v is not None}
    return PodPlan(name, pod, secret, applied, split)


def _reader(main: dict[str, Any], security: dict[str, Any]) -> dict[str, Any]:
    """The STDERR_READER container: the task's image (it has `sh` if the wrapper runs), its
    user (the FIFO is the user's), no privilege at all."""
    reader: dict[str, Any] = {
        "name": STDERR_READER, "image": main["image"],
        "imagePullPolicy": main["imagePullPolicy"], "command": ["sh", "-c", _verbatim(_READ)],
        "securityContext": {
            **{k: v for k, v in security.items() if k in ("runAsUser", "runAsGroup")},
            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "spawnkit", "mountPath": SPLIT_DIR}],
    }
    if "resources" in main:
        reader["resources"] = {"requests": _READER_RESOURCES, "limits": _READER_RESOURCES}
    return reader
