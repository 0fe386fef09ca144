"""From a task file's tasks to what the worker is given: checked for cycles, teardowns
ordered, in a run order where every task comes after what it depends on.

The graph is the scheduler's `Dependencies`, so task files and `DependencyTaskGroup` agree
on what a dependency means.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from spawnkit.core.dependencies import CircularDependencyException, Dependencies
from spawnkit.core.task.description import Task

__all__ = ["cycles_in", "dependency_graph", "plan", "run_order"]


def dependency_graph(tasks: Sequence[Task]) -> Dependencies[str]:
    deps = Dependencies([(t.id, None) for t in tasks])
    for task in tasks:
        for required in task.depends_on:
            deps += (task.id, required)
    return deps


def cycles_in(requires: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Cycles of `requires` (key -> the keys it depends on), each as a path (`[a, b, a]`):
    one for each set of keys no cycle found before goes through (a and b in a loop, x and y
    in another: both, not only the first)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[list[str]] = []
    told: set[str] = set()
    for start in requires:
        if start in state:
            continue
        # Depth first, with a stack of (key, its dependencies left): no recursion limit.
        path = [start]
        stack = [(start, iter(requires.get(start, ())))]
        state[start] = 1
        while stack:
            key, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                stack.pop()
                path.pop()
                state[key] = 2
            elif state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep]
                if told.isdisjoint(cycle):
                    found.append(cycle)
                    told.update(cycle)
            elif dep not in state:
                state[dep] = 1
                path.append(dep)
                stack.append((dep, iter(requires.get(dep, ()))))
    return found


def _with_teardown_order(tasks: Sequence[Task]) -> list[Task]:
    """Teardowns wait for everything that uses what they tear down, and for the teardowns
    of what depends on it: services stop in reverse dependency order, whatever the results.
    """
    teardowns = [t for t in tasks if t.teardown]
    if not teardowns:
        return list(tasks)
    deps = dependency_graph(tasks)
    is_teardown = {t.id: t.teardown for t in tasks}

    def users(target: str) -> set[str]:
        return {k for k in deps[target] if k != target and not is_teardown[k]}

    out = []
    for task in tasks:
        if not task.teardown:
            out.append(task)
            continue
        after: set[str] = set()
        for target in task.depends_on:
            after |= users(target)
        for other in teardowns:
            if other.id == task.id:
                continue
            # The other tears down something built on ours: it stops first.
            if any(o in users(t) for t in task.depends_on for o in other.depends_on):
                after.add(other.id)
        after -= set(deps[task.id])  # never wait on what waits on us
        extra = tuple(t.id for t in tasks if t.id in after and t.id not in task.depends_on)
        out.append(dataclasses.replace(task, depends_on=task.depends_on + extra))
    return out


def run_order(tasks: Sequence[Task]) -> list[Task]:
    """Stable topological order: as written, but never before a dependency."""
    placed: set[str] = set()
    pending = list(tasks)
    order: list[Task] = []
    while pending:
        ready = next((t for t in pending if all(d in placed for d in t.depends_on)), None)
        if ready is None:
            raise CircularDependencyException(cycle=str(dependency_graph(pending).graph()))
        pending.remove(ready)
        order.append(ready)
        placed.add(ready.id)
    return order


def plan(tasks: Sequence[Task]) -> list[Task]:
    """What the worker runs: teardowns ordered, dependencies first."""
    return run_order(_with_teardown_order(tasks))
