"""How a container ended, as far as it is known (after Nomad's ExitResult).

An exit code from 129 to 159 is a death by signal only when that is known: spawnkit sent the
signal, or the engine says someone killed the container (`docker kill`); a task may well
`exit 130` by itself, and then it exited with 130. A known signal is reported as the process
backend reports one: no exit code, the signal. Out of memory as the engine says; where it
cannot say (Podman 4 on cgroup v1), inferred from a SIGKILL under a memory limit that nobody
sent through the engine.
"""

from __future__ import annotations

from spawnkit.core.task.outcome import ExitResult, signal_name
from spawnkit.spawners.container.engine import ContainerState

__all__ = ["ask_for_kills", "exit_result"]

_SIGKILL = 9


def _died_of(code: int | None) -> int | None:
    return code - 128 if code is not None and 128 < code < 160 else None


def ask_for_kills(code: int | None, sent: set[int]) -> bool:
    """Whether the engine's kill events could change the verdict."""
    died_of = _died_of(code)
    return died_of is not None and died_of not in sent


def exit_result(
    state: ContainerState,
    *,
    sent: set[int],
    kills: list[int | None] | None,
    engine_reports_oom: bool,
    outage: str | None,
    engine: str,
) -> ExitResult:
    """`sent`: the signals spawnkit sent it; `kills`: the engine's kill events (their signals,
    None where it does not name one; None when it cannot tell); `outage`: what the engine said
    during an outage the container ended across, if one."""
    code = state.exit_code
    died_of = _died_of(code)
    known = died_of is not None and (
        died_of in sent or bool(kills and (died_of in kills or None in kills))
    )
    oom = state.oom_killed or (
        not engine_reports_oom and died_of == _SIGKILL and bool(state.memory_limit)
        and kills == [] and not sent
    )
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
