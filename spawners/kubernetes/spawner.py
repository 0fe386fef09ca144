"""The Kubernetes backend: each task a Pod of its own; handle = the Pod's name.

Pods are made through the official client (`api.py`), from plain v1 manifests (`pod.py`).
One label-selector listing per poll answers for all of the job's Pods (`PodWatch`): whether
each runs, has started, has ended. A task counts as started once its container runs (a Pod
may wait minutes for a node or an image): `spawn_task` waits for that, within bounds, so a
Pod Pending for ever ends as an error that quotes the kubelet or the scheduler. spawnkit's own
timer times tasks out; a stop is TERM to every process of the task, its grace, then KILL
(`stop.py`). The outcome is read from the Pod's status and its whole output (stdout and
stderr apart, `logs.py`) from the API before the Pod is deleted, or kept (`--keep-failed`).
A resumed job's runner takes its Pods over by their names (`adopt.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence

from spawnkit.core.errors import BackendError, RequirementError, StartError
from spawnkit.core.output import TaskOutput
from spawnkit.core.spawner import JobContext, Spawner, SpawnerOptions
from spawnkit.core.task.description import Task
from spawnkit.core.task.outcome import ExitResult
from spawnkit.core.task.runtime import RuntimeTask
from spawnkit.spawners.container.keep import keeps
from spawnkit.spawners.container.spec import KEEP_ALL, KEEP_FAILED
from spawnkit.spawners.kubernetes import reap
from spawnkit.spawners.kubernetes.adopt import adopt_pod
from spawnkit.spawners.kubernetes.api import KubeApi, api_message, connect
from spawnkit.spawners.kubernetes.backstop import set_backstop
from spawnkit.spawners.kubernetes.logs import PodLog
from spawnkit.spawners.kubernetes.outcome import PodHandle, cannot_execute, exit_result
from spawnkit.spawners.kubernetes.pod import (
    LABEL_JOB,
    LABEL_MANAGED,
    PodPlan,
    check_mount_sources,
    label_value,
    pod_plan,
    user_ids,
)
from spawnkit.spawners.kubernetes.release import free_name, keep_files, kept_note, remove
from spawnkit.spawners.kubernetes.start import wait_started
from spawnkit.spawners.kubernetes.state import PodState
from spawnkit.spawners.kubernetes.stop import stop_pod
from spawnkit.spawners.kubernetes.watch import PodWatch

__all__ = ["KubernetesSpawner"]

LOG = logging.getLogger(__name__)


class KubernetesSpawner(Spawner):
    """Runs each task in a Pod of its own, in one namespace of one cluster."""

    name = "kubernetes"
    takes_engine_url = True  # the API server; credentials from the kubeconfig
    #: One listing of the job's Pods per poll. The kubelet reports an exit 0.5-1 s after it
    #: (its relist period is 1 s): polling faster would see nothing sooner.
    poll_interval = 0.2
    #: Seconds an image may fail to pull (ErrImagePull, ImagePullBackOff) before the task
    #: ends as error: a registry may be away for a moment, the kubelet then tries again.
    pull_wait = 30.0
    #: Seconds a Pod may stay Pending otherwise (no node fits, a volume is slow).
    pending_wait = 300.0
    #: Seconds an ended Pod's status may take to show its end (the kubelet's relist and
    #: status sync), or a KILLed one to end.
    end_wait = 10.0
    #: Seconds past the grace that the exec which stops a task may take.
    exec_margin = 5.0

    def __init__(self, options: SpawnerOptions | None = None) -> None:
        super().__init__(options)
        self._api: KubeApi | None = None
        self._watch: PodWatch | None = None
        self._handles: dict[str, PodHandle] = {}
        self._logs: dict[str, PodLog] = {}
        self._stopping = False

    # -- job -----------------------------------------------------------------------------------

    async def open(self, job: JobContext | None) -> None:
        await super().open(job)
        api, version = await connect(self.options.engine_url, self.name, for_tasks=job is not None)
        LOG.info("kubernetes: API server %s (%s), namespace %s", api.url, version,
                 api.namespace)
        self._api = api
        self._watch = PodWatch(api.url, self.options.engine_down_after, self.poll_interval)

    def stopping(self) -> None:
        self._stopping = True
        if self._api is not None:
            self._api.stopping = True

    async def close(self) -> None:
        api, watch = self._api, self._watch
        if api is None or watch is None:
            return
        watch.close()
        for log in self._logs.values():
            log.abandon()
        if self._handles and watch.down is None:
            # Tasks whose stop or collection was abandoned (a second signal): their Pods go
            # now, within a bound; what is left then is for `spawnkit gc`.
            left, keep = list(self._handles.values()), self.options.keep_containers
            removals = [asyncio.ensure_future(self._remove(h, keep=keep)) for h in left]
            await asyncio.wait(removals, timeout=3.0)
            for handle, removal in zip(left, removals, strict=True):
                if not removal.done() or removal.exception() is not None:
                    removal.cancel()
                    LOG.warning("kubernetes: Pod %s is left to 'spawnkit gc'", handle.name)
        api.close()

    def _ready(self) -> tuple[KubeApi, PodWatch]:
        if self._api is None or self._watch is None:
            raise BackendError("spawner used before open()", spawner=self.name)
        return self._api, self._watch

    def _job(self) -> JobContext:
        if self.job is None:
            raise BackendError("spawner used before open()", spawner=self.name)
        return self.job

    async def _refresh(self) -> None:
        api, watch = self._ready()
        selector = f"{LABEL_JOB}={label_value(self._job().job_id)}"
        await watch.refresh(lambda: api(api.pods, selector), self.notify)
        for name, log in self._logs.items():
            handle = self._handles.get(name)
            state = watch.get(name, handle.uid if handle is not None else None)
            if state is not None:
                log.known(state.container_ids)
                if not state.pending:
                    log.start()
                    if handle is not None:
                        handle.began = True

    # -- triage --------------------------------------------------------------------------------

    def image_of(self, task: Task) -> str | None:
        return task.image or self.options.image

    def cannot_run(self, task: Task) -> str | None:
        if task.services:
            return ("services ([[service]]) do not run on kubernetes yet (they would be "
                    "sidecar containers of the task's Pod); use process, docker or podman")
        if task.build is not None:
            return (f"image '{task.build.name}' is built by the task file ([image."
                    f"{task.build.name}]): the kubernetes backend builds no image (its nodes "
                    "pull theirs); push it to a registry and name it, or use docker or podman")
        if self.image_of(task) is None:
            return ("no image for a kubernetes task: set 'image' in the task or [defaults], "
                    "or give --image")
        return None

    async def check_task_requirements(self, runtime_task: RuntimeTask) -> None:
        # Images are pulled by the node's kubelet: a missing one shows once the Pod exists.
        problem = self.cannot_run(runtime_task.task)
        if problem is not None:
            raise RequirementError(problem, spawner=self.name)

    def unenforced(self, task: Task) -> list[str]:
        out = []
        limits = task.limits
        if limits.pids is not None:
            out.append("pids")  # the v1 Pod has no such field: the kubelet's podPidsLimit
        if limits.network == "none":
            out.append("network")  # a Pod is always on the pod network or the node's
        if limits.user is not None and user_ids(limits.user) is None:
            out.append("user")  # a Pod takes numeric IDs only
        return out

    # -- spawn ---------------------------------------------------------------------------------

    async def spawn_task(self, runtime_task: RuntimeTask) -> None:
        api, watch = self._ready()
        if watch.down is not None:
            raise StartError(f"not started: {watch.down.message}", spawner=self.name,
                             engine_message=watch.down.engine_message)
        task = runtime_task.task
        out_dir = runtime_task.output_dir
        image = self.image_of(task)
        if out_dir is None or image is None:
            raise StartError("task has no output folder or no image", spawner=self.name)
        self.check_host_folder(task, task.host_workdir())
        check_mount_sources(task, self.name)
        out_dir.mkdir(parents=True, exist_ok=True)
        options = self.options
        keep = KEEP_ALL if options.keep_containers else (
            KEEP_FAILED if options.keep_failed else None)
        plan = pod_plan(task, self._job(), image, grace=options.grace_period, keep=keep,
                        attempt=runtime_task.attempt)
        handle, state = await self._start(runtime_task, plan, image, with_secret=True)
        if state is not None and state.no_shell and plan.split:
            # No `sh` in the image for the wrapper that keeps stderr apart: the task never
            # ran. Made again without it, its stderr then in its stdout.
            LOG.info("kubernetes: %s has no sh: the task's stderr goes to its stdout", image)
            self._handles.pop(plan.name, None)
            self._logs.pop(plan.name).abandon()
            handle.secret = None  # the next Pod takes its values too
            await free_name(api, handle, self.end_wait, self.poll_interval)
            plan = pod_plan(task, self._job(), image, grace=options.grace_period, keep=keep,
                            attempt=runtime_task.attempt, split=False)
            handle, state = await self._start(runtime_task, plan, image, with_secret=False)
        # The timeout is the task's own time: the worker sets its deadline once this returns,
        # when the container runs (or has ended), so what the Pod waited for a node and its
        # image (bounded apart) does not count, as a Slurm job's queue time does not.
        runtime_task.spawner_handle = plan.name
        runtime_task.spawning_result = {
            "pod": plan.name, "uid": handle.uid, "namespace": api.namespace,
            "node": state.node if state is not None else None, "image": image,
            "api_server": api.url, "applied": plan.applied,
        }

    async def _start(self, runtime_task: RuntimeTask, plan: PodPlan, image: str, *,
                     with_secret: bool) -> tuple[PodHandle, PodState | None]:
        """Make the Pod (and its Secret), and wait until its task runs (wait_started)."""
        api, watch = self._ready()
        task, job = runtime_task.task, self._job()
        handle = PodHandle(plan.name, "", image, 0.0, secret=plan.name if plan.secret else None)
        try:
            if plan.secret is not None and with_secret:
                await api(api.create_secret, plan.secret, retry=False)
            made = await api(api.create_pod, plan.pod, retry=False)
        except Exception as exc:
            await self._remove(handle, keep=False)
            raise StartError(f"cannot create Pod {plan.name} of '{image}'", spawner=self.name,
                             handle=plan.name, engine_message=api_message(exc)) from exc
        handle.uid = str((made.get("metadata") or {}).get("uid", ""))
        handle.spawned_at = time.monotonic()
        self._handles[plan.name] = handle
        assert runtime_task.output_dir is not None
        self._logs[plan.name] = log = PodLog(
            api, plan.name, handle.uid,
            TaskOutput(runtime_task.output_dir, job.masked_for(task)), split=plan.split)
        try:
            state = await wait_started(
                watch, self._refresh, handle, workdir_words=task.workdir_words,
                pull_wait=self.pull_wait, pending_wait=self.pending_wait,
                poll=self.poll_interval, stopping=lambda: self._stopping)
        except BaseException:
            await self._remove(handle, keep=False)
            self._handles.pop(plan.name, None)
            self._logs.pop(plan.name, None)
            log.abandon()
            raise
        if state is not None and not state.pending and not state.no_shell:
            handle.began = True
            log.start()
            if not state.ended:
                await set_backstop(api, handle, job.timeout_of(task), self.options.grace_period)
        return handle, state

    async def adopt_task(self, runtime_task: RuntimeTask) -> None:
        api, _watch = self._ready()
        handle, log = await adopt_pod(api, self._job(), runtime_task)
        self._handles[handle.name] = handle
        self._logs[handle.name] = log

    # -- monitor -------------------------------------------------------------------------------

    async def refresh(self, runtime_tasks: Sequence[RuntimeTask]) -> None:
        for log in self._logs.values():
            log.idle()
        await self._refresh()

    async def is_task_alive(self, runtime_task: RuntimeTask) -> bool:
        _api, watch = self._ready()
        handle = self._handles.get(runtime_task.spawner_handle or "")
        if handle is None or watch.down is not None:
            return False  # collect_task says why
        state = watch.get(handle.name, handle.uid)
        if state is None:
            return not watch.seen_since(handle.spawned_at)
        if state.ended:
            return False
        if state.pending:
            # Handed over still Pending (a stop, a deadline): the same bounds as at the start.
            if state.fatal() is not None:
                return False
            return time.monotonic() - handle.spawned_at < self.pending_wait
        return True

    async def _wait_end(self, handle: PodHandle, within: float) -> PodState | None:
        _api, watch = self._ready()
        return await watch.wait_end(self._refresh, handle.name, handle.spawned_at, within,
                                    handle.uid)

    # -- terminate -----------------------------------------------------------------------------

    async def terminate_task(self, runtime_task: RuntimeTask, grace_period: float) -> None:
        api, watch = self._ready()
        handle = self._handles.get(runtime_task.spawner_handle or "")
        if handle is None or watch.down is not None:
            return  # down: collect_task says so; `spawnkit gc` removes the Pod later
        if not handle.began:
            await self._refresh()  # a fresh look: Pending a poll ago, it may run now
        state = watch.get(handle.name, handle.uid)
        if state is not None and state.ended:
            # Seen ended before any stop of ours: its own exit stands.
            handle.ended_first = handle.ended_first or not handle.stop_began
            return
        try:
            if state is None or state.pending:
                # Nothing of the task runs yet: no grace to give.
                handle.deleted, handle.never_ran = True, not handle.began
                await api(api.delete_pod, handle.name, 0, handle.uid)
                return
            if await stop_pod(api, handle, grace_period, self.exec_margin):
                return
        except Exception as exc:
            raise BackendError(f"cannot stop Pod {handle.name}", spawner=self.name,
                               handle=handle.name, engine_message=api_message(exc)) from exc
        await self._wait_end(handle, grace_period + self.end_wait)

    # -- collect -------------------------------------------------------------------------------

    async def collect_task(self, runtime_task: RuntimeTask) -> ExitResult:
        api, watch = self._ready()
        name = runtime_task.spawner_handle or ""
        handle = self._handles.get(name)
        if handle is None:
            return ExitResult(exit_code=None, error="task was never started")
        log, kept = self._logs.pop(name), self.options.keep_containers
        try:
            down = watch.down
            if down is not None:
                log.abandon()
                raise BackendError(
                    f"{down.message}: Pod {name} is removed by 'spawnkit gc' once the API "
                    "server answers", spawner=self.name, handle=name,
                    engine_message=down.engine_message)
            # Stopped by spawnkit, its end seen from inside: the kubelet reports it about a
            # second later (its relist period). The status is taken if it is there already;
            # waiting for it would add that second to every stopped task.
            state = await self._wait_end(handle, 0.0 if handle.stopped else self.end_wait)
            if not handle.stopped and state is not None and not state.ended and (
                    state.fatal() is None) and (not state.pending or time.monotonic()
                                                - handle.spawned_at < self.pending_wait):
                # Asked to collect a task still running (the worker's own stop failed).
                await self.terminate_task(runtime_task, self.options.grace_period)
                state = await self._wait_end(handle, self.end_wait)
            if state is None or state.pending:
                log.abandon()
            else:
                try:
                    runtime_task.notes += await api(log.finish, not handle.stopped, retry=False)
                except Exception as exc:
                    log.abandon()
                    LOG.warning("kubernetes: output of %s: %s", name, api_message(exc))
            exit = exit_result(state, handle)
            failed = cannot_execute(state)
            if failed is not None and runtime_task.output_dir is not None:
                with open(runtime_task.output_dir / "stderr", "a", encoding="utf-8") as err:
                    err.write(failed[1] + "\n")
            if handle.adopted and state is not None and state.terminated is not None:
                # Both ends in the kubelet's words (whole seconds), not one in the runner's.
                term = state.terminated
                exit = dataclasses.replace(exit, ended_at=term.finished_at,
                                           began_at=term.started_at)
            await self._keep_files(runtime_task, exit)
            kept = state is not None and not state.pending and keeps(
                self.options, exit, stopped=bool(handle.sent or handle.stopped or handle.deleted))
            if kept:
                runtime_task.notes.append(kept_note(name, api.namespace))
            return exit
        finally:
            self._handles.pop(name, None)
            if watch.down is None:  # else each call would wait out its timeout
                await self._remove(handle, keep=kept)

    async def _keep_files(self, runtime_task: RuntimeTask, exit: ExitResult) -> None:
        api, _watch = self._ready()
        await keep_files(api, self.keep_files, runtime_task, exit)

    async def _remove(self, handle: PodHandle, *, keep: bool) -> None:
        api, _watch = self._ready()
        await remove(api, handle, keep_pod=keep)

    # -- orphans -------------------------------------------------------------------------------

    async def reap_orphans(self, *, dry_run: bool = False) -> list[str]:
        """Delete spawnkit's Pods and Secrets whose runner died, at once and in parallel."""
        api, _watch = self._ready()
        selector = f"{LABEL_MANAGED}=true"
        spare = self.options.spare_resumable
        pods = reap.orphans(await api(api.pods, selector), pods=True,
                            kept=self.options.reap_kept, spare_recent=spare)
        secrets = reap.orphans(await api(api.secrets, selector), pods=False, spare_recent=spare)
        if not dry_run:
            await reap.remove_all(pods, lambda n: api(api.delete_pod, n, 0))
            await reap.remove_all(secrets, lambda n: api(api.delete_secret, n))
        return ([reap.describe(p, "Pod") for p in pods]
                + [reap.describe(s, "Secret") for s in secrets])
