"""A container engine as spawnkit uses it, whatever its SDK.

`Engine` is the small set of blocking calls the container backends need; `DockerEngine` and
`PodmanEngine` implement it on their SDKs. `ContainerSpec` says what to create in neutral terms,
so each engine maps it to its own SDK's arguments, which differ. Which errors are worth another
try, and how often, is `faults`' business.
"""

from __future__ import annotations

import abc
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from spawnkit.core.errors import EngineUnavailable
from spawnkit.spawners.container.faults import RetryPolicy, engine_message

__all__ = [
    "ALIVE_STATES",
    "ContainerSpec",
    "ContainerState",
    "ContainerSummary",
    "Engine",
    "EngineEvents",
    "ImageInfo",
    "MountSpec",
    "epoch_seconds",
]

T = TypeVar("T")

#: Engine words for a container whose process may still run. Docker and Podman share most;
#: anything else (exited, dead, stopped, removing, or absent) has ended.
ALIVE_STATES = frozenset(
    {"created", "configured", "initialized", "running", "paused", "restarting", "stopping"}
)


@dataclass(frozen=True)
class MountSpec:
    """A bind mount of a host folder, or a tmpfs (`source` None)."""

    target: str
    source: str | None = None
    read_only: bool = False

    @property
    def is_tmpfs(self) -> bool:
        return self.source is None


@dataclass(frozen=True)
class ContainerSpec:
    """One container to create, in neutral terms."""

    image: str
    command: list[str]
    name: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    cpus: float | None = None
    memory: int | None = None  # bytes; swap is capped at the same figure
    pids: int | None = None
    network: str | None = None
    user: str | None = None
    read_only: bool = False
    privileged: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    mounts: tuple[MountSpec, ...] = ()
    security_opt: tuple[str, ...] = ()  # e.g. "no-new-privileges"
    #: An init as PID 1 that forwards signals to the whole process group and reaps orphans.
    init: bool = True
    #: What runs before `command`: () replaces the image's entrypoint (the command runs as
    #: given), None keeps it.
    entrypoint: tuple[str, ...] | None = ()
    #: Its stdin kept open for an attach (`spawnkit shell`), and a terminal on it (`tty`).
    interactive: bool = False
    tty: bool = False
    #: Names it answers to on `network`, when that is a network of its own (a job's, which
    #: its services join: `user_network`).
    aliases: tuple[str, ...] = ()
    #: Host names it finds in its /etc/hosts, and their addresses.
    extra_hosts: dict[str, str] = field(default_factory=dict)

    @property
    def user_network(self) -> str | None:
        """`network` when it names a network made for it, not one of the engine's modes."""
        return None if self.network in (None, "none", "bridge", "host") else self.network


@dataclass(frozen=True)
class ContainerState:
    """What an engine's inspect says of a container, in neutral terms."""

    id: str
    status: str
    exit_code: int | None
    oom_killed: bool
    error: str | None
    labels: dict[str, str]
    memory_limit: int | None = None
    #: Its working folder ("" when the image sets none: the root).
    workdir: str = ""
    #: Epoch seconds it ended (0.0 while it runs, or when the engine does not say).
    finished_at: float = 0.0

    @property
    def running(self) -> bool:
        return self.status in ALIVE_STATES

    @property
    def being_removed(self) -> bool:
        """A removal is under way (`docker rm -f` from outside, before any of ours): the
        engine says "removing" until it is gone, "dead" if that failed half-way."""
        return self.status in ("removing", "dead")

    @classmethod
    def from_inspect(cls, attrs: dict[str, Any]) -> ContainerState:
        """From an inspect answer: Docker's, or Podman's (the same shape for these fields)."""
        state = attrs.get("State") or {}
        config = attrs.get("Config") or {}
        host = attrs.get("HostConfig") or {}
        return cls(
            id=str(attrs["Id"]),
            status=str(state.get("Status", "")),
            exit_code=state.get("ExitCode"),
            oom_killed=bool(state.get("OOMKilled")),
            error=state.get("Error") or None,
            labels=dict(config.get("Labels") or {}),
            memory_limit=host.get("Memory") or None,
            workdir=str(config.get("WorkingDir") or ""),
            finished_at=max(epoch_seconds(state.get("FinishedAt")), 0.0),
        )


