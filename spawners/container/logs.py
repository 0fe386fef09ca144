"""A container's output, followed live into its task's files, masked, and made whole at the end.

Two daemon threads follow the container's stdout and stderr from its start (a reader of
`tasks/<id>/stdout` sees a line within a fraction of a second). Both engines' followed streams
may end short of the end (Docker drops a last line with no line end; Podman, now and then, the
tail of a big write), so once the container has ended each stream is read again, complete and
unfollowed, and whatever the follower missed is appended: the followed bytes are checked to be
where the complete read begins, else the file is written anew from it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from spawnkit.core.output import STREAMS, TaskOutput
from spawnkit.spawners.container.engine import Engine
from spawnkit.spawners.container.faults import engine_message

__all__ = ["LogFollower", "log_messages"]

LOG = logging.getLogger(__name__)

#: Seconds a follower may take to see its stream end once the container has ended.
FOLLOWER_END = 2.0


class LogFollower:
    """The live output of one container, into a `TaskOutput`."""

    def __init__(self, engine: Engine, container_id: str, output: TaskOutput) -> None:
        self._engine = engine
        self._id = container_id
        self.output = output
        self._threads = [
            threading.Thread(target=self._follow, args=(name,), daemon=True,
                             name=f"spawnkit-logs-{container_id[:12]}-{name}")
            for name in STREAMS
        ]
        for thread in self._threads:
            thread.start()

    def _follow(self, stream: str) -> None:
        target = self.output.streams[stream]
        try:
            for chunk in self._engine.log_stream(self._id, stream, follow=True):
                target.write(chunk)
        except Exception as exc:  # the complete read at the end makes up for it
            LOG.debug("following %s of %s: %s", stream, self._id[:12], engine_message(exc))

    def idle(self) -> None:
        self.output.idle()

    def finish(self) -> None:
        """Blocking (run it off the event loop), once the container has ended: the rest of
        each stream from a complete read, then the files are closed."""
        for thread in self._threads:
            thread.join(FOLLOWER_END)
        for name in STREAMS:
            target = self.output.streams[name]
            target.seal()
            same, rest = target.is_prefix_of(self._read(name))
            if not same:
                LOG.info("output of %s: the followed %s is not where the complete log "
                         "begins: written anew", self._id[:12], name)
                target.restart()
                rest = self._read(name)
            for chunk in rest:
                target.write_rest(chunk)
        self.output.close()

    def finish_or_keep(self, what: str) -> None:
        """`finish`; when the engine fails it, what was written (masked) is kept, and the
        warning names the container as `what`."""
        try:
            self.finish()
        except Exception as exc:
            self.abandon()
            LOG.warning("%s: output of %s: %s", self._engine.name, what, engine_message(exc))

    def _read(self, stream: str) -> Iterator[bytes]:
        return self._engine.log_stream(self._id, stream, follow=False)

    def abandon(self) -> None:
        """The engine is gone: keep what was written (masked), close."""
        for name in STREAMS:
            self.output.streams[name].seal()
        self.output.close()


def log_messages(response: Any) -> Iterator[bytes]:
    """The payloads of a streamed log response in Docker's multiplexed format, which Podman
    serves too (a header of 8 bytes: the stream, then the payload's length, big-endian), one
    per log message; the response is closed at the end."""
    raw = response.raw
    try:
        while len(header := raw.read(8)) == 8:
            length = int.from_bytes(header[4:], "big")
            payload = raw.read(length) if length else b""
            if length and not payload:
                return
            if payload:
                yield payload
    finally:
        response.close()
