"""The immutable description of one task, as a task file or the API gives it."""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field

from spawnkit.core.task.service import Service

__all__ = [
    "ImageBuild",
    "KubernetesSettings",
    "Limits",
    "Mount",
    "RetryPolicy",
    "SlurmSettings",
    "Task",
]


@dataclass(frozen=True)
class Mount:
    """A host folder mounted into a container task."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Limits:
    """Resource and isolation settings. None means: the backend's default."""

    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None
    network: str | None = None
    user: str | None = None
    read_only: bool | None = None
    privileged: bool = False
    no_new_privileges: bool | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] | None = None
    mounts: tuple[Mount, ...] = ()
    workspace: str | None = None
    workspace_read_only: bool = False

    def as_dict(self) -> dict[str, object]:
        """Every setting, mounts as dicts (for the journal)."""
        out: dict[str, object] = {n: getattr(self, n) for n in self.__dataclass_fields__}
        out["mounts"] = [m.__dict__ for m in self.mounts]
        return out

    def given(self) -> dict[str, object]:
        """The settings that differ from the defaults, for results and warnings."""
        out: dict[str, object] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value not in (None, False, ()):
                out[name] = [m.__dict__ for m in value] if name == "mounts" else value
        return out


@dataclass(frozen=True)
class SlurmSettings:
    """Where a task's Slurm job goes (`slurm = { ... }`): the slurm backend reads it, the
    others ignore it, as the process backend ignores `image`."""

    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    #: Further sbatch options, as written (`["--gres=gpu:1"]`).
    extra: tuple[str, ...] = ()
    #: The nodes' engine for a task with an `image` ("docker" or "podman"); None runs the
    #: command on the node itself, the image ignored.
    container: str | None = None


@dataclass(frozen=True)
class ImageBuild:
    """An image the task file builds (`[image.NAME]`): a container backend builds it on its
    engine before the first task that needs it, and again only when its files change."""

    name: str
    #: Absolute paths: the Containerfile, and the folder sent to the engine as the context.
    containerfile: str
    context: str


@dataclass(frozen=True)
class KubernetesSettings:
    """Where a task's Pod goes (`kubernetes = { ... }`): the kubernetes backend reads it, the
    others ignore it, as they do `slurm`."""

    #: Node labels the Pod's node must carry (the Pod's nodeSelector), as (name, value) pairs.
    node_selector: tuple[tuple[str, str], ...] = ()
    #: The Pod's tolerations, each as the (key, value) pairs of one table of the task file
    #: (`{ key = "ci", operator = "Exists", effect = "NoSchedule" }`).
    tolerations: tuple[tuple[tuple[str, str], ...], ...] = ()
    #: The Pod's ServiceAccount; its token is mounted only when one is named.
    service_account: str | None = None
    #: "IfNotPresent" unless the task says "Always" or "Never".
    image_pull_policy: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """When a task that did not pass runs again (`retry = { ... }`): at most `max` more
    attempts, when its result is one of `when` or it exited with one of `exit_codes`. Meant
    for what the infrastructure broke (an error, a timeout, a kill), not to turn a failing
    test green in silence: a task that passes on a later attempt is reported as flaky."""

    max: int = 1
    when: tuple[str, ...] = ("error", "timed_out")
    exit_codes: tuple[int, ...] = ()

    def wants(self, result: str, exit_code: int | None, attempt: int) -> bool:
        """Whether attempt `attempt` (1 for the first), which ended so, is tried again."""
        if attempt > self.max:
            return False
        return result in self.when or (exit_code is not None and exit_code in self.exit_codes)


@dataclass(frozen=True)
class Task:
    """One task: what to run and where. Immutable; identified by `id`."""

    id: str
    command: tuple[str, ...] | str
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None
    timeout: float | None = None
    depends_on: tuple[str, ...] = ()
    image: str | None = None
    teardown: bool = False
    secrets: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    #: What runs before `command` in a container: None, nothing (the image's entrypoint is
    #: replaced, so the command runs as given); "image", the image's own; or these words.
    entrypoint: tuple[str, ...] | str | None = None
    slurm: SlurmSettings | None = None
    kubernetes: KubernetesSettings | None = None
    #: JUnit XML files the task writes (paths or globs, relative to its working folder):
    #: their test cases go into results.xml.
    junit: tuple[str, ...] = ()
    #: Files to keep in tasks/<id>/artifacts/ (paths or globs, as for junit), and when:
    #: "always", "on_failure" or "on_success".
    artifacts: tuple[str, ...] = ()
    artifacts_when: str = "always"
    #: An expansion of a matrix task (`unit[python=3.11]`): the matrix task's id (`unit`) and
    #: this expansion's values, axis by axis as written.
    matrix_of: str | None = None
    matrix: tuple[tuple[str, str], ...] = ()
    #: How to build `image` when the task file builds it (`[image.NAME]`); None: pulled.
    build: ImageBuild | None = None
    #: When it runs again after not passing; None: never.
    retry: RetryPolicy | None = None
    #: The services it uses (`[[service]]`), started before it runs (core.services).
    services: tuple[Service, ...] = ()

    @classmethod
    def make(
        cls,
        id: str,
        command: list[str] | tuple[str, ...] | str,
        *,
        env: Mapping[str, str] | None = None,
        **kwargs: object,
    ) -> Task:
        """Build a task from friendlier types (a list command, an env dict)."""
        cmd = command if isinstance(command, str) else tuple(command)
        pairs = tuple(sorted((env or {}).items()))
        return cls(id=id, command=cmd, env=pairs, **kwargs)  # type: ignore[arg-type]

    @property
    def identifier(self) -> str:
        """The original's name for the task's id."""
        return self.id

    @property
    def argv(self) -> list[str]:
        """The command as an argv list; a shell string runs through `sh -c`."""
        if isinstance(self.command, str):
            return ["sh", "-c", self.command]
        return list(self.command)

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.env)

    def container_settings(self) -> list[str]:
        """The container settings it sets (`Limits.given()`, and an entrypoint other than
        the command as given): what a backend without containers names as not enforced."""
        return [*self.limits.given(),
                *(["entrypoint"] if self.entrypoint not in (None, ()) else [])]

    def workdir(self, workspace_at: str | None = None) -> str | None:
        """The working folder. With a workspace it is the workspace, or `cwd` inside it when
        `cwd` is relative; `workspace_at` is where the workspace is seen (a container's mount
        point; the host folder itself when None). Without one, `cwd` as given (None: the
        backend's default)."""
        workspace = self.limits.workspace
        if workspace is None:
            return self.cwd
        base = workspace if workspace_at is None else workspace_at
        if self.cwd is None:
            return base
        return self.cwd if posixpath.isabs(self.cwd) else posixpath.join(base, self.cwd)

    def host_workdir(self) -> str | None:
        """The working folder as this host sees it, when it is in the workspace: what every
        backend checks the same way before it starts the task."""
        return self.workdir() if self.limits.workspace is not None else None

    @property
    def workdir_words(self) -> str:
        """The working folder as the task file says it, for messages."""
        return self.cwd if self.cwd is not None else str(self.limits.workspace)

    def display_command(self) -> str:
        return self.command if isinstance(self.command, str) else shlex.join(self.command)