@dataclass(frozen=True)
class ContainerSummary:
    """One container of a listing: enough to poll it, or to tell whose it is."""

    id: str
    status: str
    labels: dict[str, str]
    created: float  # epoch seconds

    @property
    def running(self) -> bool:
        return self.status in ALIVE_STATES

    @classmethod
    def from_listing(cls, item: dict[str, Any]) -> ContainerSummary:
        """From one entry of a container listing, Docker's or Podman's."""
        return cls(
            id=str(item["Id"]),
            status=str(item.get("State", "")),
            labels=dict(item.get("Labels") or {}),
            created=epoch_seconds(item.get("Created")),
        )


@dataclass(frozen=True)
class EngineEvents:
    """A container's kills through the engine (the signal of each; None where the engine
    does not name it) and whether the engine saw it run out of memory (None: it cannot say).
    """

    kills: tuple[int | None, ...] = ()
    oom: bool | None = None


@dataclass(frozen=True)
class ImageInfo:
    """A local image, as `spawnkit images list` shows it."""

    id: str
    tags: tuple[str, ...]
    size: int
    created: float  # epoch seconds
    labels: dict[str, str]

    @classmethod
    def from_listing(cls, item: dict[str, Any]) -> ImageInfo:
        """From one entry of an image listing, Docker's or Podman's (which says Names)."""
        return cls(
            id=str(item.get("Id", "")),
            tags=tuple(item.get("RepoTags") or item.get("Names") or ()),
            size=int(item.get("Size") or 0),
            created=epoch_seconds(item.get("Created")),
            labels=dict(item.get("Labels") or {}),
        )


