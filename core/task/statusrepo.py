"""Every status change of every task, with a timestamp; results are read from here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["StatusEntry", "StatusRepo"]


@dataclass(frozen=True)
class StatusEntry:
    task_id: str
    status: str
    time: float
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task_id, "status": self.status, "time": self.time, **self.data}


Listener = Callable[[StatusEntry], None]


class StatusRepo:
    """An append-only record. Listeners (the journal, progress) see each entry as it comes."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._entries: list[StatusEntry] = []
        self._listeners: list[Listener] = []

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def record(self, task_id: str, status: str, **data: Any) -> StatusEntry:
        entry = StatusEntry(task_id, status, self._clock(), data)
        self._entries.append(entry)
        for listener in self._listeners:
            listener(entry)
        return entry

    def process_message(self, message: dict[str, Any]) -> StatusEntry:
        """The original's entry point: a message with an `id` and a `status`."""
        data = {k: v for k, v in message.items() if k not in ("id", "status")}
        return self.record(str(message["id"]), str(message["status"]), **data)

    @property
    def entries(self) -> list[StatusEntry]:
        return list(self._entries)

    def history(self, task_id: str) -> list[StatusEntry]:
        return [e for e in self._entries if e.task_id == task_id]
