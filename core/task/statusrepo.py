"""Every status change of every task, with its time; results are read from here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StatusEntry", "StatusRepo"]


@dataclass(frozen=True, slots=True)
class StatusEntry:
    """One status change: `time` is the wall clock (epoch seconds, to show), `mono` the
    system's monotonic clock (to measure: durations never go negative when the wall clock
    is stepped, and it is the same clock in every process of this machine)."""

    task_id: str
    status: str
    time: float
    mono: float
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task_id, "status": self.status, "time": self.time,
                "mono": self.mono, **self.data}


Listener = Callable[[StatusEntry], None]


class StatusRepo:
    """An append-only record. Listeners (the journal, progress) see each entry as it comes."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._entries: list[StatusEntry] = []
        self._by_task: dict[str, list[StatusEntry]] = {}
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def record(self, task_id: str, status: str, **data: Any) -> StatusEntry:
        entry = StatusEntry(task_id, status, self._clock(), self._monotonic(), data)
        self._entries.append(entry)
        self._by_task.setdefault(task_id, []).append(entry)
        for listener in self._listeners:
            listener(entry)
        return entry

    def restore(self, entries: list[dict[str, Any]]) -> None:
        """Entries of an earlier runner of the job (its journal's), told to no listener: they
        are on record already. `spawnkit resume` goes on from them."""
        for raw in entries:
            data = {k: v for k, v in raw.items()
                    if k not in ("event", "task", "status", "time", "mono")}
            entry = StatusEntry(str(raw["task"]), str(raw["status"]), float(raw["time"]),
                                float(raw.get("mono", 0.0)), data)
            self._entries.append(entry)
            self._by_task.setdefault(entry.task_id, []).append(entry)

    @property
    def entries(self) -> list[StatusEntry]:
        return list(self._entries)

    def history(self, task_id: str) -> list[StatusEntry]:
        return list(self._by_task.get(task_id, ()))
