"""A Pod's output, followed live through the API into its task's masked files, and made whole
from a complete read once the Pod has ended (before it is deleted).

The v1 log API gives a container's stdout and stderr as one stream (Kubernetes can serve them
apart only from 1.32, behind an alpha feature gate): on this backend both go to the task's
`stdout`, in the order the task wrote them, and `stderr` stays empty. The log can be read only
once the container has started, so the follower starts then, not at the Pod's creation.
"""

from __future__ import annotations

import logging
import threading

from spawnkit.core.output import TaskOutput
from spawnkit.spawners.kubernetes.api import KubeApi, api_message
from spawnkit.spawners.kubernetes.pod import CONTAINER

__all__ = ["FOLLOWER_END", "PodLog"]

LOG = logging.getLogger(__name__)

#: Seconds a follower may take to see its stream end once the container has ended (the
#: kubelet ends a followed log about 1 s after the container).
FOLLOWER_END = 2.0


class PodLog:
    """The live output of one Pod's task container, into a `TaskOutput`."""

    def __init__(self, api: KubeApi, pod: str, output: TaskOutput) -> None:
        self._api = api
        self._pod = pod
        self.output = output
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Follow from now on (the container has started); once only."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._follow, daemon=True,
                                            name=f"spawnkit-log-{self._pod}")
            self._thread.start()

    def _follow(self) -> None:
        target = self.output.stdout
        try:
            for chunk in self._api.log(self._pod, CONTAINER, follow=True):
                target.write(chunk)
        except Exception as exc:  # the complete read at the end makes up for it
            LOG.debug("following the log of %s: %s", self._pod, api_message(exc))

    def idle(self) -> None:
        self.output.idle()

    def finish(self) -> None:
        """Blocking (run it off the event loop), once the container has ended: the rest of
        the log from a complete read, then the files are closed."""
        if self._thread is not None:
            self._thread.join(FOLLOWER_END)
        target = self.output.stdout
        target.seal()
        same, rest = target.is_prefix_of(self._api.log(self._pod, CONTAINER, follow=False))
        if not same:
            LOG.info("output of %s: the followed log is not where the complete log begins: "
                     "written anew", self._pod)
            target.restart()
            rest = self._api.log(self._pod, CONTAINER, follow=False)
        for chunk in rest:
            target.write_rest(chunk)
        self.output.close()

    def abandon(self) -> None:
        """The Pod or the API server is gone: keep what was written (masked), close."""
        self.output.stdout.seal()
        self.output.close()
