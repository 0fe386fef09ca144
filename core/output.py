"""A task's output on its way to `tasks/<id>/stdout` and `stderr`: masked before it is written.

Every backend's output goes through here or through the output helper (core.maskpipe, for
output that must outlive the runner): a `MaskedStream` takes raw bytes as they come (a
container's followed log, say), masks them (core.masking) and appends them to the file at once,
so a reader (`spawnkit logs -f`) sees them live and no secret's value ever reaches the disk.
It also keeps how many raw bytes it took and their hash, so the rest of a stream can be taken
from a complete read once the task has ended (a followed log may lose its tail).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path

from spawnkit.core.masking import Masker

__all__ = ["STREAMS", "CatchUp", "MaskedStream", "TaskOutput", "last_lines"]

#: The streams of a task, by the name of their file in its output folder.
STREAMS = ("stdout", "stderr")


class MaskedStream:
    """One stream of one task: raw bytes in, masked bytes appended to `path`.

    Safe to feed from one thread while another calls `idle()` or `close()`.
    """

    def __init__(self, path: Path, masked: Iterable[str]) -> None:
        self.path = path
        self._masker = Masker(masked)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        self._lock = threading.Lock()
        self._hash = hashlib.sha256()
        self._sealed = False
        #: Raw bytes taken so far (before masking).
        self.taken = 0

    def write(self, data: bytes) -> None:
        """Take bytes as they come (from a live source: a follower, a pipe)."""
        self._take(data, live=True)

    def seal(self) -> None:
        """Take no more from the live source (it may still be running: a follower that did
        not end in time); what comes now comes through `write_rest`."""
        with self._lock:
            self._sealed = True

    def write_rest(self, data: bytes) -> None:
        """Take bytes from the complete read, after `seal`."""
        self._take(data, live=False)

    def _take(self, data: bytes, *, live: bool) -> None:
        if not data:
            return
        with self._lock:
            # Under the lock: a live write that was under way as the stream was sealed must
            # not land after `catch_up` took its measure.
            if self._fd < 0 or (live and self._sealed):
                return
            self.taken += len(data)
            self._hash.update(data)
            self._put(self._masker.feed(data))

    def idle(self) -> None:
        """Nothing came for a while: write what cannot be part of a secret's value."""
        with self._lock:
            if self._fd >= 0:
                self._put(self._masker.idle())

    def _put(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def catch_up(self) -> CatchUp:
        """What takes the rest of this stream from a complete read of it (`seal` first)."""
        with self._lock:
            return CatchUp(self, self.taken, self._hash.digest())

    def restart(self) -> None:
        """Forget what was written: the complete read follows from its first byte."""
        with self._lock:
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
            self._masker = Masker(self._masker.values)
            self._hash = hashlib.sha256()
            self.taken = 0

    def close(self) -> None:
        with self._lock:
            if self._fd < 0:
                return
            self._put(self._masker.close())
            os.close(self._fd)
            self._fd = -1


class CatchUp:
    """The rest of one stream from a complete read of it, fed chunk by chunk: the bytes the
    live source gave are checked against the read's first bytes (length and hash), what
    follows them is written. Nothing is written when the read begins otherwise (`same` is
    then false: `restart` the stream and write the whole complete read)."""

    def __init__(self, stream: MaskedStream, taken: int, digest: bytes) -> None:
        self._stream = stream
        self._need = taken
        self._want = digest
        self._check = hashlib.sha256()
        self._same: bool | None = None if taken else True

    def feed(self, chunk: bytes) -> None:
        if self._same is None:
            head, chunk = chunk[:self._need], chunk[self._need:]
            self._check.update(head)
            self._need -= len(head)
            if self._need:
                return
            self._same = self._check.digest() == self._want
        if self._same:
            self._stream.write_rest(chunk)

    @property
    def short(self) -> bool:
        """Whether the read fed so far is shorter than what the live source gave."""
        return self._same is None

    @property
    def same(self) -> bool:
        """Whether the read fed so far began with all the live source gave (false while it is
        shorter)."""
        return bool(self._same)


class TaskOutput:
    """The stdout and stderr of one task, each a `MaskedStream` into its output folder."""

    def __init__(self, out_dir: Path, masked: Iterable[str]) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        values = tuple(masked)
        self.streams = {name: MaskedStream(out_dir / name, values) for name in STREAMS}

    @property
    def stdout(self) -> MaskedStream:
        return self.streams["stdout"]

    @property
    def stderr(self) -> MaskedStream:
        return self.streams["stderr"]

    def idle(self) -> None:
        for stream in self.streams.values():
            stream.idle()

    def close(self) -> None:
        for stream in self.streams.values():
            stream.close()


def last_lines(path: Path, count: int, *, within: int = 16384) -> list[str]:
    """The last `count` non-blank lines of an output file, from its last `within` bytes,
    stripped ([] when it is missing)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(f.tell() - within, 0))
            data = f.read()
    except OSError:
        return []
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines()]
    return [line for line in lines if line][-count:]
