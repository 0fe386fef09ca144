"""A container's output, followed live into its task's files, masked, and made whole at the end.

A daemon thread follows the container's stdout and stderr (one multiplexed stream) from its
start: a reader of `tasks/<id>/stdout` sees a line within a fraction of a second. Both engines'
followed streams may end short of the end (Docker drops a last line with no line end; Podman,
now and then, the tail of a big write), so once the container has ended the log is read again,
complete and unfollowed, and whatever the follower missed is appended: the followed bytes of
each stream are checked to be where its complete read begins, else its file is written anew.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

from spawnkit.core.output import STREAMS, TaskOutput
from spawnkit.spawners.container.engine import Engine
from spawnkit.spawners.container.faults import EngineError, engine_message

__all__ = ["LogFollower", "log_messages"]

LOG = logging.getLogger(__name__)

#: The multiplexed format's stream numbers (0, stdin, is never asked for).
_STREAM_NAMES = {1: "stdout", 2: "stderr"}
_ENGINE_ERROR = 3

#: Seconds a follower may take to see its stream end once the container has ended.
FOLLOWER_END = 2.0


class LogFollower:
    """The live output of one container, into a `TaskOutput`."""

    def __init__(self, engine: Engine, container_id: str, output: TaskOutput) -> None:
        self._engine = engine
        self._id = container_id
        self.output = output
        self._thread = threading.Thread(target=self._follow, daemon=True,
                                        name=f"spawnkit-logs-{container_id[:12]}")
        self._thread.start()

    def _follow(self) -> None:
        streams = self.output.streams
        try:
            for name, chunk in self._engine.logs(self._id, follow=True):
                streams[name].write(chunk)
        except Exception as exc:  # the complete read at the end makes up for it
            LOG.debug("following the log of %s: %s", self._id[:12], engine_message(exc))

    def idle(self) -> None:
        self.output.idle()

    def finish(self) -> None:
        """Blocking (run it off the event loop), once the container has ended: the rest of
        each stream from one complete read, then the files are closed."""
        self._thread.join(FOLLOWER_END)
        streams = self.output.streams
        for target in streams.values():
            target.seal()
        catch_ups = {name: target.catch_up() for name, target in streams.items()}
        for name, chunk in self._engine.logs(self._id, follow=False):
            catch_ups[name].feed(chunk)
        for name, catch_up in catch_ups.items():
            if catch_up.same:
                continue
            LOG.info("output of %s: the followed %s is not where the complete log begins: "
                     "written anew", self._id[:12], name)
            streams[name].restart()
            for other, chunk in self._engine.logs(self._id, follow=False):
                if other == name:
                    streams[name].write_rest(chunk)
        self.output.close()

    def finish_or_keep(self, what: str) -> None:
        """`finish`; when the engine fails it, what was written (masked) is kept, and the
        warning names the container as `what`."""
        try:
            self.finish()
        except Exception as exc:
            self.abandon()
            LOG.warning("%s: output of %s: %s", self._engine.name, what, engine_message(exc))

    def abandon(self) -> None:
        """The engine is gone: keep what was written (masked), close."""
        for name in STREAMS:
            self.output.streams[name].seal()
        self.output.close()


def log_messages(response: Any) -> Iterator[tuple[str, bytes]]:
    """(stream name, payload) of each message of a streamed log response in Docker's
    multiplexed format, which Podman serves too (a header of 8 bytes: the stream, then the
    payload's length, big-endian); the response is closed at the end. Raises EngineError with
    the engine's words when it sends an error message in the stream (its stream 3)."""
    raw = response.raw
    try:
        while len(header := raw.read(8)) == 8:
            length = int.from_bytes(header[4:], "big")
            payload = raw.read(length) if length else b""
            if length and not payload:
                return
            if header[0] == _ENGINE_ERROR:
                raise EngineError(payload.decode("utf-8", "replace").strip())
            if payload:
                yield _STREAM_NAMES.get(header[0], "stdout"), payload
    finally:
        response.close()
