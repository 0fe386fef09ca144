"""Sharding: one job's tasks split across CI machines, each running one share (`--shard I/N`).

Every machine computes the same split from the same inputs (the planned tasks, and the same
past durations), so the shares never overlap and together hold every task. A connected group
of tasks (by `depends_on`, teardowns included) always goes to one share whole: no machine
waits for a dependency another runs. With past durations the groups are placed longest first,
each on the share with the least time so far (a task with no past duration counts as the
median of those known); without, each on the share with the fewest tasks so far, which for
single tasks is round-robin in plan order.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from spawnkit.core.errors import UsageError
from spawnkit.core.task.description import Task

__all__ = [
    "CI_SHARD_VARIABLES",
    "Shard",
    "Split",
    "parse_shard",
    "read_durations",
    "shard_from_environment",
    "split_tasks",
]


@dataclass(frozen=True)
class Shard:
    """Share `index` (from 1) of `total`."""

    index: int
    total: int

    def __str__(self) -> str:
        return f"{self.index}/{self.total}"


#: CI systems' own variables for "this is job I of N": (index, total, the index of the first).
CI_SHARD_VARIABLES = (
    ("CI_NODE_INDEX", "CI_NODE_TOTAL", 1),  # GitLab, `parallel: N`
    ("BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT", 0),  # Buildkite, `parallelism`
)

_SHARD = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]+)\s*")
#: Ids a note names at most (a job of hundreds of tasks would fill the log).
_SHOWN = 20


def parse_shard(text: str, where: str = "--shard") -> Shard:
    """`2/3` -> Shard(2, 3); raises UsageError in words naming `where`."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise UsageError(f"{where}: '{text}' is not I/N (such as 1/2: the first of two shares)")
    index, total = int(match.group(1)), int(match.group(2))
    if total < 1 or not 1 <= index <= total:
        raise UsageError(f"{where}: '{text}': I must be from 1 to N, and N at least 1")
    return Shard(index, total)


def shard_from_environment(environ: Mapping[str, str] = os.environ) -> tuple[Shard, str] | None:
    """The CI's own share of this job, and the variables that said so; None outside one."""
    for index_name, total_name, first in CI_SHARD_VARIABLES:
        index, total = environ.get(index_name, "").strip(), environ.get(total_name, "").strip()
        where = f"{index_name}/{total_name}"
        if not index and not total:
            continue
        if not index and total == "1":
            # GitLab sets CI_NODE_TOTAL=1 in every job without `parallel:`, and no index: the
            # one share, all of it (--durations then balances nothing, as with --shard 1/1).
            return Shard(1, 1), where
        if not (total and index):
            # Half a share: run everything, or guess? Neither: said, as a bad value is.
            raise UsageError(f"{where}: only one of the two is set ('{index}/{total}'): set "
                             "both, or give --shard")
        if not (index.isascii() and index.isdigit() and total.isascii() and total.isdigit()):
            raise UsageError(f"{where}: '{index}/{total}' are not whole numbers (or give --shard)")
        number, count = int(index) - first + 1, int(total)
        if count < 1:
            raise UsageError(f"{where}: '{index}/{total}': the total must be at least 1")
        if not 1 <= number <= count:
            raise UsageError(f"{where}: '{index}/{total}': the index must be from {first} to "
                             f"{count - 1 + first}")
        return Shard(number, count), where
    return None


def read_durations(paths: Sequence[Path]) -> dict[str, float]:
    """Task id -> seconds, from the results.json of earlier runs (a later file wins). Tasks
    that did not run (no duration) are left out. Raises UsageError for a file that is not
    a spawnkit results.json."""
    found: dict[str, float] = {}
    for path in paths:
        where = f"--durations {path}"
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UsageError(f"{where}: no such file") from None
        except OSError as exc:
            raise UsageError(f"{where}: cannot read: {exc.strerror}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UsageError(f"{where}: not JSON ({exc})") from None
        tasks = data.get("tasks") if isinstance(data, dict) else None
        if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
            raise UsageError(f"{where}: not a spawnkit results.json (no 'tasks' list)")
        for task in tasks:
            tid, seconds = task.get("id"), task.get("duration")
            if (isinstance(tid, str) and isinstance(seconds, int | float)
                    and not isinstance(seconds, bool) and seconds >= 0):
                found[tid] = float(seconds)
    return found


@dataclass
class Split:
    """Every share's tasks (in plan order) and its weight: seconds, or a count of tasks."""

    shares: list[list[Task]]
    weights: list[float]
    by_duration: bool

    def describe(self, shard: Shard) -> str:
        """One line: what this share got, and the others for comparison."""
        mine = self.shares[shard.index - 1]
        total = sum(len(s) for s in self.shares)
        how = "by past duration" if self.by_duration else "by count"
        each = ", ".join(f"{i}/{shard.total} {len(s)} task(s)" + self._seconds(w)
                         for i, (s, w) in enumerate(zip(self.shares, self.weights,
                                                        strict=True), 1))
        ids = ", ".join(t.id for t in mine[:_SHOWN]) if mine else "nothing"
        if len(mine) > _SHOWN:
            ids += f" and {len(mine) - _SHOWN} more ('spawnkit list --shard' shows all)"
        return f"shard {shard}: {len(mine)} of {total} task(s) ({how}; {each}): {ids}"

    def _seconds(self, weight: float) -> str:
        return f" ~{weight:.1f} s" if self.by_duration else ""


def split_tasks(
    tasks: Sequence[Task], total: int, durations: Mapping[str, float] | None = None
) -> Split:
    """Split planned tasks into `total` shares; see the module's docstring."""
    groups = _connected_groups(tasks)
    by_duration = durations is not None
    if durations is not None:
        known = [durations[t.id] for t in tasks if t.id in durations]
        fallback = statistics.median(known) if known else 1.0
        weight = [sum(durations.get(t.id, fallback) for t in g) for g in groups]
        # Longest first; among equals, plan order (sorted is stable), the same on every machine.
        order = sorted(range(len(groups)), key=lambda i: -weight[i])
    else:
        weight = [float(len(g)) for g in groups]
        order = list(range(len(groups)))
    loads = [0.0] * total
    member: dict[str, int] = {}
    for i in order:
        share = min(range(total), key=lambda s: (loads[s], s))
        loads[share] += weight[i]
        for task in groups[i]:
            member[task.id] = share
    shares: list[list[Task]] = [[] for _ in range(total)]
    for task in tasks:
        shares[member[task.id]].append(task)
    return Split(shares, loads, by_duration)


def _connected_groups(tasks: Sequence[Task]) -> list[list[Task]]:
    """Tasks joined by a dependency either way, each group in plan order, the groups in the
    order of their first task."""
    parent = {t.id: t.id for t in tasks}

    def root(tid: str) -> str:
        while parent[tid] != tid:
            parent[tid] = parent[parent[tid]]
            tid = parent[tid]
        return tid

    for task in tasks:
        for dep in task.depends_on:
            if dep in parent:
                parent[root(task.id)] = root(dep)
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(root(task.id), []).append(task)
    return list(groups.values())
