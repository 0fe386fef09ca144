"""The queues of the task state machine: ordered sets of runtime tasks, keyed by task id.

The original keeps its queues as a deque and lists, so a membership test or a removal scans
the whole queue: O(n) per move, O(n^2) per job. A `TaskQueue` keeps the same order and the
same deque/list verbs code written against the original uses (`popleft`, `append`,
`pop(0)`, `insert(0, t)`, `remove`, `in`, `len`), each O(1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence

from spawnkit.core.task.runtime import RuntimeTask

__all__ = ["TaskQueue"]


class TaskQueue:
    """An ordered set of runtime tasks: O(1) append, pop at either end, remove and `in`."""

    __slots__ = ("_items", "name")

    def __init__(self, name: str, tasks: Iterable[RuntimeTask] = ()) -> None:
        self.name = name
        self._items: OrderedDict[str, RuntimeTask] = OrderedDict(
            (rt.identifier, rt) for rt in tasks
        )

    def append(self, runtime_task: RuntimeTask) -> None:
        """Add at the back (a task already queued moves there)."""
        key = runtime_task.identifier
        self._items[key] = runtime_task
        self._items.move_to_end(key)

    def appendleft(self, runtime_task: RuntimeTask) -> None:
        key = runtime_task.identifier
        self._items[key] = runtime_task
        self._items.move_to_end(key, last=False)

    def insert(self, index: int, runtime_task: RuntimeTask) -> None:
        """Only the ends are O(1): index 0, or len() and beyond."""
        if index == 0:
            self.appendleft(runtime_task)
        elif index >= len(self._items):
            self.append(runtime_task)
        else:
            raise ValueError("a TaskQueue inserts at its ends only")

    def extend(self, runtime_tasks: Iterable[RuntimeTask]) -> None:
        for runtime_task in runtime_tasks:
            self.append(runtime_task)

    def popleft(self) -> RuntimeTask:
        """Remove and return the first task; IndexError when empty (as a deque)."""
        if not self._items:
            raise IndexError(f"pop from an empty queue '{self.name}'")
        return self._items.popitem(last=False)[1]

    def pop(self, index: int = -1) -> RuntimeTask:
        """pop(0): the first task; pop() or pop(-1): the last. IndexError when empty."""
        if not self._items:
            raise IndexError(f"pop from an empty queue '{self.name}'")
        if index == 0:
            return self._items.popitem(last=False)[1]
        if index == -1:
            return self._items.popitem(last=True)[1]
        raise ValueError("a TaskQueue pops at its ends only")

    def remove(self, runtime_task: RuntimeTask) -> None:
        """ValueError when the task is not queued (as a list)."""
        try:
            del self._items[runtime_task.identifier]
        except KeyError:
            raise ValueError(f"{runtime_task!r} is not in queue '{self.name}'") from None

    def discard(self, runtime_task: RuntimeTask) -> bool:
        """Remove the task if queued; True when it was."""
        return self._items.pop(runtime_task.identifier, None) is not None

    def clear(self) -> None:
        self._items.clear()

    def first(self) -> RuntimeTask | None:
        return next(iter(self._items.values()), None)

    def __contains__(self, runtime_task: object) -> bool:
        return isinstance(runtime_task, RuntimeTask) and runtime_task.identifier in self._items

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[RuntimeTask]:
        return iter(list(self._items.values()))

    def __getitem__(self, index: int) -> RuntimeTask:
        """Only the ends: [0] and [-1]."""
        if not self._items:
            raise IndexError(f"queue '{self.name}' is empty")
        if index == 0:
            return next(iter(self._items.values()))
        if index == -1:
            return next(reversed(self._items.values()))
        raise IndexError("a TaskQueue reads its ends only")

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TaskQueue):
            return list(self._items.values()) == list(other._items.values())
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return list(self._items.values()) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TaskQueue({self.name!r}, {list(self._items)!r})"
