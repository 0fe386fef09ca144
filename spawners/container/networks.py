"""The engine calls that services need beyond a task's: a job's network (made, listed,
removed), a container's address on it, and a command run inside a running container.

Blocking, on each engine's own SDK (as `userimages` builds are): run them in the spawner's
engine threads (`EngineCalls`). `engine` is a `DockerEngine` or a `PodmanEngine`; another
engine raises NotImplementedError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spawnkit.spawners.container.engine import epoch_seconds
from spawnkit.spawners.container.faults import engine_message, status_code

__all__ = [
    "NetworkSummary",
    "container_ip",
    "create_network",
    "exec_status",
    "list_networks",
    "remove_network",
]


@dataclass(frozen=True)
class NetworkSummary:
    """One network of a listing: enough to tell whose it is."""

    name: str
    labels: dict[str, str]
    created: float  # epoch seconds


def create_network(engine: Any, name: str, labels: dict[str, str]) -> None:
    """Make a bridge network with these labels. One already there with the same job label
    is this one (a create tried again after its answer was lost, or a dead runner's of the
    job that a resume goes on with)."""
    try:
        if engine.name == "docker":
            engine.api.create_network(name, driver="bridge", labels=labels,
                                      check_duplicate=True)
        elif engine.name == "podman":
            engine.client.networks.create(name, driver="bridge", labels=labels)
        else:
            raise NotImplementedError(f"the {engine.name} engine makes no networks")
    except NotImplementedError:
        raise
    except Exception as exc:
        if status_code(exc) != 409 and "exists" not in engine_message(exc):
            raise
        there = {n.name: n for n in list_networks(engine, "spawnkit.job")}.get(name)
        # The same job's (a runner that resumed the job finds its network there): this one.
        if there is None or there.labels.get("spawnkit.job") != labels.get("spawnkit.job"):
            raise


def list_networks(engine: Any, label: str) -> list[NetworkSummary]:
    """The networks carrying `label` ("key" or "key=value")."""
    if engine.name == "docker":
        return [NetworkSummary(str(n.get("Name")), dict(n.get("Labels") or {}),
                               epoch_seconds(n.get("Created")))
                for n in engine.api.networks(filters={"label": label})]
    if engine.name == "podman":
        found = engine.client.networks.list(filters={"label": label})
        return [NetworkSummary(str(n.name), dict(n.attrs.get("labels") or {}),
                               epoch_seconds(n.attrs.get("created"))) for n in found]
    return []


def remove_network(engine: Any, name: str) -> str | None:
    """Remove the network: None once it is gone (or was), else why not (in use: a kept
    container is still on it)."""
    try:
        if engine.name == "docker":
            engine.api.remove_network(name)
        elif engine.name == "podman":
            engine.client.networks.remove(name)
        else:
            return None
    except Exception as exc:
        if status_code(exc) == 404:
            return None
        return engine_message(exc)
    return None


def container_ip(engine: Any, container_id: str, network: str) -> str | None:
    """The container's address on `network` (None: not on it, or not running)."""
    if engine.name == "docker":
        attrs = engine.api.inspect_container(container_id)
    elif engine.name == "podman":
        attrs = _podman_container(engine, container_id).inspect()
    else:
        return None
    networks = (attrs.get("NetworkSettings") or {}).get("Networks") or {}
    address = (networks.get(network) or {}).get("IPAddress")
    return str(address) if address else None


def exec_status(engine: Any, container_id: str, argv: list[str]) -> tuple[int | None, bytes]:
    """Run `argv` in the running container, as its user, in its environment: its exit code
    (None when the engine does not say) and its output."""
    if engine.name == "docker":
        api = engine.api
        exec_id = api.exec_create(container_id, argv, stdout=True, stderr=True)["Id"]
        output = api.exec_start(exec_id)
        code = api.exec_inspect(exec_id).get("ExitCode")
        return code, output if isinstance(output, bytes) else b""
    if engine.name == "podman":
        container = _podman_container(engine, container_id)
        code, output = container.exec_run(argv, stdout=True, stderr=True)
        return code, output if isinstance(output, bytes) else b""
    raise NotImplementedError(f"the {engine.name} engine runs no command in a container")


def _podman_container(engine: Any, container_id: str) -> Any:
    """A model from the ID alone (no inspect): its ID stands for its name too, which some of
    the SDK's calls (exec) put in their URL."""
    return engine.client.containers.prepare_model(attrs={"Id": container_id,
                                                         "Name": container_id})
