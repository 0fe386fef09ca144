"""What a task left running in its process group when it ended while no runner watched (a
`cmd &`), ended by the task supervisor as the runner's collect would have: TERM, the grace,
KILL. The supervisor needs that end to record the task's: a leftover holding the task's
output pipes open keeps the output from being whole, and the exit-status file from being
written. One that holds them from outside the group (`setsid cmd &`) cannot be told from
another task's; past the signals and OUTPUT_WAIT, the task's output is taken as it is.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Collection

__all__ = ["OUTPUT_WAIT", "EndedGroups"]

#: Seconds after the KILL that the output of a task is still waited for.
OUTPUT_WAIT = 5.0

_TERM, _KILL, _WAIT = 0, 1, 2


class EndedGroups:
    """The groups of tasks that ended with no runner to collect them, each one's next step."""

    def __init__(self) -> None:
        self._steps: dict[int, tuple[int, float]] = {}  # group -> (next step, when due)

    def step(self, groups: Collection[int], now: float, grace: float) -> list[int]:
        """Signal the groups (their ids: their tasks' PIDs) whose step is due (`now`:
        monotonic seconds); the groups whose tasks' output is no longer waited for."""
        given_up = []
        for pgid in [g for g in self._steps if g not in groups]:
            del self._steps[pgid]  # recorded: its group is no longer ours to end
        for pgid in groups:
            step, due = self._steps.get(pgid, (_TERM, now))
            if now < due:
                continue
            if step == _TERM:
                # An empty group: nothing to KILL later (its id may be another's by then).
                sent = _signal_group(pgid, signal.SIGTERM)
                self._steps[pgid] = (_KILL, now + grace) if sent else (_WAIT, now + OUTPUT_WAIT)
            elif step == _KILL:
                _signal_group(pgid, signal.SIGKILL)
                self._steps[pgid] = (_WAIT, now + OUTPUT_WAIT)
            else:
                given_up.append(pgid)
        return given_up


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    try:
        os.killpg(pgid, sig)
    except OSError:
        return False
    return True
