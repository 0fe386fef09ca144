"""The engine's own word that a container of the job has ended, the moment it does.

One event stream per job, followed in a daemon thread: an exit wakes the worker at once, so a
short task's slot is free again within milliseconds, not at the next listing. The listing per
poll stays the safety net (an event lost across an engine restart, a stream that broke).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from spawnkit.spawners.container.engine import Engine
from spawnkit.spawners.container.faults import engine_message

__all__ = ["ExitEvents"]

LOG = logging.getLogger(__name__)

#: Seconds between tries to open the stream again once it broke.
RETRY_EVERY = 2.0


class ExitEvents:
    """Exits of the containers carrying `label`, handed to `on_exit` on the event loop."""

    def __init__(self, engine: Engine, label: str, on_exit: Callable[[str], None]) -> None:
        self._engine = engine
        self._label = label
        self._on_exit = on_exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._close: Callable[[], None] | None = None
        self._closed = False
        self._tried = float("-inf")

    def ensure_running(self) -> None:
        """Start following (again, if the stream broke: at most every RETRY_EVERY s)."""
        if self._closed or (self._thread is not None and self._thread.is_alive()):
            return
        now = time.monotonic()
        if now - self._tried < RETRY_EVERY:
            return
        self._tried = now
        self._loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._follow, daemon=True,
                                        name=f"spawnkit-events-{self._engine.name}")
        self._thread.start()

    def _follow(self) -> None:
        try:
            ids, self._close = self._engine.exit_events(self._label)
            for container_id in ids:
                loop = self._loop
                if self._closed or loop is None:
                    return
                loop.call_soon_threadsafe(self._on_exit, container_id)
        except Exception as exc:  # the listing per poll goes on meanwhile
            if not self._closed:
                LOG.debug("%s: exit events: %s", self._engine.name, engine_message(exc))

    def close(self) -> None:
        self._closed = True
        close = self._close
        if close is not None:
            try:
                close()
            except Exception as exc:
                LOG.debug("%s: closing exit events: %s", self._engine.name, exc)
