"""Secrets: variables named in a task, passed from the runner's environment into the task,
their values written nowhere and masked (`***`) in what the task printed."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from spawnkit.core.errors import RequirementError
from spawnkit.core.task.description import Task

__all__ = ["MASK", "mask_file", "secret_env"]

MASK = b"***"
_CHUNK = 1 << 20


def secret_env(task: Task, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """NAME -> value of the task's secrets; a secret the runner lacks is a triage failure."""
    environ = os.environ if environ is None else environ
    missing = [name for name in task.secrets if name not in environ]
    if missing:
        names = ", ".join(missing)
        raise RequirementError(f"secret not set in the runner's environment: {names}")
    return {name: environ[name] for name in task.secrets}


def mask_file(path: Path, values: Iterable[str]) -> int:
    """Replace every occurrence of the values in the file by MASK; return how many.

    Streams in chunks that overlap by the longest value, so a value split across two reads
    is still found and the file may be of any size.
    """
    needles = sorted({v.encode() for v in values if v}, key=len, reverse=True)
    if not needles or not path.is_file():
        return 0
    keep = max(len(n) for n in needles) - 1
    tmp = path.with_name(path.name + ".masking")
    count = 0
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        pending = b""
        while True:
            chunk = src.read(_CHUNK)
            data = pending + chunk
            for needle in needles:
                count += data.count(needle)
                data = data.replace(needle, MASK)
            if not chunk:
                dst.write(data)
                break
            # Hold back a tail that may be the start of a value cut by the chunk boundary.
            cut = max(len(data) - keep, 0)
            dst.write(data[:cut])
            pending = data[cut:]
    os.replace(tmp, path)
    return count
