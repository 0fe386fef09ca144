"""The Podman backend, on the `podman` SDK (its API service, not the `podman` command).

Where Podman differs from Docker: its SDK takes tmpfs and CPU limits in other words, its
default socket is found differently, its kill events name no signal, and Podman 4.x on
cgroup v1 does not report OOM kills (`State.OOMKilled` stays false): see `kill_signals`.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import podman
import podman.api
import podman.errors

from spawnkit.spawners.container.engine import (
    ContainerSpec,
    ContainerState,
    ContainerSummary,
    Engine,
    EngineEvents,
    ImageInfo,
)
from spawnkit.spawners.container.faults import EngineError, engine_message, status_code
from spawnkit.spawners.container.logs import log_messages
from spawnkit.spawners.container.spawner import ContainerSpawner

__all__ = ["PodmanEngine", "PodmanSpawner"]

_CPU_PERIOD = 100_000  # microseconds; the quota is a share of it

#: A static tini on this host (Debian's `tini`, which docker.io brings): Podman's init then.
_TINI = next((p for p in ("/usr/bin/tini-static", "/usr/bin/docker-init") if os.path.exists(p)),
             None)


class PodmanEngine(Engine):
    """Podman through its API service (`podman system service`)."""

    name = "podman"
    url_variable = "CONTAINER_HOST"
    reports_oom = False

    def __init__(self, url: str | None = None, *, pool_size: int = 32, timeout: float = 60.0):
        super().__init__(url, pool_size=pool_size, timeout=timeout)
        self._client: Any = None

    @classmethod
    def default_url(cls) -> str:
        # Not DOCKER_HOST, which the SDK's from_env() falls back to: in a shell set up for both
        # engines it names Docker's socket.
        url = os.environ.get(cls.url_variable)
        if url:
            return url
        if os.geteuid() == 0:
            return "unix:///run/podman/podman.sock"
        runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
        return f"unix://{Path(runtime) / 'podman' / 'podman.sock'}"

    @property
    def client(self) -> Any:
        if self._client is None:
            raise RuntimeError("PodmanEngine used before open()")
        return self._client

    def open(self) -> None:
        try:
            self._client = podman.PodmanClient(
                base_url=self.url, timeout=self.timeout, max_pool_size=self.pool_size
            )
            # Version, not ping: it also tells a Podman service from another engine's socket.
            version = self.retry(self._client.version, idempotent=True)
        except Exception as exc:
            raise self.unavailable(exc) from exc
        components = {str(c.get("Name", "")) for c in version.get("Components") or ()}
        if not any("podman" in c.lower() for c in components):
            raise self.unavailable("the service there is not Podman")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _container(self, container_id: str) -> Any:
        # A model from the ID alone: containers.get() would cost an inspect each time.
        return self.client.containers.prepare_model(attrs={"Id": container_id})

    # -- images -------------------------------------------------------------------------------

    def image_exists(self, image: str) -> bool:
        try:
            self.client.images.get(image)
        except podman.errors.ImageNotFound:
            return False
        return True

    def pull(self, image: str) -> None:
        # Streamed: without it the SDK drops the engine's error and returns an empty image.
        for event in self.client.images.pull(image, stream=True, decode=True):
            if isinstance(event, dict) and event.get("error"):
                raise EngineError(str(event["error"]))

    def build(self, context: str, containerfile: str, tag: str) -> str:
        try:
            image, _log = self.client.images.build(path=context, dockerfile=containerfile, tag=tag)
        except podman.errors.BuildError as exc:
            raise EngineError(str(exc.msg).strip()) from exc
        return str(image.id)

    def images(self, label: str) -> list[ImageInfo]:
        found = self.client.images.list(filters={"label": label})
        return [ImageInfo.from_listing(image.attrs) for image in found]

    # -- containers ---------------------------------------------------------------------------

    def create(self, spec: ContainerSpec) -> str:
        mounts: list[dict[str, Any]] = []
        for m in spec.mounts:
            if m.is_tmpfs:
                mounts.append({"type": "tmpfs", "source": "tmpfs", "target": m.target})
            else:
                mounts.append(
                    {"type": "bind", "source": m.source, "target": m.target,
                     "read_only": m.read_only}
                )
        options = set(spec.security_opt)
        no_new_privileges = bool(options & {"no-new-privileges", "no-new-privileges:true"})
        options -= {"no-new-privileges", "no-new-privileges:true"}
        kwargs: dict[str, Any] = {
            "name": spec.name,
            "environment": spec.env,
            "working_dir": spec.workdir,
            "labels": spec.labels,
            "user": spec.user,
            "mem_limit": spec.memory,
            "memswap_limit": spec.memory,
            "pids_limit": spec.pids,
            "privileged": spec.privileged,
            "cap_add": list(spec.cap_add) or None,
            "cap_drop": list(spec.cap_drop) or None,
            "mounts": mounts,
            "read_only": spec.read_only,
            # Podman adds its own tmpfs on /tmp, /run, /var/tmp to a read-only root unless told
            # not to; the spec's mounts say exactly which folders are writable.
            "read_write_tmpfs": False,
            "no_new_privileges": no_new_privileges or None,
            "security_opt": sorted(options) or None,
        }
        if spec.cpus:
            # The SDK ignores nano_cpus: a quota of a period says the same.
            kwargs.update(cpu_period=_CPU_PERIOD, cpu_quota=int(spec.cpus * _CPU_PERIOD))
        if spec.user_network:
            # A network of its own (a job's): joined by name, never as a network mode.
            kwargs["networks"] = {spec.user_network: {"aliases": list(spec.aliases)}
                                  if spec.aliases else {}}
        elif spec.network:
            kwargs["network_mode"] = spec.network
        if spec.extra_hosts:
            kwargs["extra_hosts"] = dict(spec.extra_hosts)
        if spec.init:
            kwargs["init"] = True
            if _TINI is not None:
                # Podman's own init (catatonit) forwards a signal to its child alone; tini
                # with this variable forwards it to the child's whole process group.
                kwargs["init_path"] = _TINI
                kwargs["environment"] = {**spec.env, "TINI_KILL_PROCESS_GROUP": "1"}
        if spec.entrypoint is not None:
            # [""] (not []: this SDK drops empty values) replaces the image's entrypoint.
            kwargs["entrypoint"] = list(spec.entrypoint) or [""]
        if spec.interactive:
            kwargs.update(stdin_open=True, tty=spec.tty)
        # The SDK's own body, posted here: its containers.create() inspects the new container
        # to return a model, one more engine call per task, and only its ID is wanted.
        body = self.client.containers._render_payload({
            "image": spec.image, "command": list(spec.command),
            **{k: v for k, v in kwargs.items() if v is not None},
        })
        response = self.client.api.post("/containers/create",
                                         headers={"content-type": "application/json"},
                                         data=podman.api.prepare_body(body))
        response.raise_for_status(not_found=podman.errors.ImageNotFound)
        return str(response.json()["Id"])

    def start(self, container_id: str) -> None:
        self._container(container_id).start()

    def containers(self, label: str) -> list[ContainerSummary]:
        # A string, not a list: this SDK turns a list value into the text "['...']".
        listed = self.client.containers.list(all=True, filters={"label": label}, sparse=True)
        return [ContainerSummary.from_listing(c.attrs) for c in listed]

    def inspect(self, container_id: str) -> ContainerState | None:
        try:
            return ContainerState.from_inspect(self._container(container_id).inspect())
        except podman.errors.NotFound:
            return None

    def logs(self, container_id: str, *, follow: bool) -> Iterator[tuple[str, bytes]]:
        # The endpoint itself, not the SDK's logs(): a followed log may be silent for longer
        # than the client's timeout, which logs() cannot lift (a read timeout of None waits as
        # long as the container runs); and the SDK does not take a multiplexed stream apart.
        response = self.client.api.get(
            f"/containers/{container_id}/logs", stream=True, timeout=(self.timeout, None),
            params={"stdout": True, "stderr": True, "follow": follow, "tail": "all"})
        response.raise_for_status()
        return log_messages(response)

    def path_exists(self, container_id: str, path: str) -> bool:
        response = self.client.api.head(f"/containers/{container_id}/archive",
                                        params={"path": path})
        if response.status_code == 404:
            return False
        response.raise_for_status()
        return True

    def archive(self, container_id: str, path: str) -> Iterator[bytes] | None:
        # Raw and streamed: the SDK's get_archive holds the whole tar in memory.
        response = self.client.api.get(f"/containers/{container_id}/archive",
                                       params={"path": path}, stream=True)
        if response.status_code == 404:
            response.close()
            return None
        response.raise_for_status()

        def chunks() -> Iterator[bytes]:
            try:
                yield from response.iter_content(1 << 20)
            finally:
                response.close()

        return chunks()

    def exit_events(self, label: str) -> tuple[Iterator[str], Callable[[], None]]:
        params = {"filters": podman.api.prepare_filters({"label": label, "type": "container"}),
                  "stream": True}
        response = self.client.api.get("/events", params=params, stream=True)
        response.raise_for_status()

        def ids() -> Iterator[str]:
            for line in response.iter_lines():
                event = json.loads(line) if line else {}
                # Podman 4 says "died" where Docker says "die".
                if event.get("Action") in ("died", "die"):
                    cid = (event.get("Actor") or {}).get("ID") or event.get("id")
                    if cid:
                        yield str(cid)

        return ids(), functools.partial(_shut, response)

    def machine_cpus(self) -> int | None:
        cpus = (self.client.info().get("host") or {}).get("cpus")
        return int(cpus) if cpus else None

    def image_entrypoint(self, image: str) -> list[str]:
        config = self.client.images.get(image).attrs.get("Config") or {}
        return list(config.get("Entrypoint") or [])

    def kill(self, container_id: str, signal: str) -> bool:
        try:
            self._container(container_id).kill(signal=signal)
        except podman.errors.APIError as exc:
            # Gone, or not running: Podman 4 says the latter with a 500.
            if status_code(exc) in (404, 409) or "state improper" in engine_message(exc):
                return False
            raise
        return True

    def commit(self, container_id: str, repository: str, tag: str,
               changes: list[str]) -> str:
        image = self._container(container_id).commit(repository, tag, changes=changes)
        return str(image.id)

    def remove_image(self, image: str) -> None:
        with contextlib.suppress(podman.errors.ImageNotFound):  # gone already
            self.client.images.remove(image, force=True)

    def cli_argv(self) -> list[str]:
        # --remote: the service spawnkit made the container through (the local mode would
        # look in this user's own storage, and needs this machine's containers.conf).
        return ["podman", "--remote", "--url", self.url]

    def remove(self, container_id: str) -> None:
        # Raw: the SDK's remove sends no timeout, and Podman's default stops a running
        # container with 10 s of grace first; spawnkit has already given it its grace.
        response = self.client.api.delete(f"/containers/{container_id}",
                                          params={"force": True, "timeout": 0})
        if response.status_code not in (200, 204, 404, 409):
            response.raise_for_status()

    def events_of(self, container_id: str, since: float) -> EngineEvents | None:
        # The SDK's events() always follows the stream; stream=false returns what is logged.
        # Podman 4's kill events do not say which signal, and it logs no OOM kill.
        params = {
            "filters": podman.api.prepare_filters({"container": container_id, "event": "kill"}),
            "since": f"{since:.3f}",
            "stream": False,
        }
        response = self.client.api.get("/events", params=params, stream=True)
        response.raise_for_status()
        kills: list[int | None] = []
        try:
            for line in response.iter_lines():
                if line and json.loads(line).get("Action") == "kill":
                    kills.append(None)
        finally:
            response.close()
        return EngineEvents(tuple(kills))


def _shut(response: Any) -> None:
    """Close a streamed response from another thread than the one reading it: shut its
    socket down (closing the response itself waits on the reader's lock)."""
    sock = getattr(getattr(response.raw, "_connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
    else:
        response.close()


class PodmanSpawner(ContainerSpawner):
    """Runs each task in a Podman container."""

    name = "podman"
    engine_class = PodmanEngine
