"""The order tasks are requested in: every task after what it depends on, else as written."""

from __future__ import annotations

from collections.abc import Sequence

from spawnkit.core.task.description import Task

__all__ = ["run_order"]


def run_order(tasks: Sequence[Task]) -> list[Task]:
    """Stable topological order. Assumes a validated file (no cycle, no unknown id)."""
    placed: set[str] = set()
    pending = list(tasks)
    order: list[Task] = []
    while pending:
        for index, task in enumerate(pending):
            if all(dep in placed for dep in task.depends_on):
                order.append(pending.pop(index))
                placed.add(task.id)
                break
        else:
            raise ValueError("circular dependency among: " + ", ".join(t.id for t in pending))
    return order
