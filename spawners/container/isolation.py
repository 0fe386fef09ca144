"""The isolation a container task gets unless its task file says otherwise.

CI tasks run code from pull requests: the container is the wall. So a task is never
privileged unless `privileged = true` is written, always runs with `no-new-privileges`
(unless `no_new_privileges = false`), loses the capabilities in `DEFAULT_CAP_DROP` (unless it
sets `cap_drop`) and may hold at most `DEFAULT_PIDS` processes (unless it sets `pids`).
"""

from __future__ import annotations

from dataclasses import dataclass

from spawnkit.core.task.description import Limits
from spawnkit.spawners.container.engine import ContainerSpec

__all__ = [
    "DEFAULT_CAP_DROP",
    "DEFAULT_PIDS",
    "NO_NEW_PRIVILEGES",
    "Isolation",
    "applied_settings",
    "isolation_of",
]

#: Dropped from the engine's default capability set when a task sets no `cap_drop`. What
#: builds, package managers and test suites use stays: CHOWN, DAC_OVERRIDE, FOWNER, FSETID
#: (dpkg, tar, chown of build output), SETUID, SETGID (dropping to a build user), KILL, and
#: NET_BIND_SERVICE (a test server on a low port, in the container's own network). Dropped,
#: as no CI task needs them and each widens a way out:
#:   AUDIT_WRITE  writes to the host kernel's audit log
#:   MKNOD        device nodes
#:   NET_RAW      raw sockets: forged packets, ARP and DNS spoofing of neighbours
#:   SETFCAP      file capabilities: a binary that gains privileges when run
#:   SETPCAP      handing capabilities between processes
#:   SYS_CHROOT   chroot, a step of known escapes
#: Both engines then grant the same set (Podman's default already lacks MKNOD and NET_RAW).
DEFAULT_CAP_DROP = ("AUDIT_WRITE", "MKNOD", "NET_RAW", "SETFCAP", "SETPCAP", "SYS_CHROOT")

#: Processes and threads a container may hold when a task sets no `pids`: far above what a
#: parallel build or test run uses, far below what a fork bomb needs to starve the host.
DEFAULT_PIDS = 4096

NO_NEW_PRIVILEGES = "no-new-privileges"


@dataclass(frozen=True)
class Isolation:
    """The security settings of one container, defaults applied."""

    privileged: bool
    security_opt: tuple[str, ...]
    cap_add: tuple[str, ...]
    cap_drop: tuple[str, ...]
    pids: int


def _cap(name: str) -> str:
    # Engines accept "NET_RAW", "net_raw" and "CAP_NET_RAW" alike: one spelling to compare.
    return name.upper().removeprefix("CAP_")


def isolation_of(limits: Limits) -> Isolation:
    """A task's settings with spawnkit's defaults filled in."""
    cap_add = tuple(dict.fromkeys(_cap(c) for c in limits.cap_add))
    if limits.cap_drop is not None:
        cap_drop = tuple(dict.fromkeys(_cap(c) for c in limits.cap_drop))
    elif limits.privileged:
        # Privileged means every capability: a default drop list would only pretend otherwise.
        cap_drop = ()
    else:
        cap_drop = DEFAULT_CAP_DROP
    if "ALL" not in cap_drop:
        # A capability asked for by name wins over a drop list naming it: said here, as the
        # engines do not agree on which wins.
        cap_drop = tuple(c for c in cap_drop if c not in cap_add)
    no_new = limits.no_new_privileges is not False
    return Isolation(
        privileged=limits.privileged,
        security_opt=(NO_NEW_PRIVILEGES,) if no_new else (),
        cap_add=cap_add,
        cap_drop=cap_drop,
        pids=limits.pids or DEFAULT_PIDS,
    )


def applied_settings(spec: ContainerSpec) -> dict[str, object]:
    """What a container was given, for the task's record: limits and isolation, never its
    environment (secrets), labels or command."""
    out: dict[str, object] = {}
    for name in ("cpus", "memory", "pids", "network", "user"):
        value = getattr(spec, name)
        if value is not None:
            out[name] = value
    out.update(
        read_only=spec.read_only,
        privileged=spec.privileged,
        no_new_privileges=NO_NEW_PRIVILEGES in spec.security_opt,
        cap_add=list(spec.cap_add),
        cap_drop=list(spec.cap_drop),
    )
    return out
