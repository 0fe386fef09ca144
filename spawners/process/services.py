"""Services (`[[service]]`) on the process backend: each service's `command` runs on this host,
in a process group of its own, started by a task supervisor of the job's services
(spawners.process.supervisor, the same program that starts tasks). So, as a task, it is reaped
and its output masked by a process that outlives a runner killed with `kill -9`, and `spawnkit
gc` finds it through that supervisor's command line (runner and job) once the runner is gone.

Tasks reach a service at 127.0.0.1 (no network of their own: ports are the host's). Its
readiness command runs on the host too, in its environment, a process group of its own killed
if the wait for it is called off. A stop is TERM to the whole group, the grace period, KILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
from pathlib import Path
from typing import Any

from spawnkit.core.errors import StartError
from spawnkit.core.owner import owner_alive, runner_owner
from spawnkit.core.procfs import live_processes
from spawnkit.core.spawner import Spawner, SpawnerOptions
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.service import Service
from spawnkit.spawners.process.client import SupervisorClient, supervisors
from spawnkit.spawners.process.groups import kill_group, signal_group
from spawnkit.spawners.process.handle import ProcessHandle

__all__ = ["LOCALHOST", "SERVICE_VARIABLE", "ProcessServiceHooks"]

#: Where a task finds a service: on this host.
LOCALHOST = "127.0.0.1"
#: A service's process carries its id here (`spawnkit gc` says whose it kills).
SERVICE_VARIABLE = "SPAWNKIT_SERVICE_ID"

#: Seconds a service's exit may take to be reported once its group is gone, and its output
#: to be whole in its files.
_EXIT_WAIT = 5.0
_DRAIN_WAIT = 10.0


class ProcessServiceHooks(Spawner):
    """The service hooks of the process backend (`Spawner.start_service` and the rest)."""

    runs_services = True

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        super().__init__(options)
        self._service_client: SupervisorClient | None = None
        self._service_starting: dict[str, asyncio.Future[ProcessHandle]] = {}
        self._service_procs: dict[str, ProcessHandle] = {}  # by handle: the service's id
        self._service_stops: dict[str, asyncio.Future[ExitResult | None]] = {}

    def _base_environment(self) -> dict[str, str]:
        """The environment every process of the job starts from (ProcessSpawner's)."""
        raise NotImplementedError

    def services_problem(self, task: Task) -> str | None:
        """Why the task's services cannot run here (for `cannot_run`), or None."""
        for service in task.services:
            if service.command is None:
                return (f"service '{service.id}' has no command: the process backend runs a "
                        "service's command on this host (its image is for docker and podman)")
        return None

    def service_host(self, service_id: str) -> str:
        return LOCALHOST

    # -- the supervisor of the services ------------------------------------------------------

    def _services_supervisor(self) -> SupervisorClient:
        if self._service_client is None:
            job = self.job
            client = SupervisorClient(self._service_event, self._services_supervisor_gone)
            client.start(self._base_environment(), job.owner if job else runner_owner(),
                         job.job_id if job else "-", job.job_dir if job else None,
                         services=True)
            self._service_client = client
        return self._service_client

    def _service_event(self, event: dict[str, Any]) -> None:
        kind, key = event.get("ev"), str(event.get("key"))
        if kind == "started":
            handle = ProcessHandle(int(event["pid"]), event.get("start"))
            if event.get("drained"):
                handle.drained.set_result(None)
            self._service_procs[key] = handle
            future = self._service_starting.pop(key, None)
            if future is not None and not future.done():
                future.set_result(handle)
        elif kind == "failed":
            future = self._service_starting.pop(key, None)
            if future is not None and not future.done():
                future.set_exception(OSError(str(event.get("error"))))
        elif (known := self._service_procs.get(key)) is not None:
            if kind == "exited":
                known.end(int(event["status"]))
            elif kind == "drained" and not known.drained.done():
                known.drained.set_result(None)

    def _services_supervisor_gone(self) -> None:
        for future in self._service_starting.values():
            if not future.done():
                future.set_exception(OSError("the services' supervisor ended"))
        self._service_starting.clear()
        for handle in self._service_procs.values():
            handle.lost()

    # -- the hooks ---------------------------------------------------------------------------

    async def start_service(self, service: Service, out_dir: Path) -> str:
        argv = service.argv
        if argv is None:
            raise StartError(f"service '{service.id}' has no command", spawner=self.name)
        key = service.id
        future: asyncio.Future[ProcessHandle] = asyncio.get_running_loop().create_future()
        self._service_starting[key] = future
        masked = [*self.job.masked, *service.secret_values()] if self.job is not None else []
        self._services_supervisor().send({
            "op": "spawn", "key": key, "argv": argv, "cwd": None, "out": str(out_dir),
            "env": {**service.environment(), SERVICE_VARIABLE: service.id},
            "mask": masked,
        })
        try:
            await future
        except OSError as exc:
            raise StartError(f"cannot start {argv[0]!r}", spawner=self.name,
                             engine_message=str(exc)) from exc
        return key

    async def service_alive(self, handle: str) -> bool:
        found = self._service_procs.get(handle)
        return found is not None and not found.ended

    async def service_ready(self, handle: str, service: Service) -> bool:
        argv = service.ready_argv
        if argv is None:
            return True
        env = {**self._base_environment(), **service.environment()}
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=env, start_new_session=True)
        try:
            return await proc.wait() == 0
        finally:
            if proc.returncode is None:  # the wait was called off: nothing of it stays
                signal_group(proc.pid, signal.SIGKILL)
                with contextlib.suppress(ProcessLookupError):
                    await asyncio.shield(proc.wait())

    async def stop_service(self, handle: str, grace_period: float) -> ExitResult | None:
        found = self._service_procs.get(handle)
        if found is None:
            return None
        stop = self._service_stops.get(handle)
        if stop is None:
            stop = self._service_stops[handle] = asyncio.ensure_future(
                self._stop_process(handle, found, grace_period))
        elif grace_period <= 0:
            signal_group(found.pid, signal.SIGKILL)  # stopping with grace: no more of it
        return await asyncio.shield(stop)

    async def _stop_process(self, key: str, found: ProcessHandle,
                            grace_period: float) -> ExitResult:
        try:
            await kill_group(found.pid, grace_period)
            for future, wait in ((found.exited, _EXIT_WAIT), (found.drained, _DRAIN_WAIT)):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(future), wait)
            return found.exit_result()
        finally:
            self._service_procs.pop(key, None)

    async def end_previous_services(self) -> None:
        """The services a dead runner of this job left (its services supervisor's children):
        ended at once, so that a resume starts its own."""
        job = self.job
        if job is None:
            return
        groups = [child for sup in supervisors()
                  if sup.services and sup.job_id == job.job_id and not owner_alive(sup.owner)
                  for child, fields in live_processes()
                  if fields[1] == str(sup.pid) and int(fields[2]) == child]
        await asyncio.gather(*(kill_group(pgid, 0.0) for pgid in groups))

    async def close_services(self) -> None:
        """The services' supervisor ends what they left outside their groups, then exits."""
        client, self._service_client = self._service_client, None
        if client is not None:
            grace = self.options.grace_period
            await client.close(grace, grace + _EXIT_WAIT)

