"""The label each Slurm job carries in its comment: whose it is, so `spawnkit gc` tells the
jobs of dead runners apart with no other record, and who cancelled it.

    spawnkit:owner=HOST:PID:START;job=JOB_ID;task=TASK[;dir=JOB_DIR][;cancel=WHO]

No spaces: `scontrol -o` splits on them. The task is its folder name (core.paths.safe_name),
which holds none of `;=` either; the job's folder is percent-encoded. The folder lets gc ask
the job itself whether a runner holds it (`spawnkit resume`), whatever index of runs the gc
reads, as a container's and a Pod's labels let it. The comment can be changed on a live job
(`scontrol update`), and the change survives the job's end: before spawnkit cancels a job
outright it adds `cancel=spawnkit` (or `cancel=gc`), so a job CANCELLED without it was
cancelled by someone else (Slurm itself does not say who).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from spawnkit.core.owner import owner_alive
from spawnkit.core.paths import safe_name

__all__ = ["PREFIX", "Label", "probe_label", "task_label"]

PREFIX = "spawnkit:"
#: The task name of the job that checks a node can write to the job folder.
PROBE_TASK = ".node-check"


@dataclass(frozen=True)
class Label:
    owner: str
    job: str
    task: str
    cancel: str | None = None
    job_dir: str | None = None

    @property
    def comment(self) -> str:
        text = f"{PREFIX}owner={self.owner};job={self.job};task={self.task}"
        if self.job_dir is not None:
            text += f";dir={quote(self.job_dir, safe='/', errors='surrogateescape')}"
        return text if self.cancel is None else f"{text};cancel={self.cancel}"

    def cancelled_by(self, who: str) -> Label:
        return dataclasses.replace(self, cancel=who)

    @property
    def orphaned(self) -> bool:
        """Its runner is gone (on this host: see core.owner.owner_alive)."""
        return not owner_alive(self.owner)

    @classmethod
    def parse(cls, comment: str) -> Label | None:
        """The label of a comment, None when it is not one of ours."""
        if not comment.startswith(PREFIX):
            return None
        fields: dict[str, str] = {}
        for part in comment[len(PREFIX):].split(";"):
            key, sep, value = part.partition("=")
            if not sep:
                return None
            fields[key] = value
        if not all(fields.get(k) for k in ("owner", "job", "task")):
            return None
        folder = fields.get("dir")
        return cls(fields["owner"], fields["job"], fields["task"], fields.get("cancel"),
                   unquote(folder, errors="surrogateescape") if folder else None)


def task_label(owner: str, job_id: str, task_id: str, job_dir: Path | None = None) -> Label:
    return Label(owner, safe_name(job_id), safe_name(task_id),
                 job_dir=None if job_dir is None else str(job_dir))


def probe_label(owner: str, job_id: str, job_dir: Path | None = None) -> Label:
    return Label(owner, safe_name(job_id), PROBE_TASK,
                 job_dir=None if job_dir is None else str(job_dir))
