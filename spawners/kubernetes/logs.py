"""A Pod's output, followed live through the API into its task's masked files, and made whole
from a complete read once the Pod has ended (before it is deleted).

The v1 log API gives a container's stdout and stderr as one stream (Kubernetes serves them
apart only from 1.32, behind an alpha feature gate), so a Pod keeps them apart itself: its task
container's log is the task's stdout, and the log of its stderr reader (`pod.STDERR_READER`)
the task's stderr. A Pod without a reader (the image's own entrypoint runs) has both in its
task container's log: they go to `stdout`, and `stderr` stays empty. A log can be read only
once its container has started, so the followers start then, not at the Pod's creation.

The log API may answer with the kubelet's own error in place of a log: once the kubelet has
removed a container (it does so at once for the ended containers of a Pod being deleted),
`unable to retrieve container logs for containerd://ID`, or `failed to ... "<log file>"`,
comes as the body of an HTTP 200 (text/plain, no line end), because the kubelet commits the
status with a zero-byte write before it asks the runtime for the container
(kubernetes/kubernetes#142258). Measured here: the real log until the removal, that error
until the Pod is gone, then 404; so it is final, and trying again would not bring the log
back. Such an answer is never written into the task's files: what was read before it stays,
and the task gets a note with the kubelet's words (`finish`).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping

from spawnkit.core.output import MaskedStream, TaskOutput
from spawnkit.spawners.kubernetes.api import KubeApi, api_message
from spawnkit.spawners.kubernetes.pod import CONTAINER, STDERR_READER

__all__ = ["FOLLOWER_END", "PodLog"]

LOG = logging.getLogger(__name__)

#: Seconds a follower may take to see its stream end once the container has ended (the
#: kubelet ends a followed log about 1 s after the container).
FOLLOWER_END = 2.0
#: Seconds a follower tries to begin while its container is still being started (the stderr
#: reader starts a moment after the task's container), and the pause between two tries.
FOLLOWER_START = 10.0
_START_PAUSE = 0.1

#: How the kubelet's errors begin when it writes one into a log's answer: the container gone
#: from the runtime, its log file gone (kuberuntime/logs), the runtime's own words while
#: following. Each names the container, by its runtime ID or its log file.
_REFUSAL_STARTS = (b"unable to retrieve container logs for ", b"failed to ", b"rpc error: ")
_REFUSAL = re.compile(b"(?:" + b"|".join(map(re.escape, _REFUSAL_STARTS)) + rb")[^\n]*\Z")
#: The longest such error looked for: more than any of them takes (a log file's path and a
#: runtime's message).
_TAIL = 4096


def _may_become_refusal(data: bytes) -> int:
    """How many bytes at the end of `data` (its last, unended line) may be the beginning of
    such an error, cut across two chunks: held back until the next chunk tells."""
    tail = data[data.rfind(b"\n") + 1:]
    if tail and len(tail) <= _TAIL and any(
            start.startswith(tail) or tail.startswith(start) for start in _REFUSAL_STARTS):
        return len(tail)
    return 0


def _refusal_at(data: bytes, marks: Iterable[bytes]) -> int | None:
    """Where `data` ends in an error of the kubelet about this container (one of `marks`,
    its runtime ID or log folder, named in it, and no line end after it), if it does."""
    found = _REFUSAL.search(data, data.rfind(b"\n") + 1)
    if found is not None and any(mark and mark in found.group() for mark in marks):
        return found.start()
    return None


def _sifted(chunks: Iterable[bytes], marks: Iterable[bytes],
            refused: list[str]) -> Iterator[bytes]:
    """`chunks` less the kubelet's error at their end, if there is one (its words go into
    `refused`). The error ends the answer, maybe cut across two chunks: an unended last line
    that may begin one is held back until the next chunk, or the end, tells."""
    held = b""
    for chunk in chunks:
        data = held + chunk
        keep = _may_become_refusal(data)
        held = data[len(data) - keep:] if keep else b""
        if len(data) > keep:
            yield data[:len(data) - keep]
    cut = _refusal_at(held, marks)
    if cut is not None:
        refused.append(held[cut:].decode("utf-8", "replace"))
        held = held[:cut]
    if held:
        yield held


class PodLog:
    """The live output of one Pod's task, into a `TaskOutput`."""

    def __init__(self, api: KubeApi, pod: str, uid: str, output: TaskOutput, *,
                 split: bool) -> None:
        self._api = api
        self._pod = pod
        self.output = output
        self._split = split
        #: (container, the stream its log goes to)
        self._sources = [(CONTAINER, output.stdout)]
        if split:
            self._sources.append((STDERR_READER, output.stderr))
        #: What the kubelet's errors about each container name: its log folder (the
        #: kubelet's layout, `<namespace>_<pod>_<uid>/<container>/`), then its runtime ID.
        self._marks: dict[str, list[bytes]] = {
            container: [f"{api.namespace}_{pod}_{uid}/{container}/".encode()]
            for container, _target in self._sources}
        self._threads: list[threading.Thread] = []
        self._done = threading.Event()

    def known(self, container_ids: Mapping[str, str]) -> None:
        """The runtime IDs of the Pod's containers, as its status gives them."""
        for container, marks in self._marks.items():
            found = container_ids.get(container)
            if found and found.encode() not in marks:
                marks.append(found.encode())

    def start(self) -> None:
        """Follow from now on (the task's container has started); once only."""
        if self._threads:
            return
        for container, target in self._sources:
            thread = threading.Thread(target=self._follow, args=(container, target),
                                      daemon=True, name=f"spawnkit-log-{self._pod}-{container}")
            self._threads.append(thread)
            thread.start()

    def _follow(self, container: str, target: MaskedStream) -> None:
        give_up = time.monotonic() + FOLLOWER_START
        while not self._done.is_set():
            refused: list[str] = []
            try:
                log = self._api.log(self._pod, container, follow=True)
                for chunk in _sifted(log, self._marks[container], refused):
                    target.write(chunk)
                if refused:  # the complete read at the end says it in a note
                    LOG.debug("following the log of %s/%s: %s", self._pod, container,
                              refused[0])
                return
            except Exception as exc:  # the complete read at the end makes up for it
                if target.taken or time.monotonic() >= give_up:
                    LOG.debug("following the log of %s/%s: %s", self._pod, container,
                              api_message(exc))
                    return
            # Refused before its first byte: the container is still being started.
            self._done.wait(_START_PAUSE)

    def idle(self) -> None:
        self.output.idle()

    def finish(self, wait: bool = True) -> list[str]:
        """Blocking (run it off the event loop), once the task's container has ended: the
        rest of each log from a complete read, then the files are closed. `wait`: let the
        followers see their streams end first (the kubelet ends one about 1 s after its
        container); without, what they have not written yet comes from the complete read.
        Returns the task's notes: each stream the API would not give whole, and why."""
        if wait:
            deadline = time.monotonic() + FOLLOWER_END
            for thread in self._threads:
                thread.join(max(deadline - time.monotonic(), 0.0))
        self._done.set()
        notes: list[str] = []
        for container, target in self._sources:
            target.seal()
            try:
                words = self._complete(container, target)
            except Exception as exc:  # the other stream may still be whole
                words = api_message(exc)
                LOG.warning("kubernetes: output of %s/%s: %s", self._pod, container, words)
            if words is not None:
                notes.append(self._note(container, target, words))
        self.output.close()
        return notes

    def _complete(self, container: str, target: MaskedStream) -> str | None:
        """Write the rest of `container`'s log from a complete read; the kubelet's words
        when it answered with an error in place of (the rest of) the log."""
        refused: list[str] = []
        marks = self._marks[container]
        catch_up = target.catch_up()
        for chunk in _sifted(self._api.log(self._pod, container, follow=False), marks, refused):
            catch_up.feed(chunk)
        if catch_up.short and refused:
            # All the API gave is shorter than what was followed (an error, or nothing):
            # what was followed is the task's output, as far as it goes.
            return refused[0]
        if not catch_up.same:
            LOG.info("output of %s/%s: the followed log is not where the complete log "
                     "begins: written anew", self._pod, container)
            target.restart()
            for chunk in _sifted(self._api.log(self._pod, container, follow=False), marks,
                                 refused):
                target.write_rest(chunk)
        return refused[0] if refused else None

    def _note(self, container: str, target: MaskedStream, words: str) -> str:
        stream = "stderr" if container == STDERR_READER else (
            "stdout" if self._split else "stdout and stderr")
        kept = ("may be incomplete (what was read while the task ran is kept)"
                if target.taken else "could not be read")
        return (f"{stream} {kept}: the Kubernetes log API gave an error in place of the "
                f"log of container {container}: {words}")

    def abandon(self) -> None:
        """The Pod or the API server is gone: keep what was written (masked), close."""
        self._done.set()
        for _container, target in self._sources:
            target.seal()
        self.output.close()
