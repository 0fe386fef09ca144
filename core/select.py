"""Which tasks of a task file a run takes: `--only`, `--exclude`, `-k`, and what they need.

A matrix task's own id (`unit`) names every one of its expansions (`unit[python=3.11]`, ...),
as it does in `depends_on`; an expansion's id names that expansion alone."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from spawnkit.core.errors import UsageError
from spawnkit.core.task.description import Task

__all__ = ["BETWEEN_IDS", "Selection", "select_tasks", "split_ids"]


@dataclass
class Selection:
    """The tasks to run (in file order) and one note for each choice a person may not expect."""

    tasks: list[Task]
    notes: list[str] = field(default_factory=list)


#: The commas between the ids of `--only a,b` (not those inside a matrix id's brackets).
BETWEEN_IDS = re.compile(r",(?![^\[\]]*\])")


def split_ids(values: Iterable[str]) -> list[str]:
    """`--only a,b --only c` -> [a, b, c]; blanks dropped; `unit[python=3.11,db=pg]` is one."""
    return [part.strip() for value in values for part in BETWEEN_IDS.split(value)
            if part.strip()]


def _named(ids: Sequence[str], tasks: Sequence[Task]) -> list[str]:
    """The task ids `ids` names, a matrix task's id standing for its expansions; raises
    UsageError naming the ids that name no task."""
    known = {t.id for t in tasks}
    groups: dict[str, list[str]] = {}
    for task in tasks:
        if task.matrix_of is not None:
            groups.setdefault(task.matrix_of, []).append(task.id)
    unknown = [i for i in ids if i not in known and i not in groups]
    if unknown:
        raise UsageError("no task with id " + ", ".join(f"'{i}'" for i in dict.fromkeys(unknown)))
    return [found for i in ids for found in ([i] if i in known else groups[i])]


def select_tasks(
    tasks: Sequence[Task],
    *,
    only: Sequence[str] = (),
    exclude: Sequence[str] = (),
    keywords: Sequence[str] = (),
) -> Selection:
    """Narrow `tasks` to the selection and the dependencies it needs.

    `only` and `keywords` each narrow (both given: a task must pass both); a task matches the
    keywords when its id contains any of them. Dependencies of a chosen task are pulled in
    unless excluded; then the task is left out too, with a note saying why. A teardown task
    comes along when something it cleans up after runs. Raises UsageError on an unknown id or
    an empty selection.
    """
    by_id = {t.id: t for t in tasks}
    named_only = set(_named(only, tasks))
    excluded = set(_named(exclude, tasks))
    filtering = bool(only or keywords)
    chosen = {
        t.id
        for t in tasks
        if (not only or t.id in named_only)
        and (not keywords or any(k in t.id for k in keywords))
        and t.id not in excluded
    }
    if filtering and not chosen:
        what = [f"--only {','.join(only)}"] if only else []
        what += [f"-k {k}" for k in keywords]
        raise UsageError(f"no task matches {' '.join(what)}" + _minus(excluded))
    notes: list[str] = []
    wanted = _with_dependencies(chosen, by_id, excluded, notes, filtering)
    if filtering:
        wanted |= _teardowns(tasks, wanted, excluded, notes)
    if not wanted:
        why = "".join(f"; {note}" for note in notes)
        raise UsageError(f"nothing left to run{_minus(excluded)}{why}")
    selected = [_narrowed(t, wanted) for t in tasks if t.id in wanted]
    return Selection(selected, notes)


def _minus(excluded: set[str]) -> str:
    return f" once --exclude takes out {', '.join(sorted(excluded))}" if excluded else ""


def _with_dependencies(
    chosen: set[str], by_id: dict[str, Task], excluded: set[str], notes: list[str],
    filtering: bool,
) -> set[str]:
    """`chosen` plus what it needs; a task whose needs are excluded is dropped."""
    wanted: set[str] = set()
    blocked: dict[str, str] = {}  # task -> excluded task it needs, maybe through others

    def visit(start: str) -> str | None:
        """The excluded task `start` needs, through others or not; None when all it needs is
        wanted (then it is too). A loop with a stack, not recursion: a chain of thousands
        of tasks is a plain task file."""
        if start in wanted or start in blocked:
            return blocked.get(start)
        stack = [(start, iter(by_id[start].depends_on))]
        on_path = {start}  # a cycle is the plan's to report, not a loop here
        while stack:
            task_id, deps = stack[-1]
            missing = None
            for dep in deps:
                if dep in wanted or dep in on_path:
                    continue
                if dep in blocked or dep in excluded:
                    missing = blocked.get(dep, dep)
                    break
                stack.append((dep, iter(by_id[dep].depends_on)))
                on_path.add(dep)
                break
            else:
                stack.pop()
                on_path.discard(task_id)
                wanted.add(task_id)
                continue
            if missing is not None:
                for blocked_id, _ in stack:  # each on the way needs it too
                    blocked[blocked_id] = missing
                return missing
        return None

    for task_id in sorted(chosen):
        missing = visit(task_id)
        if missing is not None:
            notes.append(f"'{task_id}' is left out: it needs '{missing}', which is excluded")
    if filtering:
        pulled = sorted(wanted - chosen)
        if pulled:
            notes.append("pulled in as dependencies: " + ", ".join(pulled))
    return wanted


def _teardowns(
    tasks: Sequence[Task], wanted: set[str], excluded: set[str], notes: list[str]
) -> set[str]:
    """Teardowns of what runs, so a narrowed run still cleans up after itself."""
    found = {
        t.id
        for t in tasks
        if t.teardown and t.id not in wanted and t.id not in excluded
        and any(dep in wanted for dep in t.depends_on)
    }
    if found:
        notes.append("teardown pulled in: " + ", ".join(sorted(found)))
    return found


def _narrowed(task: Task, wanted: set[str]) -> Task:
    """A teardown pulled in waits only for what runs (the rest never starts)."""
    kept = tuple(d for d in task.depends_on if d in wanted)
    return task if kept == task.depends_on else dataclasses.replace(task, depends_on=kept)
