"""Secrets: variables named in a task, passed from the runner's environment into the task,
their values written nowhere and masked (`***`) in what the task printed (core.masking)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from spawnkit.core.errors import RequirementError
from spawnkit.core.task.description import Task

__all__ = ["secret_env", "secret_values"]


def secret_env(task: Task, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """NAME -> value of the task's secrets; a secret the runner lacks is a triage failure."""
    environ = os.environ if environ is None else environ
    missing = [name for name in task.secrets if name not in environ]
    if missing:
        names = ", ".join(missing)
        raise RequirementError(f"secret not set in the runner's environment: {names}")
    return {name: environ[name] for name in task.secrets}


def secret_values(task: Task, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the task's secrets that the runner has (none missing is checked at
    triage, by secret_env)."""
    environ = os.environ if environ is None else environ
    return [environ[name] for name in task.secrets if environ.get(name)]
