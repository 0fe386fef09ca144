"""Why a task failed, in the CI log itself: the last lines of its output, in a group the CI
folds (GitHub Actions' `::group::`, GitLab's collapsible sections; a plain block elsewhere).

A CI reader sees "failed test_basic (exit code 1)" and, right under it, what the task said
last, without downloading an artifact. The output was masked before it reached its files, so
what is shown here holds no secret either.
"""

from __future__ import annotations

import enum
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

import click

from spawnkit.core.junit import read_tail
from spawnkit.core.paths import safe_name
from spawnkit.core.task.outcome import TaskResult

__all__ = ["DEFAULT_TAIL", "Fold", "OutputTails", "ShowOutput", "choose_fold"]

#: Lines of each stream shown, unless --tail says otherwise.
DEFAULT_TAIL = 30


class ShowOutput(enum.StrEnum):
    """--output: whose output goes into the log."""

    FAILED = "failed"
    ALL = "all"
    NONE = "none"


class Fold(enum.Enum):
    """How the CI folds a block of the log."""

    GITHUB = "github"
    GITLAB = "gitlab"
    PLAIN = "plain"


def choose_fold(env: Mapping[str, str]) -> Fold:
    if env.get("GITHUB_ACTIONS") == "true":
        return Fold.GITHUB
    if env.get("GITLAB_CI") == "true":
        return Fold.GITLAB
    return Fold.PLAIN


class OutputTails:
    """The last lines of a finished task's stdout and stderr, folded as the CI folds."""

    def __init__(self, job_dir: Path, show: ShowOutput, lines: int, fold: Fold) -> None:
        self.job_dir = job_dir
        self.show = show
        self.lines = lines
        self.fold = fold

    def wanted(self, result: TaskResult) -> bool:
        if self.show is ShowOutput.NONE or self.lines <= 0:
            return False
        return self.show is ShowOutput.ALL or not result.ok

    def block(self, task_id: str, result: TaskResult, reason: str | None) -> str:
        """The block to print (ending with a line end), or "" when there is nothing."""
        folder = self.job_dir / "tasks" / safe_name(task_id)
        body: list[str] = []
        for stream in ("stdout", "stderr"):
            # Without the task's own colour codes: the block goes out raw, for its markers.
            lines = click.unstyle(read_tail(folder / stream)).splitlines()[-self.lines:]
            if lines:
                body.append(f"--- {stream} (last {len(lines)} lines) ---")
                body += lines
        if not body:
            return ""
        title = f"{task_id}: {result.value}" + (f" ({reason})" if reason else "")
        opening, closing = self._fence(task_id, " ".join(title.split()))
        return "\n".join([opening, *body, closing]) + "\n"

    def _fence(self, task_id: str, title: str) -> tuple[str, str]:
        if self.fold is Fold.GITHUB:
            # What the task printed is not the runner's to obey: a `::error::` or an
            # `::endgroup::` in it stays text (GitHub's stop-commands, with a token the task
            # cannot guess).
            token = secrets.token_hex(16)
            return (f"::group::{title}\n::stop-commands::{token}",
                    f"::{token}::\n::endgroup::")
        if self.fold is Fold.GITLAB:
            # Section names take letters, digits, and _ . -: the task's folder name is made
            # of those, and two ids never share one (`a b` and `a/b` would, cut down).
            name = "spawnkit_" + safe_name(task_id)
            now = int(time.time())
            return (f"\x1b[0Ksection_start:{now}:{name}[collapsed=true]\r\x1b[0K{title}",
                    f"\x1b[0Ksection_end:{now}:{name}\r\x1b[0K")
        return f"=== output of {title} ===", f"=== end of {task_id} ==="
