"""Services (`[[service]]`) on Docker and Podman: a container each, on one network per job.

The job's network (`spawnkit-<job id>`) is made when its first service starts, with the
labels a task's container carries (managed, job, owner), so `spawnkit gc` removes what a dead
runner left. A service joins it with its id as a network alias; a task that uses services
joins it too. Docker's DNS resolves the aliases; Podman 4 with CNI and no dnsname plugin (as
here) resolves no name on a network (`dns_enabled` is accepted and does nothing), so a Podman
task also gets each of its services' addresses in its /etc/hosts (`extra_hosts`), which works
with every network backend. A service keeps its image's entrypoint (`command` is its
arguments), runs under an init as a task does, with the isolation defaults of a task, and is
removed when it stops; its output is followed into `services/<id>/`, masked.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from spawnkit.core import runs
from spawnkit.core.errors import BackendError, StartError
from spawnkit.core.output import TaskOutput
from spawnkit.core.owner import owner_alive
from spawnkit.core.spawner import JobContext, Spawner, SpawnerOptions
from spawnkit.core.task.description import Limits, Task
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.service import Service
from spawnkit.spawners.container import exits, networks, reap
from spawnkit.spawners.container.calls import EngineCalls
from spawnkit.spawners.container.engine import ContainerSpec, Engine
from spawnkit.spawners.container.faults import engine_message
from spawnkit.spawners.container.isolation import isolation_of
from spawnkit.spawners.container.logs import LogFollower
from spawnkit.spawners.container.spec import (
    LABEL_JOB,
    LABEL_JOB_DIR,
    LABEL_MANAGED,
    LABEL_OWNER,
    LABEL_SERVICE,
)

__all__ = ["ContainerServiceHooks", "network_name", "service_spec"]

LOG = logging.getLogger(__name__)

#: Seconds a KILLed service container may take to be reported as ended.
_KILL_WAIT = 10.0


def network_name(job_id: str) -> str:
    return f"spawnkit-{job_id}"


def service_spec(service: Service, job: JobContext, image: str, network: str) -> ContainerSpec:
    """The container of a service: on the job's network, known there by its id."""
    isolation = isolation_of(Limits())
    return ContainerSpec(
        image=image,
        command=service.argv or [],  # [] runs the image's own command, on both engines
        name=f"spawnkit-{job.job_id}-service-{service.id}",
        env=service.environment(),
        labels={LABEL_MANAGED: "true", LABEL_JOB: job.job_id, LABEL_OWNER: job.owner,
                LABEL_JOB_DIR: str(job.job_dir), LABEL_SERVICE: service.id},
        pids=isolation.pids,
        network=network,
        aliases=(service.id,),
        cap_drop=isolation.cap_drop,
        security_opt=isolation.security_opt,
        init=True,
        entrypoint=None,  # the image's: a database image's entrypoint sets it up
    )


@dataclass(eq=False)
class _ServiceContainer:
    service_id: str
    id: str
    logs: LogFollower
    address: str | None
    #: Epoch time just before its start, to ask the engine's event log about it.
    started_wall: float
    stop: asyncio.Future[ExitResult | None] | None = None


