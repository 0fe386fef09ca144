"""The Docker backend, on the `docker` SDK's low-level API client.

The low-level client answers each call with one request: the high-level models inspect again
after a create or for each listed container, which costs engine time on every task.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import docker
import docker.errors
import docker.types
import docker.utils

from spawnkit.spawners.container.engine import (
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    Engine,
    EngineEvents,
    ImageInfo,
)
from spawnkit.spawners.container.faults import EngineError, status_code
from spawnkit.spawners.container.logs import log_messages
from spawnkit.spawners.container.spawner import ContainerSpawner

__all__ = ["DockerEngine", "DockerSpawner"]

_DEFAULT_URL = "unix:///var/run/docker.sock"

# Docker's default log driver, json-file, stores output as JSON text and so replaces bytes
# that are not UTF-8; a daemon may also default to a driver that cannot be read back at all.
# "local" keeps the bytes as written, up to max-size x max-file (1 GB) per stream.
_LOG_CONFIG = docker.types.LogConfig(type="local", config={"max-size": "100m", "max-file": "10"})


#: Docker's log copier cuts a line longer than this into pieces of this size.
_PIECE = 16 * 1024


def _line_ends_restored(messages: Iterator[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    """Docker 20.10's `local` log driver gives back the last piece of a line longer than
    16 KiB (its copier logs such a line as pieces) without the line's end. A piece shorter
    than 16 KiB, with no line end, after a 16 KiB one, is that last piece when more output
    of its stream follows it: its line end is put back. What cannot be told apart stays as
    read: such a piece at the very end of its stream (a line with no end there reads the
    same), and a line of exactly a multiple of 16 KiB (its last piece is empty and comes back
    as nothing). Messages are (stream, bytes), as `log_messages` gives them.
    """
    in_line: dict[str, bool] = {}  # the stream's message before was a 16 KiB piece of a line
    held: dict[str, bytes] = {}
    for name, message in messages:
        piece = held.pop(name, None)
        if piece is not None:
            yield name, piece + b"\n"
        if message.endswith(b"\n"):
            in_line[name] = False
        elif len(message) == _PIECE:
            in_line[name] = True
        elif in_line.get(name):
            held[name], in_line[name] = message, False
            continue
        yield name, message
    yield from held.items()


class DockerEngine(Engine):
    """Docker Engine through its API (a local socket, or DOCKER_HOST with its TLS settings)."""

    name = "docker"
    url_variable = "DOCKER_HOST"

    def __init__(self, url: str | None = None, *, pool_size: int = 32, timeout: float = 60.0):
        super().__init__(url, pool_size=pool_size, timeout=timeout)
        self._explicit_url = url
        self._api: Any = None

    @classmethod
    def default_url(cls) -> str:
        return os.environ.get(cls.url_variable) or _DEFAULT_URL

    @property
    def api(self) -> Any:
        if self._api is None:
            raise RuntimeError("DockerEngine used before open()")
        return self._api

    def open(self) -> None:
        # DOCKER_HOST's companions (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) come along with it.
        kwargs: dict[str, Any] = docker.utils.kwargs_from_env()
        if self._explicit_url:
            kwargs = {"base_url": self._explicit_url}
        kwargs.setdefault("base_url", self.url)
        try:
            # version="auto" asks the engine for its API version: the first round trip.
            self._api = docker.APIClient(
                version="auto", timeout=self.timeout, max_pool_size=self.pool_size, **kwargs
            )
            self.retry(self._api.ping, idempotent=True)
        except Exception as exc:
            raise self.unavailable(exc) from exc

    def close(self) -> None:
        if self._api is not None:
            self._api.close()

    # -- images -------------------------------------------------------------------------------

    def image_exists(self, image: str) -> bool:
        try:
            self.api.inspect_image(image)
        except docker.errors.NotFound:
            return False
        return True

    def pull(self, image: str) -> None:
        repository, tag = docker.utils.parse_repository_tag(image)
        if tag is None:
            tag = "latest"
        for event in self.api.pull(repository, tag=tag, stream=True, decode=True):
            if "error" in event:
                raise EngineError(str(event["error"]))

    def build(self, context: str, containerfile: str, tag: str) -> str:
        image_id = ""
        for event in self.api.build(
            path=context, dockerfile=containerfile, tag=tag, rm=True, decode=True
        ):
            if "error" in event:
                raise EngineError(str(event["error"]).strip())
            aux = event.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = str(aux["ID"])
        return image_id or str(self.api.inspect_image(tag)["Id"])

    def images(self, label: str) -> list[ImageInfo]:
        return [ImageInfo.from_listing(i) for i in self.api.images(filters={"label": label})]

    # -- containers ---------------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> str:
        mounts = [
            docker.types.Mount(m.target, None, type="tmpfs")
            if m.is_tmpfs
            else docker.types.Mount(m.target, m.source, type="bind", read_only=m.read_only)
            for m in spec.mounts
        ]
        host_config = self.api.create_host_config(
            mem_limit=spec.memory,
            memswap_limit=spec.memory,
            nano_cpus=int(spec.cpus * 1e9) if spec.cpus else None,
            pids_limit=spec.pids,
            network_mode=spec.network,
            read_only=spec.read_only or None,
            privileged=spec.privileged,
            cap_add=list(spec.cap_add) or None,
            cap_drop=list(spec.cap_drop) or None,
            mounts=mounts or None,
            security_opt=list(spec.security_opt) or None,
            log_config=_LOG_CONFIG,
            init=spec.init or None,
            extra_hosts=spec.extra_hosts or None,
        )
        env = dict(spec.env)
        if spec.init:
            # docker-init (tini) forwards a signal to its child's whole process group: TERM
            # reaches every process of the task, as the process backend's group kill does.
            env.setdefault("TINI_KILL_PROCESS_GROUP", "1")
        created = self.api.create_container(
            spec.image,
            spec.command,
            name=spec.name,
            environment=env,
            working_dir=spec.workdir,
            labels=spec.labels,
            user=spec.user,
            host_config=host_config,
            use_config_proxy=False,
            # [""] (not []) is what replaces the image's entrypoint on every engine.
            entrypoint=None if spec.entrypoint is None else list(spec.entrypoint) or [""],
            stdin_open=spec.interactive,
            tty=spec.tty,
            # A job's network: its services are found there by their aliases (Docker's DNS).
            networking_config=self.api.create_networking_config({spec.network: (
                self.api.create_endpoint_config(aliases=list(spec.aliases)))})
            if spec.user_network and spec.aliases else None,
        )
        return str(created["Id"])

    def start(self, container_id: str) -> None:
        self.api.start(container_id)

    def containers(self, label: str) -> list[ContainerSummary]:
        listed = self.api.containers(all=True, filters={"label": label})
        return [ContainerSummary.from_listing(c) for c in listed]

    def inspect(self, container_id: str) -> ContainerState | None:
        try:
            return ContainerState.from_inspect(self.api.inspect_container(container_id))
        except docker.errors.NotFound:
            return None

    def logs(self, container_id: str, *, follow: bool) -> Iterator[tuple[str, bytes]]:
        # The endpoint itself: the SDK's logs() first inspects the container to learn whether
        # it has a TTY, one more engine call per read. Ours never have one, so the answer is
        # always the multiplexed stream. A container gone is a 404: NotFound.
        params = {"stdout": 1, "stderr": 1, "follow": int(follow), "timestamps": 0,
                  "tail": "all"}
        response = self.api._get(self.api._url("/containers/{0}/logs", container_id),
                                 params=params, stream=True)
        self.api._raise_for_status(response)
        # As the SDK's own reader: a followed log may be silent for longer than any timeout.
        self.api._disable_socket_timeout(self.api._get_raw_response_socket(response))
        return _line_ends_restored(log_messages(response))

    def path_exists(self, container_id: str, path: str) -> bool:
        # HEAD of the archive endpoint: the path's stat, without its content.
        response = self.api.head(self.api._url("/containers/{0}/archive", container_id),
                                 params={"path": path})
        if response.status_code == 404:
            return False
        self.api._raise_for_status(response)
        return True

    def archive(self, container_id: str, path: str) -> Iterator[bytes] | None:
        try:
            chunks, _stat = self.api.get_archive(container_id, path, chunk_size=1 << 20)
        except docker.errors.NotFound:
            return None
        result: Iterator[bytes] = chunks
        return result

    def exit_events(self, label: str) -> tuple[Iterator[str], Callable[[], None]]:
        stream = self.api.events(decode=True,
                                 filters={"label": label, "type": "container", "event": "die"})

        def ids() -> Iterator[str]:
            for event in stream:
                cid = event.get("id") or (event.get("Actor") or {}).get("ID")
                if cid:
                    yield str(cid)

        close: Callable[[], None] = stream.close
        return ids(), close

    def machine_cpus(self) -> int | None:
        cpus = self.api.info().get("NCPU")
        return int(cpus) if cpus else None

    def image_entrypoint(self, image: str) -> list[str]:
        config = self.api.inspect_image(image).get("Config") or {}
        return list(config.get("Entrypoint") or [])

    def kill(self, container_id: str, signal: str) -> bool:
        try:
            self.api.kill(container_id, signal=signal)
        except docker.errors.APIError as exc:
            if status_code(exc) in (404, 409):  # gone, or not running
                return False
            raise
        return True

    def events_of(self, container_id: str, since: float) -> EngineEvents | None:
        # OOMKilled in inspect may lag behind the exit on a loaded daemon; the oom event
        # is logged before the container's die event.
        events = self.api.events(since=since, until=time.time(), decode=True,
                                 filters={"container": container_id, "event": ["kill", "oom"]})
        kills: list[int | None] = []
        oom = False
        for event in events:
            if event.get("Action") == "oom" or event.get("status") == "oom":
                oom = True
                continue
            value = str((event.get("Actor") or {}).get("Attributes", {}).get("signal", ""))
            kills.append(int(value) if value.isdigit() else None)
        return EngineEvents(tuple(kills), oom)

    def commit(self, container_id: str, repository: str, tag: str,
               changes: list[str]) -> str:
        answer = self.api.commit(container_id, repository=repository, tag=tag, changes=changes)
        return str(answer["Id"])

    def remove_image(self, image: str) -> None:
        with contextlib.suppress(docker.errors.NotFound):  # gone already
            self.api.remove_image(image, force=True)

    def cli_argv(self) -> list[str]:
        return ["docker", "--host", self.url]

    def remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except docker.errors.APIError as exc:
            # 409: a removal already in progress, the same end.
            if status_code(exc) not in (404, 409):
                raise


class DockerSpawner(ContainerSpawner):
    """Runs each task in a Docker container."""

    name = "docker"
    engine_class = DockerEngine
