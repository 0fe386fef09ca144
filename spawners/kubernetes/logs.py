"""A Pod's output, followed live through the API into its task's masked files, and made whole
from a complete read once the Pod has ended (before it is deleted).

The v1 log API gives a container's stdout and stderr as one stream (Kubernetes serves them
apart only from 1.32, behind an alpha feature gate), so a Pod keeps them apart itself: its task
container's log is the task's stdout, and the log of its stderr reader (`pod.STDERR_READER`)
the task's stderr. A Pod without a reader (the image's own entrypoint runs) has both in its
task container's log: they go to `stdout`, and `stderr` stays empty. A log can be read only
once its container has started, so the followers start then, not at the Pod's creation.
"""

from __future__ import annotations

import logging
import threading
import time

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


class PodLog:
    """The live output of one Pod's task, into a `TaskOutput`."""

    def __init__(self, api: KubeApi, pod: str, output: TaskOutput, *, split: bool) -> None:
        self._api = api
        self._pod = pod
        self.output = output
        #: (container, the stream its log goes to)
        self._sources = [(CONTAINER, output.stdout)]
        if split:
            self._sources.append((STDERR_READER, output.stderr))
        self._threads: list[threading.Thread] = []
        self._done = threading.Event()

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
            try:
                for chunk in self._api.log(self._pod, container, follow=True):
                    target.write(chunk)
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

    def finish(self, wait: bool = True) -> None:
        """Blocking (run it off the event loop), once the task's container has ended: the
        rest of each log from a complete read, then the files are closed. `wait`: let the
        followers see their streams end first (the kubelet ends one about 1 s after its
        container); without, what they have not written yet comes from the complete read."""
        if wait:
            deadline = time.monotonic() + FOLLOWER_END
            for thread in self._threads:
                thread.join(max(deadline - time.monotonic(), 0.0))
        self._done.set()
        failed: Exception | None = None
        for container, target in self._sources:
            target.seal()
            try:
                self._complete(container, target)
            except Exception as exc:  # the other stream may still be whole
                failed = failed or exc
        self.output.close()
        if failed is not None:
            raise failed

    def _complete(self, container: str, target: MaskedStream) -> None:
        same, rest = target.is_prefix_of(self._api.log(self._pod, container, follow=False))
        if not same:
            LOG.info("output of %s/%s: the followed log is not where the complete log "
                     "begins: written anew", self._pod, container)
            target.restart()
            rest = self._api.log(self._pod, container, follow=False)
        for chunk in rest:
            target.write_rest(chunk)

    def abandon(self) -> None:
        """The Pod or the API server is gone: keep what was written (masked), close."""
        self._done.set()
        for _container, target in self._sources:
            target.seal()
        self.output.close()