class ContainerServiceHooks(Spawner):
    """The service hooks of the container backends (`Spawner.start_service` and the rest),
    over the `engine` and the engine calls (`_call`) the spawner makes."""

    runs_services = True
    engine: Engine
    _call: EngineCalls

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        super().__init__(options)
        self._service_containers: dict[str, _ServiceContainer] = {}  # by container ID
        self._network: asyncio.Future[str] | None = None

    def _service_job(self) -> JobContext:
        if self.job is None:
            raise StartError("services run only as part of a job", spawner=self.name)
        return self.job

    # -- what a task file may ask ------------------------------------------------------------

    def services_problem(self, task: Task) -> str | None:
        """Why the task's services cannot work here (for `cannot_run`), or None."""
        if not task.services:
            return None
        if task.limits.network in ("none", "host"):
            return (f"network = \"{task.limits.network}\" cannot reach its services: they are "
                    "on the job's own network (drop 'network' from the task)")
        for service in task.services:
            if not (service.image or self.options.image):
                return (f"service '{service.id}' has no image: set 'image' in its "
                        "[[service]], or give --image")
        return None

    def with_services(self, spec: ContainerSpec, task: Task) -> ContainerSpec:
        """A task's container on the job's network, when it uses services."""
        if not task.services or self.job is None:
            return spec
        hosts = {}
        if self.engine.name == "podman":  # no name resolves on a Podman network here
            by_id = {s.service_id: s.address for s in self._service_containers.values()}
            hosts = {s.id: addr for s in task.services if (addr := by_id.get(s.id))}
        return dataclasses.replace(spec, network=network_name(self.job.job_id),
                                   extra_hosts={**spec.extra_hosts, **hosts})

    # -- the hooks ---------------------------------------------------------------------------

    async def start_service(self, service: Service, out_dir: Path) -> str:
        job = self._service_job()
        image = service.image or self.options.image
        if image is None:
            raise StartError(f"service '{service.id}' has no image", spawner=self.name)
        try:
            if not await self._call(self.engine.image_exists, image):
                LOG.info("%s: pulling %s", self.name, image)
                await self._call(self.engine.pull, image, idempotent=False)
        except Exception as exc:
            raise self._call.error(StartError, f"image '{image}' is not on the {self.name} "
                                   "engine and cannot be pulled", exc) from exc
        if self._network is None:
            self._network = asyncio.ensure_future(self._make_network(job))
        network = await asyncio.shield(self._network)
        spec = service_spec(service, job, image, network)
        try:
            container_id = await self._call(self.engine.create, spec, idempotent=False)
        except Exception as exc:
            raise self._call.error(StartError, f"cannot create a container of '{image}'",
                                   exc) from exc
        started_wall = time.time()
        try:
            await self._call(self.engine.start, container_id, idempotent=False)
        except Exception as exc:
            await self._call.remove_or_leave(container_id)
            raise self._call.error(StartError, f"cannot start container {container_id[:12]}",
                                   exc, container_id) from exc
        output = TaskOutput(out_dir, (*job.masked, *service.secret_values()))
        logs = LogFollower(self.engine, container_id, output)
        try:
            address = await self._call(networks.container_ip, self.engine, container_id,
                                       network)
        except Exception as exc:
            address = None
            LOG.warning("%s: address of service %s: %s", self.name, service.id,
                        engine_message(exc))
        self._service_containers[container_id] = _ServiceContainer(service.id, container_id,
                                                                   logs, address, started_wall)
        return container_id

    async def _make_network(self, job: JobContext) -> str:
        name = network_name(job.job_id)
        labels = {LABEL_MANAGED: "true", LABEL_JOB: job.job_id, LABEL_OWNER: job.owner,
                  LABEL_JOB_DIR: str(job.job_dir)}
        try:
            await self._call(networks.create_network, self.engine, name, labels,
                             idempotent=False)
        except Exception as exc:
            self._network = None  # the next service tries again
            raise self._call.error(StartError, f"cannot make the job's network {name}",
                                   exc) from exc
        return name

    async def service_alive(self, handle: str) -> bool:
        found = self._service_containers.get(handle)
        if found is not None:
            found.logs.idle()  # masked output is held back until the stream rests
        state = await self._call(self.engine.inspect, handle)
        return state is not None and state.running

    async def service_ready(self, handle: str, service: Service) -> bool:
        argv = service.ready_argv
        if argv is None:
            return True
        # Not tried again on a fault: the next readiness try is the retry.
        code, _output = await self._call(networks.exec_status, self.engine, handle, argv,
                                         retry=False)
        return code == 0

    async def stop_service(self, handle: str, grace_period: float) -> ExitResult | None:
        found = self._service_containers.get(handle)
        if found is None:
            return None  # stopped already
        if found.stop is None:
            found.stop = asyncio.ensure_future(self._stop_container(found, grace_period))
        elif grace_period <= 0:
            # Stopping with grace already: KILL now, that stop then sees it end.
            await self._call(self.engine.kill, handle, "SIGKILL", idempotent=False)
        return await asyncio.shield(found.stop)

    async def _stop_container(self, found: _ServiceContainer,
                              grace_period: float) -> ExitResult | None:
        cid = found.id
        sent: set[int] = set()  # a signal of ours is no news of how it ended on its own
        try:
            await self._call.stop(cid, grace_period, _KILL_WAIT, sent)
            state = await self._call(self.engine.inspect, cid)
            await self._call(found.logs.finish_or_keep, f"service {found.service_id}",
                             retry=False)
            if state is None:
                return None
            return await exits.read_exit(self._call, self.engine, state, sent=sent,
                                         since=found.started_wall - 1.0)
        except Exception as exc:
            found.logs.abandon()
            raise self._call.error(BackendError, f"cannot stop service {found.service_id}",
                                   exc, cid) from exc
        finally:
            await self._call.remove_or_leave(cid)
            self._service_containers.pop(cid, None)

    async def end_previous_services(self) -> None:
        """The service containers a dead runner of this job left: removed, so that a resume
        starts its own (the network stays, and is reused)."""
        job = self._service_job()
        listed = await self._call(self.engine.containers, f"{LABEL_JOB}={job.job_id}")
        await reap.remove_all([c for c in listed if LABEL_SERVICE in c.labels],
                              lambda cid: self._call(self.engine.remove, cid))

    async def close_services(self) -> None:
        """Remove what is left of the services (a container made by a start that was called
        off), then the job's network: one a kept container still uses stays, for gc."""
        if self._network is None or self.job is None:
            return
        listed = await self._call(self.engine.containers, f"{LABEL_JOB}={self.job.job_id}")
        await asyncio.gather(*(self._call.remove_or_leave(c.id) for c in listed
                               if LABEL_SERVICE in c.labels))
        name = network_name(self.job.job_id)
        why = await self._call(networks.remove_network, self.engine, name)
        if why is not None:
            LOG.warning("%s: network %s stays, for 'spawnkit gc': %s", self.name, name, why)

    async def reap_networks(self, *, dry_run: bool) -> list[str]:
        """The networks of dead runners (`spawnkit gc`), once their containers are gone; one
        still in use (a kept container) stays until they are."""
        listed = await self._call(networks.list_networks, self.engine, f"{LABEL_MANAGED}=true")
        said = []
        for network in listed:
            owner = network.labels.get(LABEL_OWNER, "")
            if not owner or owner_alive(owner) or runs.leave_alone(
                    network.labels.get(LABEL_JOB, ""), network.labels.get(LABEL_JOB_DIR),
                    spare_recent=self.options.spare_resumable):
                continue  # its runner lives, or a resume took (or may take) its job over
            if not dry_run:
                why = await self._call(networks.remove_network, self.engine, network.name)
                if why is not None:
                    LOG.info("%s: network %s stays: %s", self.name, network.name, why)
                    continue
            said.append(f"network {network.name} (job {network.labels.get(LABEL_JOB, '?')})")
        return said
