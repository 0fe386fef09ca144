"""Errors that carry data: what failed, on which handle, and what the engine said."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "AdoptError",
    "BackendError",
    "EngineUnavailable",
    "RequirementError",
    "ResultsUnwritable",
    "SpawnkitError",
    "StartError",
    "TaskFileError",
    "UsageError",
]


class SpawnkitError(Exception):
    """Base of every error spawnkit raises on purpose."""


class UsageError(SpawnkitError):
    """Bad input on the command line; reported as one line, exit 2."""


class TaskFileError(SpawnkitError):
    """A task file that cannot be used. Each problem is one line naming file and task."""

    def __init__(self, path: str, problems: Sequence[tuple[str | None, str]]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__(path, problems)

    def lines(self) -> list[str]:
        out = []
        for task_id, problem in self.problems:
            where = f"{self.path}: task '{task_id}'" if task_id is not None else self.path
            out.append(_one_line(f"{where}: {problem}"))
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _one_line(text: str) -> str:
    """A problem quotes what the file says (a key, an id), which may hold a line break or a
    control character: escaped, so each problem stays one line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class ResultsUnwritable(SpawnkitError):
    """A job's result files could not be written (a full disk, say): exit 74, EX_IOERR of
    sysexits.h. `job_dir` is the job's folder, `why` the OS's words; `rebuildable` whether its
    journal holds every change, so `spawnkit results` can write them later. `result` is the
    job's result (a core.results.JobResult) when a run raised it: still there to be shown."""

    def __init__(self, job_dir: str, why: str, *, rebuildable: bool) -> None:
        self.job_dir, self.why, self.rebuildable = job_dir, why, rebuildable
        self.result: Any = None
        super().__init__(job_dir, why)

    def __str__(self) -> str:
        text = f"cannot write the results of {self.job_dir}: {self.why}"
        if self.rebuildable:
            return f"{text} (once there is room, `spawnkit results {self.job_dir}` writes them)"
        return f"{text} (its journal misses the last changes too)"


class BackendError(SpawnkitError):
    """A backend failed. `handle` is the task's spawner handle when there is one, and
    `engine_message` the engine's own words."""

    def __init__(
        self,
        message: str,
        *,
        spawner: str | None = None,
        handle: str | None = None,
        engine_message: str | None = None,
    ) -> None:
        self.message = message
        self.spawner = spawner
        self.handle = handle
        self.engine_message = engine_message
        super().__init__(message)

    def __str__(self) -> str:
        text = self.message
        if self.engine_message and self.engine_message not in text:
            text = f"{text}: {self.engine_message}"
        return text


class AdoptError(BackendError):
    """A task an earlier runner started cannot be taken over (`spawnkit resume`): not found,
    or the backend cannot re-attach to it. The task ends as lost, unless `never_ran` (the
    backend knows it never began, and left nothing of it): then it runs now."""

    def __init__(self, message: str, *, never_ran: bool = False, **kwargs: str | None) -> None:
        super().__init__(message, **kwargs)
        self.never_ran = never_ran


class EngineUnavailable(BackendError):
    """The engine cannot be reached at all: nothing can run."""


class RequirementError(BackendError):
    """A task's requirement (an image, say) is not met: FAIL_TRIAGE."""


class StartError(BackendError):
    """The backend could not start a task: FAIL_START."""

    @classmethod
    def folder_missing(cls, words: str, spawner: str | None,
                       handle: str | None = None) -> StartError:
        """The task's working folder (`words`: as its task file says it) does not exist:
        in the same words on every backend."""
        return cls(f"working folder '{words}' does not exist", spawner=spawner, handle=handle)