def epoch_seconds(value: object) -> float:
    """An engine's time stamp (epoch seconds, or RFC 3339 with nanoseconds) as epoch seconds;
    0.0 when it cannot be read."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value or "")
    if text.isdigit():
        return float(text)
    # Python reads at most microseconds: cut the fraction to six digits.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return 0.0


# -- the interface ---------------------------------------------------------------------------


class Engine(abc.ABC):
    """Blocking calls to one container engine. Methods are safe to call from many threads."""

    #: The engine's name, as the spawner and the command line name it.
    name: ClassVar[str]
    #: The environment variable that names the engine's URL.
    url_variable: ClassVar[str]
    #: Whether inspect says when a container was killed for want of memory (Podman 4 on
    #: cgroup v1 does not: OOM is then inferred, see ContainerSpawner).
    reports_oom: ClassVar[bool] = True
    #: How many times, at most, a transient error is tried again, and the longest pause.
    retry_attempts: ClassVar[int] = 4
    retry_max_wait: ClassVar[float] = 2.0

    def __init__(self, url: str | None = None, *, pool_size: int = 32, timeout: float = 60.0):
        self.url = url or self.default_url()
        self.pool_size = pool_size
        self.timeout = timeout
        self.retry_policy = RetryPolicy(self.name, attempts=self.retry_attempts,
                                        max_wait=self.retry_max_wait)

    @classmethod
    @abc.abstractmethod
    def default_url(cls) -> str:
        """The URL from the environment, else the engine's usual local socket."""

    def unavailable(self, exc: BaseException | str) -> EngineUnavailable:
        why = exc if isinstance(exc, str) else engine_message(exc)
        return EngineUnavailable(
            f"cannot reach the {self.name} engine at {self.url}: {why} "
            f"(is it running? set {self.url_variable} or --engine-url)",
            spawner=self.name,
            engine_message=why,
        )

    def retry(self, fn: Callable[..., T], *args: Any, idempotent: bool, **kwargs: Any) -> T:
        """Call `fn`, trying transient failures again (see `faults.RetryPolicy`)."""
        return self.retry_policy.call(fn, *args, idempotent=idempotent, **kwargs)

    # -- connection ---------------------------------------------------------------------------

    @abc.abstractmethod
    def open(self) -> None:
        """Connect and check that the engine answers; raise EngineUnavailable if not."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # -- images -------------------------------------------------------------------------------

    @abc.abstractmethod
    def image_exists(self, image: str) -> bool: ...

    @abc.abstractmethod
    def pull(self, image: str) -> None:
        """Pull `image`; raise EngineError with the engine's message when it cannot."""

    @abc.abstractmethod
    def build(self, context: str, containerfile: str, tag: str) -> str:
        """Build an image from a folder; the image's ID."""

    @abc.abstractmethod
    def images(self, label: str) -> list[ImageInfo]:
        """Local images carrying `label`."""

    # -- containers ---------------------------------------------------------------------------

    @abc.abstractmethod
    def create(self, spec: ContainerSpec) -> str:
        """Create (not start) a container; its full ID."""

    @abc.abstractmethod
    def start(self, container_id: str) -> None: ...

    @abc.abstractmethod
    def containers(self, label: str) -> list[ContainerSummary]:
        """Every container carrying `label` ("key=value"), running or not: one call."""

    @abc.abstractmethod
    def inspect(self, container_id: str) -> ContainerState | None:
        """None when the container does not exist (any more)."""

    @abc.abstractmethod
    def logs(self, container_id: str, *, follow: bool) -> Iterator[tuple[str, bytes]]:
        """(stream, bytes) of what the container wrote, "stdout" or "stderr", in the order
        the engine logged it, exactly: all so far, and with `follow` what comes until it ends
        (a followed log may end early: read it again, unfollowed, once the container has
        ended). One engine call for both streams."""

    @abc.abstractmethod
    def path_exists(self, container_id: str, path: str) -> bool:
        """Whether `path` exists in the container's file system (running or ended)."""

    @abc.abstractmethod
    def archive(self, container_id: str, path: str) -> Iterator[bytes] | None:
        """A tar stream of `path` (a file or a folder) in the container, running or ended;
        None when there is no such path."""

    def archive_in(self, container_id: str, workdir: str, path: str) -> Iterator[bytes] | None:
        """`archive` of `path` in the folder `workdir`. The folder itself as `DIR/.`: the
        engines name the members of `DIR` differently (Docker `DIR/x`, Podman `/x`), those
        of `DIR/.` alike (`./x`, `x`: core.copyout.TarSource reads both)."""
        if path == ".":
            return self.archive(container_id, posixpath.join(workdir, "."))
        return self.archive(container_id, posixpath.normpath(posixpath.join(workdir, path)))

    @abc.abstractmethod
    def exit_events(self, label: str) -> tuple[Iterator[str], Callable[[], None]]:
        """The IDs of containers carrying `label` as each one ends, as the engine reports it
        (one stream for them all), and a function that closes the stream from any thread."""

    @abc.abstractmethod
    def image_entrypoint(self, image: str) -> list[str]:
        """The image's own entrypoint ([] when it has none)."""

    @abc.abstractmethod
    def kill(self, container_id: str, signal: str) -> bool:
        """Signal the container's main process; False when it is not running or gone."""

    @abc.abstractmethod
    def remove(self, container_id: str) -> None:
        """Remove the container, killing it if it runs. Already gone is fine."""

    # -- looking inside (`spawnkit shell`) ------------------------------------------------------
    # Not abstract: an engine (or a test's fake) without them has no shell, nothing more.

    def commit(self, container_id: str, repository: str, tag: str,
               changes: list[str]) -> str:
        """An image of the container's file system and settings, with `changes` (Containerfile
        instructions: `ENV NAME=`, `LABEL k=`) applied; its ID."""
        raise NotImplementedError(f"the {self.name} engine cannot commit a container")

    def remove_image(self, image: str) -> None:
        """Remove an image (by ID: every tag of it). Already gone is fine."""
        raise NotImplementedError(f"the {self.name} engine cannot remove an image")

    def cli_argv(self) -> list[str]:
        """The engine's own command line, aimed at this engine's URL (`docker --host URL`)."""
        raise NotImplementedError(f"the {self.name} engine has no command line")

    def machine_cpus(self) -> int | None:
        """How many CPUs the engine's machine has (Docker's `NCPU`); None when it cannot tell."""
        return None

    def events_of(self, container_id: str, since: float) -> EngineEvents | None:
        """What the engine logged of the container since `since` (epoch seconds): its kills
        and out-of-memory kills. None when the engine cannot tell."""
        return None
