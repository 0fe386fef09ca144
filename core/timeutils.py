"""The clock behind the scheduler's timeouts.

Every reading of the clock in the scheduler goes through :func:`wallclock`, looked up in this
module at call time, so that a test can replace ``timeutils.wallclock`` to control time.

Adapted from OpenStack Heat's ``heat.common.timeutils`` (Apache-2.0).
"""

from __future__ import annotations

import time

__all__ = ["Duration", "wallclock"]


def wallclock() -> float:
    """Return the current wall-clock time, in seconds since the epoch."""
    # A function rather than an alias of time.time: patching time.time then reaches us too.
    return time.time()


class Duration:
    """A span of time that starts now and lasts ``timeout`` seconds."""

    # Neither leap seconds nor large clock jumps are handled: the former are negligible and
    # the latter rare next to the length of a task's timeout.

    def __init__(self, timeout: float = 0) -> None:
        self._endtime: float = wallclock() + timeout

    def expired(self) -> bool:
        """Return True once the clock has passed the end time."""
        return wallclock() > self._endtime

    def endtime(self) -> float:
        """Return the end time, on the scale of :func:`wallclock`."""
        return self._endtime

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endtime={self._endtime!r})"
