"""The check, once per job, that a Slurm node can write to the job folder.

Every task's output reaches the runner through the job folder, so it must be on storage the
nodes share. A tiny job submitted with the job's first task writes a file there; if it ends
and the file is not there, the job's tasks not yet submitted fail to start with that said (a
clear error, not a lost result), and those already submitted say it too (their Slurm jobs
fail to launch, or leave no exit in the folder). It is not waited for: on a busy cluster it
queues like any job, and the tasks must not queue behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
import time
from collections.abc import Callable
from pathlib import Path

from spawnkit.core.spawner import JobContext
from spawnkit.core.task.description import SlurmSettings, Task
from spawnkit.spawners.slurm.commands import CommandFailed, SlurmTools
from spawnkit.spawners.slurm.labels import probe_label
from spawnkit.spawners.slurm.watch import QueueWatch

__all__ = ["PROBE_FILE", "STORAGE_LAG", "NodeCheck"]

LOG = logging.getLogger(__name__)

PROBE_FILE = ".slurm-node-check"
#: Seconds a shared folder may take to show a file a node wrote (NFS attribute caches).
STORAGE_LAG = 5.0


class NodeCheck:
    def __init__(self, tools: SlurmTools, watch: QueueWatch, job: JobContext,
                 environment: Callable[[Task | None], dict[str, str]]) -> None:
        self._tools = tools
        self._watch = watch
        self._job = job
        self._environment = environment
        self._file = job.job_dir / PROBE_FILE
        self._submit: asyncio.Future[str | None] | None = None
        self._job_id: str | None = None
        self._ended_at: float | None = None
        self._done = False
        #: Why no node can write to the job folder, once that is known.
        self.problem: str | None = None

    def start(self, settings: SlurmSettings) -> None:
        """Submit the check (once), where the task that asks goes."""
        if self._submit is None:
            self._submit = asyncio.ensure_future(self._submit_probe(settings))

    async def _submit_probe(self, settings: SlurmSettings) -> str | None:
        label = probe_label(self._job.owner, self._job.job_id, self._job.job_dir)
        options = [
            "--parsable", "--no-requeue", "--export=ALL", "--output=/dev/null", "--chdir=/",
            "--time=1", "--job-name=spawnkit-node-check", f"--comment={label.comment}",
        ]
        for flag, value in (("partition", settings.partition), ("account", settings.account),
                            ("qos", settings.qos)):
            if value is not None:
                options.append(f"--{flag}={value}")
        options += list(settings.extra)
        path = shlex.quote(str(self._file))
        script = f"#!/bin/sh\nuname -n >{path}.tmp && mv {path}.tmp {path}\n"
        try:
            done = await self._tools.run("sbatch", *options, stdin=script.encode(),
                                         env=self._environment(None), timeout=30.0)
        except CommandFailed as exc:
            LOG.warning("slurm: the check that a node can write to %s was not submitted: %s",
                        self._job.job_dir, exc)
            return None
        job_id = done.stdout.strip().split(";")[0]
        if done.returncode != 0 or not job_id.isdigit():
            # The task's own sbatch says what is wrong with the options.
            return None
        self._watch.track(job_id)
        return job_id

    def look(self) -> None:
        """After a poll: has the check ended, and what did it find?"""
        if self._done or self._submit is None or not self._submit.done():
            return
        if self._job_id is None:
            self._job_id = self._submit.result()
            if self._job_id is None:
                self._done = True
                return
        state = self._watch.state(self._job_id)
        vanished = state is None and self._watch.seen_since_submit(self._job_id)
        if not (vanished or (state is not None and state.ended)):
            return
        if self._file.exists():
            self._finish()
            return
        now = time.monotonic()
        self._ended_at = self._ended_at or now
        if now - self._ended_at < STORAGE_LAG:
            return
        words = state.words() if state is not None else "unknown to the controller"
        self.problem = (
            f"a Slurm node cannot write to the job folder {self._job.job_dir} (the check job "
            f"{self._job_id} ended {words} and its file is not there): the job folder must "
            "be on storage the nodes share (--results)"
        )
        LOG.warning("slurm: %s", self.problem)
        self._finish()

    def _finish(self) -> None:
        self._done = True
        if self._job_id is not None:
            self._watch.forget(self._job_id)
        for path in (self._file, Path(f"{self._file}.tmp")):
            with contextlib.suppress(OSError):
                path.unlink()

    async def close(self) -> None:
        """Cancel the check if it is still queued; leave no file of it."""
        if self._submit is not None and not self._submit.done():
            self._submit.cancel()
        elif self._submit is not None and not self._done and self._job_id is None:
            self._job_id = self._submit.result()
        if not self._done and self._job_id is not None:
            with contextlib.suppress(CommandFailed):
                await self._tools.run("scancel", self._job_id, timeout=15.0)
        self._finish()
