"""A container engine as spawnkit uses it, whatever its SDK.

`Engine` is the small set of blocking calls the container backends need; `DockerEngine` and
`PodmanEngine` implement it on their SDKs. `ContainerSpec` says what to create in neutral terms,
so each engine maps it to its own SDK's arguments, which differ. Transient API errors are
retried here, bounded and logged; permanent ones are raised at once.
"""

from __future__ import annotations

import abc
import http.client
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, ClassVar, TypeVar

import requests
import tenacity
import urllib3

from spawnkit.core.errors import EngineUnavailable

__all__ = [
    "ALIVE_STATES",
    "ContainerSpec",
    "ContainerState",
    "ContainerSummary",
    "Engine",
    "EngineError",
    "ImageInfo",
    "MountSpec",
    "engine_message",
    "epoch_seconds",
    "is_transient",
    "status_code",
]

LOG = logging.getLogger(__name__)

T = TypeVar("T")

#: Engine words for a container whose process may still run. Docker and Podman share most;
#: anything else (exited, dead, stopped, removing, or absent) has ended.
ALIVE_STATES = frozenset(
    {"created", "configured", "initialized", "running", "paused", "restarting", "stopping"}
)


class EngineError(Exception):
    """An engine refused an operation and said why in its own words (a pull, a build)."""


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

    @property
    def running(self) -> bool:
        return self.status in ALIVE_STATES

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


# -- errors ----------------------------------------------------------------------------------

_CONNECTION_ERRORS = (
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ConnectionError,
    TimeoutError,
)

# A 500 from an engine is usually the operation failing for good (a runtime error, a bad
# command); these words in its message say the engine or a registry only stumbled.
_TRANSIENT_WORDS = re.compile(
    r"timeout|timed out|temporar|connection reset|connection refused|broken pipe|EOF|"
    r"TLS handshake|too many requests|try again|unavailable",
    re.IGNORECASE,
)


def _chain(exc: BaseException) -> Iterable[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [current.__cause__, current.__context__]
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            todo.append(reason)


def status_code(exc: BaseException) -> int | None:
    """The HTTP status of an SDK error, None when there was no answer."""
    code = getattr(exc, "status_code", None)
    if isinstance(code, int):
        return code
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return code if isinstance(code, int) else None


def _no_answer(exc: BaseException) -> bool:
    """The engine did not answer at all (refused, reset, timed out)."""
    return status_code(exc) is None and any(isinstance(e, _CONNECTION_ERRORS) for e in _chain(exc))


def is_transient(exc: BaseException, *, idempotent: bool) -> bool:
    """Worth another try: no answer, a gateway or overload status, or (for a call that is safe
    to repeat) any server error."""
    code = status_code(exc)
    if code is None:
        return _no_answer(exc) or (
            isinstance(exc, EngineError) and bool(_TRANSIENT_WORDS.search(str(exc)))
        )
    if code in (429, 502, 503, 504):
        return True
    if code >= 500:
        return idempotent or bool(_TRANSIENT_WORDS.search(engine_message(exc)))
    return False


def engine_message(exc: BaseException) -> str:
    """The engine's own words for an error, on one line."""
    if _no_answer(exc):
        for cause in _chain(exc):
            if isinstance(cause, OSError) and cause.strerror:
                return cause.strerror
    text: Any = getattr(exc, "explanation", None) or str(exc)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " ".join(str(text).split())


# -- the interface ---------------------------------------------------------------------------


class Engine(abc.ABC):
    """Blocking calls to one container engine. Methods are safe to call from many threads."""

    #: The engine's name, as the spawner and the command line name it.
    name: ClassVar[str]
    #: The environment variable that names the engine's URL.
    url_variable: ClassVar[str]
    #: How many times, at most, a transient error is tried again, and the longest pause.
    retry_attempts: ClassVar[int] = 4
    retry_max_wait: ClassVar[float] = 2.0

    def __init__(self, url: str | None = None, *, pool_size: int = 32, timeout: float = 60.0):
        self.url = url or self.default_url()
        self.pool_size = pool_size
        self.timeout = timeout

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
        """Call `fn`, trying transient failures again (bounded, with backoff, logged)."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(lambda e: is_transient(e, idempotent=idempotent)),
            stop=tenacity.stop_after_attempt(self.retry_attempts),
            wait=tenacity.wait_exponential(multiplier=0.1, max=self.retry_max_wait),
            before_sleep=self._log_retry,
            reraise=True,
        )
        return retrying(fn, *args, **kwargs)

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        what = getattr(state.fn, "__name__", "call")
        LOG.info(
            "%s: %s failed (%s), try %d of %d",
            self.name, what, engine_message(exc) if exc else "?",
            state.attempt_number + 1, self.retry_attempts,
        )

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
    def logs(self, container_id: str, stdout: BinaryIO, stderr: BinaryIO) -> None:
        """Write the container's stdout and stderr, each to its own file."""

    @abc.abstractmethod
    def kill(self, container_id: str, signal: str) -> bool:
        """Signal the container's main process; False when it is not running or gone."""

    @abc.abstractmethod
    def remove(self, container_id: str) -> None:
        """Remove the container, killing it if it runs. Already gone is fine."""

    def killed_through_engine(self, container_id: str, since: float) -> bool | None:
        """Did anyone kill the container through the engine since `since` (epoch seconds)?

        None when the engine cannot tell; engines whose inspect misses OOM kills answer it.
        """
        return None
