"""How a container ended, as far as it is known (after Nomad's ExitResult).

An exit code from 129 to 159 is a death by signal only when that is known: spawnkit sent the
signal, or the engine says someone killed the container (`docker kill`); a task may well
`exit 130` by itself, and then it exited with 130. A known signal is reported as the process
backend reports one: no exit code, the signal. Out of memory as the engine says; where it
cannot say (Podman 4 on cgroup v1), inferred from a SIGKILL under a memory limit that nobody
sent through the engine.
"""

from __future__ import annotations

import logging

from spawnkit.core.task.outcome import ExitResult, signal_name
from spawnkit.spawners.container.calls import EngineCalls
from spawnkit.spawners.container.engine import ContainerState, Engine, EngineEvents
from spawnkit.spawners.container.faults import engine_message

__all__ = ["ask_for_events", "exit_result", "read_exit"]

LOG = logging.getLogger(__name__)

_SIGKILL = 9


def _died_of(code: int | None) -> int | None:
    return code - 128 if code is not None and 128 < code < 160 else None


def ask_for_events(state: ContainerState, sent: set[int]) -> bool:
    """Whether the engine's events could change the verdict: a death by a signal spawnkit
    did not send, or a failure under a memory limit (a child of the task killed for memory
    leaves the task itself to fail as it may, and Docker's OOMKilled flag can lag behind its
    `oom` event)."""
    died_of = _died_of(state.exit_code)
    if died_of is not None and died_of not in sent:
        return True
    return bool(state.memory_limit) and state.exit_code not in (0, None) and not state.oom_killed


def exit_result(
    state: ContainerState,
    *,
    sent: set[int],
    events: EngineEvents | None,
    engine_reports_oom: bool,
    outage: str | None,
    engine: str,
) -> ExitResult:
    """`sent`: the signals spawnkit sent it; `events`: what the engine logged of it (None
    when it was not asked or cannot tell); `outage`: what the engine said during an outage
    the container ended across, if one."""
    code = state.exit_code
    died_of = _died_of(code)
    kills = events.kills if events is not None else ()
    known = died_of is not None and (died_of in sent or died_of in kills or None in kills)
    inferred = (not engine_reports_oom and events is not None and not kills
                and died_of == _SIGKILL and bool(state.memory_limit) and not sent)
    oom = state.oom_killed or bool(events and events.oom) or inferred
    error = state.error
    if error is None and outage and died_of and not oom and not sent:
        error = (
            f"container {state.id[:12]} was killed ({signal_name(died_of)}) during an outage "
            f"of the {engine} engine ({outage}): an engine that stops or restarts ends its "
            "containers"
        )
    if known and not oom:
        return ExitResult(exit_code=None, signal=died_of, error=error)
    return ExitResult(exit_code=code, oom=oom, error=error)


async def read_exit(call: EngineCalls, engine: Engine, state: ContainerState, *, sent: set[int],
                    since: float, outage: str | None = None) -> ExitResult:
    """The exit of an ended container (a task's or a service's): its inspect `state`, and the
    engine's events since `since` (epoch seconds) when they could change the verdict."""
    events: EngineEvents | None = None
    if ask_for_events(state, sent):
        try:
            events = await call(engine.events_of, state.id, since)
        except Exception as exc:
            LOG.warning("%s: events of %s: %s", engine.name, state.id[:12], engine_message(exc))
    return exit_result(state, sent=sent, events=events, engine_reports_oom=engine.reports_oom,
                       outage=outage, engine=engine.name)
