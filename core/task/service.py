"""The immutable description of one service of a job (`[[service]]`): a program the job starts
beside its tasks (a database, an HTTP server) before the first task that needs it, ready once
its readiness command exits 0, and stopped after the last task that needs it.

Tasks name the services they use (`services = ["db"]`); each such task finds the host name of
each of its services in `SPAWNKIT_SERVICE_<ID>_HOST` (see `host_variable`), on every backend.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from spawnkit.core.errors import RequirementError

__all__ = [
    "DEFAULT_READY_INTERVAL",
    "DEFAULT_READY_TIMEOUT",
    "SERVICE_ID",
    "Service",
    "host_variable",
]

#: Seconds a service has, from its start, for its readiness command to exit 0.
DEFAULT_READY_TIMEOUT = 60.0
#: Seconds between two tries of the readiness command.
DEFAULT_READY_INTERVAL = 0.5

#: A service's id is its host name on a container network: one DNS label, lower case.
SERVICE_ID = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def host_variable(service_id: str) -> str:
    """`SPAWNKIT_SERVICE_<ID>_HOST`: the id upper-cased, anything not alphanumeric as `_`
    (`my-db` gives `SPAWNKIT_SERVICE_MY_DB_HOST`)."""
    return f"SPAWNKIT_SERVICE_{re.sub(r'[^A-Z0-9]', '_', service_id.upper())}_HOST"


@dataclass(frozen=True)
class Service:
    """One `[[service]]` table, checked (core.servicefile)."""

    id: str
    #: The image (container backends; the process backend runs `command` on the host).
    image: str | None = None
    #: What runs: on a container, the image's entrypoint is kept and this is its command
    #: (None: the image's own); a string runs through `sh -c`.
    command: tuple[str, ...] | str | None = None
    env: tuple[tuple[str, str], ...] = ()
    #: Names of the runner's variables passed into the service's environment (masked in its
    #: output, as a task's are).
    secrets: tuple[str, ...] = ()
    #: Run inside the service (on the host, on the process backend) until it exits 0; None:
    #: ready once started.
    ready: tuple[str, ...] | str | None = None
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    ready_interval: float = DEFAULT_READY_INTERVAL

    @property
    def argv(self) -> list[str] | None:
        """The command as an argv list (None: the image's own)."""
        if self.command is None:
            return None
        return ["sh", "-c", self.command] if isinstance(self.command, str) else list(self.command)

    @property
    def ready_argv(self) -> list[str] | None:
        if self.ready is None:
            return None
        return ["sh", "-c", self.ready] if isinstance(self.ready, str) else list(self.ready)

    @property
    def ready_words(self) -> str:
        """The readiness command as the task file says it, for messages."""
        text = self.ready if isinstance(self.ready, str) else " ".join(self.ready or ())
        # One line, whatever it holds (a reason is one line): control characters escaped.
        return "".join(c if c.isprintable() else c.encode("unicode_escape").decode()
                       for c in text)

    def environment(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """Its variables and its secrets' values (RequirementError naming a secret the runner
        does not have)."""
        environ = os.environ if environ is None else environ
        missing = [name for name in self.secrets if name not in environ]
        if missing:
            raise RequirementError(f"service '{self.id}': secret not set in the runner's "
                                   f"environment: {', '.join(missing)}")
        return {**dict(self.env), **{name: environ[name] for name in self.secrets}}

    def secret_values(self, environ: Mapping[str, str] | None = None) -> list[str]:
        environ = os.environ if environ is None else environ
        return [environ[name] for name in self.secrets if environ.get(name)]
